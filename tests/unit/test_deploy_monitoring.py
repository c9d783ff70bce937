"""The alert rules and the Grafana dashboard under deploy/ query only series the processes export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from dramatiq.brokers.stub import StubBroker
from prometheus_client import REGISTRY, Metric
from sqlalchemy.orm import Session, sessionmaker

from services.common import metrics as rpc_metrics
from services.common.clock import utc_now
from services.sync import metrics as sync_metrics
from services.sync.metrics import RunQueueCollector
from services.sync.oneroster import metrics as oneroster_metrics

# Importing these modules registers their series in the default registry.
MODULES = (rpc_metrics, sync_metrics, oneroster_metrics)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERIES = re.compile(r"\b(?:ew|grpc_server)_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def series_names(families: list[Metric]) -> set[str]:
    return {family.name + suffix for family in families for suffix in SUFFIXES.get(family.type, ("",))}


def exported(sync_sessions: sessionmaker[Session]) -> set[str]:
    collector = RunQueueCollector(sync_sessions, StubBroker(), utc_now)
    return series_names(list(REGISTRY.collect())) | series_names(list(collector.collect()))


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_alert_and_dashboard_query_names_an_exported_series(
    sync_sessions: sessionmaker[Session],
) -> None:
    names = exported(sync_sessions)
    expressions = alert_expressions() + dashboard_expressions()
    used = {name for expression in expressions for name in SERIES.findall(expression)}

    assert used - names == set()
    assert {"ew_sync_run_heartbeat_age_seconds", "ew_sync_queue_lag_seconds"} <= used  # stuck runs, lag
    assert any('state="FAILED"' in expression for expression in alert_expressions())  # failing districts

"""docker-compose.yml checked against the code, statically.

Docker is not needed; where Docker Compose is installed, ``docker compose config`` must accept the
file too.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.common.auth import AuthSettings
from services.common.grpc_server import ServerConnectionSettings
from services.common.logs import LogSettings
from services.common.metrics import MetricsSettings
from services.common.secret_files import FILE_SUFFIX, SECRET_VARIABLES
from services.common.secrets import SecretSettings
from services.common.tls import TlsSettings
from services.gateway.settings import GatewaySettings
from services.roster.settings import RosterSettings
from services.sync.app import RosterClientTlsSettings
from services.sync.settings import SyncSettings
from services.sync.webhooks.settings import WebhookSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: service for name, service in SERVICES.items() if service.get("build") == "."}
SETTINGS: tuple[type[BaseSettings], ...] = (
    RosterSettings,
    SyncSettings,
    WebhookSettings,
    GatewaySettings,
    AuthSettings,
    TlsSettings,
    RosterClientTlsSettings,
    SecretSettings,
    LogSettings,
    MetricsSettings,
    ServerConnectionSettings,
)
PYTHON_MODULE = re.compile(r"python -m ([\w.]+)")


def variables_the_code_reads() -> set[str]:
    names = {name + FILE_SUFFIX for name in SECRET_VARIABLES}
    for settings in SETTINGS:
        prefix = str(settings.model_config.get("env_prefix", ""))
        for field_name, field in settings.model_fields.items():
            names.add((prefix + field_name).upper())
            if isinstance(field.validation_alias, AliasChoices):
                names |= {str(choice) for choice in field.validation_alias.choices if str(choice).isupper()}
    return names


def modules(command: list[str] | str) -> list[str]:
    text = command if isinstance(command, str) else " ".join(command)
    return PYTHON_MODULE.findall(text)


def test_every_command_and_health_check_runs_a_module_of_the_image() -> None:
    for name, service in OURS.items():
        started = modules(service["command"])
        assert started, name
        if name != "migrate":
            checked = service["healthcheck"]["test"]
            assert checked[0] == "CMD", name
            started += modules(checked)
        for module in started:
            assert importlib.util.find_spec(module) is not None, (name, module)


def test_every_variable_the_compose_file_sets_is_one_the_code_reads() -> None:
    known = variables_the_code_reads()
    for name, service in OURS.items():
        unknown = set(service["environment"]) - known
        assert not unknown, (name, unknown)


def test_health_checks_probe_the_port_each_server_listens_on() -> None:
    for name, variable in (("roster", "EW_ROSTER_LISTEN_ADDRESS"), ("sync", "EW_SYNC_LISTEN_ADDRESS")):
        service = SERVICES[name]
        port = service["environment"][variable].rpartition(":")[2]
        assert service["healthcheck"]["test"][-1] == f"127.0.0.1:{port}", name
    assert SERVICES["sync"]["environment"]["EW_SYNC_ROSTER_TARGET"].endswith(
        ":" + SERVICES["roster"]["environment"]["EW_ROSTER_LISTEN_ADDRESS"].rpartition(":")[2]
    )
    worker = SERVICES["worker"]
    assert f":{worker['environment']['EW_METRICS_PORT']}/metrics" in " ".join(worker["healthcheck"]["test"])


def test_services_restart_wait_for_migrations_and_publish_only_the_api() -> None:
    for name, service in SERVICES.items():
        assert "restart" in service, name
        assert name == "migrate" or service["healthcheck"].get("test"), name
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), (name, image)  # an exact version, never latest
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("roster", "sync", "worker"):
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"sync", "gateway", "sandbox"}
    assert SERVICES["sandbox"]["profiles"] == ["demo"]


def test_every_secret_is_a_file_the_services_mount_and_the_readme_lists() -> None:
    defined = COMPOSE["secrets"]
    for name, service in SERVICES.items():
        mounted = set(service.get("secrets", ()))
        assert mounted <= set(defined), name
        for variable, value in service.get("environment", {}).items():
            if str(value).startswith("/run/secrets/"):
                assert variable.endswith(FILE_SUFFIX), (name, variable)
                assert value.removeprefix("/run/secrets/") in mounted, (name, variable)
        given_plainly = set(service.get("environment", {})) & set(SECRET_VARIABLES)
        assert not given_plainly, (name, given_plainly)  # keys and passwords only as files
    files = {Path(secret["file"]).name for secret in defined.values()}
    readme = (ROOT / "README.md").read_text()
    production = readme.split("### Production (docker compose)", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"^\| `([\w.]+)` \|", production, flags=re.MULTILINE))
    assert listed == files


def test_docker_compose_accepts_the_file_where_docker_is_installed() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("Docker Compose is not installed here; the static checks above still ran")
    done = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

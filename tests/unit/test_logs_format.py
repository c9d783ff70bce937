"""Log lines: JSON with the bound context and no secret, console text for development, levels."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from pydantic import ValidationError

from services.common import redaction
from services.common.logs import ContextFilter, LogFormat, LogSettings, log_context, make_formatter
from services.common.redaction import REDACTED, install_redaction

SECRET = "cl-secret-7f3a9b2c4d5e6f70"


@pytest.fixture(autouse=True)
def redactor() -> Iterator[None]:
    """This test's secret redacted; the process's redaction as it was afterwards."""
    factory, installed = logging.getLogRecordFactory(), redaction._installed
    redaction._installed = None
    try:
        install_redaction().register(SECRET)
        yield
    finally:
        logging.setLogRecordFactory(factory)
        redaction._installed = installed


def logger_writing_to(buffer: io.StringIO, log_format: LogFormat) -> logging.Logger:
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"tests.logs.{log_format}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_lines_carry_the_bound_context_and_redact_exception_text() -> None:
    buffer = io.StringIO()
    logger = logger_writing_to(buffer, LogFormat.JSON)

    with log_context(run_id="r1"), log_context(district="d1"):
        try:
            raise RuntimeError(f"ClassLink refused secret {SECRET}")
        except RuntimeError:
            logger.exception("pull failed with %s", SECRET)
    logger.info("after the run")

    inside, after = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert inside["run_id"] == "r1" and inside["district"] == "d1"
    assert inside["level"] == "ERROR" and inside["logger"] == logger.name
    assert inside["message"] == f"pull failed with {REDACTED}"
    assert "RuntimeError" in inside["exc_info"] and SECRET not in inside["exc_info"]
    assert SECRET not in buffer.getvalue()
    assert "run_id" not in after and "district" not in after


def test_console_lines_append_the_context() -> None:
    buffer = io.StringIO()
    logger = logger_writing_to(buffer, LogFormat.CONSOLE)

    with log_context(run_id="r1"):
        logger.info("committed")

    assert buffer.getvalue().rstrip().endswith(f"INFO {logger.name}: committed [run_id=r1]")


def test_settings_read_the_environment_and_refuse_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EW_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("EW_LOG_FORMAT", "console")
    assert LogSettings().level == "DEBUG" and LogSettings().format is LogFormat.CONSOLE

    monkeypatch.setenv("EW_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="EW_LOG_FORMAT|format"):
        LogSettings()


def test_lines_inside_a_span_carry_its_trace_id() -> None:
    buffer = io.StringIO()
    logger = logger_writing_to(buffer, LogFormat.JSON)
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=False
        )
    )

    with trace.use_span(span):
        logger.info("inside")
    logger.info("outside")

    inside, outside = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "trace_id" not in outside

"""Process logging: JSON lines (or console text), a configurable level, and context on every line.

Every process calls ``configure_logging()`` once at startup. ``EW_LOG_LEVEL`` (DEBUG, INFO,
WARNING, ERROR; default INFO) sets the level and ``EW_LOG_FORMAT`` (``json``, the default, or
``console`` for development) the shape. A JSON line carries ``timestamp`` (ISO 8601, UTC),
``level``, ``logger`` and ``message``, plus every field bound with ``log_context`` — a sync run binds
``run_id`` and ``district``, so each line a run writes names it (and ``trace_id`` when tracing is
on), in whichever thread or task writes it (the binding lives in a ``contextvars.ContextVar``; code
that starts a thread hands it ``contextvars.copy_context().run``).

httpx writes one INFO line per request, which for a OneRoster pull means one per page: those lines
show only at DEBUG. Secret redaction (``services.common.redaction``) applies to every record, and
the JSON formatter redacts the exception text it renders itself.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from types import MappingProxyType, TracebackType
from typing import TextIO

from opentelemetry import trace
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.json import JsonFormatter

from services.common.redaction import install_redaction

# Libraries that log each HTTP request at INFO; they speak only at DEBUG or on warnings.
PER_REQUEST_LOGGERS = ("httpx",)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "ew_log_context", default=MappingProxyType({})
)


class LogFormat(StrEnum):
    """How log lines are written."""

    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    """The levels ``EW_LOG_LEVEL`` accepts."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LogSettings(BaseSettings):
    """``EW_LOG_LEVEL`` and ``EW_LOG_FORMAT``."""

    model_config = SettingsConfigDict(env_prefix="EW_LOG_", extra="ignore")

    level: LogLevel = Field(default=LogLevel.INFO, description="The lowest level written.")
    format: LogFormat = Field(default=LogFormat.JSON, description="json lines, or console text.")


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the block (nested blocks add to them)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound context fields onto each record, so formatters see them as attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields, and the trace id inside a recorded span; never drops a record."""
        for key, value in _context.get().items():
            setattr(record, key, value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
        return True


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line; exception text redacted like messages are."""

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 - logging's name
        """The traceback with secrets replaced."""
        return install_redaction().redact(logging.Formatter.formatException(self, ei))


class ConsoleFormatter(logging.Formatter):
    """Text for a terminal: the classic line, then the bound context as ``key=value`` pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line with the context appended."""
        line = super().format(record)
        context = " ".join(f"{key}={value}" for key, value in _context.get().items())
        return f"{line} [{context}]" if context else line


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    if log_format is LogFormat.CONSOLE:
        return ConsoleFormatter()
    return RedactingJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def configure_logging(
    settings: LogSettings | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send the process's logs to ``stream`` (stderr) in the configured format; returns the handler.

    Replaces the root logger's handlers, so calling it again (a test) reconfigures cleanly.
    """
    settings = settings or LogSettings()
    install_redaction()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(settings.format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelNamesMapping()[settings.level.value]
    root.setLevel(level)
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    return handler

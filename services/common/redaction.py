"""Keeps secrets out of logs.

``RedactingFilter`` rewrites a log record's message (its arguments merged in), exception text and
stack text: registered secret values, ``Authorization`` header values, Bearer tokens and OAuth
signature/secret parameters become ``[REDACTED]``. ``install_redaction`` applies it to every record
the process creates. Filters on the root logger would not see records that child loggers propagate
to its handlers, and handlers added later (by a test or a log shipper) would miss a handler filter,
so it wraps the log record factory instead.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[REDACTED]"

_PATTERNS = (
    # A quoted header value, as in a dict repr or JSON: 'Authorization': 'OAuth oauth_signature="…"'.
    (re.compile(r"""(?i)(\bauthorization['"]?\s*[:=]\s*)(['"])(?:(?!\2).)*\2"""), rf"\1\2{REDACTED}\2"),
    # An unquoted header line: Authorization: Bearer … (everything up to the end of the line).
    (re.compile(r"""(?i)(\bauthorization\s*[:=]\s*)(?!['"])[^\r\n]+"""), rf"\1{REDACTED}"),
    # OAuth 1.0 / OAuth 2 parameters in headers, query strings, form bodies and reprs.
    (
        re.compile(
            r"""(?i)(\b(?:oauth_signature|client_secret|access_token|refresh_token)['"]?\s*[:=]\s*['"]?)"""
            r"""[^'"&\s,;)}\]]+"""
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1{REDACTED}"),
)


class RedactingFilter(logging.Filter):
    """Replaces secrets in log records; never drops a record."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._fixed: frozenset[str] = frozenset()
        self._owned: dict[str, str] = {}
        self._secrets: frozenset[str] = frozenset()

    def register(self, secret: str, *, owner: str | None = None) -> None:
        """Redact ``secret`` wherever it appears from now on.

        With ``owner`` (a stored connection) it replaces that owner's previous secret and lasts
        until ``release(owner)``; a value two owners share stays redacted while either holds it.
        """
        if not secret:
            return
        with self._lock:
            if owner is None:
                self._fixed = self._fixed | {secret}
            else:
                self._owned[owner] = secret
            self._recompute_locked()

    def release(self, owner: str) -> None:
        """Stop redacting ``owner``'s secret (its connection was deleted), unless another holds it."""
        with self._lock:
            self._owned.pop(owner, None)
            self._recompute_locked()

    def _recompute_locked(self) -> None:
        self._secrets = self._fixed | frozenset(self._owned.values())

    def redact(self, text: str) -> str:
        """``text`` with every known secret and credential pattern replaced."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place."""
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


_installed: RedactingFilter | None = None
_install_lock = threading.Lock()


def install_redaction() -> RedactingFilter:
    """Redact every log record of this process; idempotent, returns the process-wide filter."""
    global _installed
    with _install_lock:
        if _installed is None:
            redactor = RedactingFilter()
            make_record = logging.getLogRecordFactory()

            def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
                record = make_record(*args, **kwargs)
                redactor.filter(record)
                return record

            logging.setLogRecordFactory(redacting_factory)
            _installed = redactor
        return _installed

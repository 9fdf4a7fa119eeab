"""Logging to stderr (journald picks it up), as text or JSON, with secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime

from sentinel.egress import redact

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Every secret Sentinel loads is registered here, so no log line can carry it."""
    if value:
        with _lock:
            _secrets.add(value)


class _Redacting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, tuple(_secrets))
        if clean != message:
            record.msg, record.args = clean, None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error"] = redact(self.formatException(record.exc_info), tuple(_secrets))
        return json.dumps(doc)


class _TextFormatter(logging.Formatter):
    """The usual text line; the whole line is scrubbed, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), tuple(_secrets))


def setup(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redacting())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("sentinel")
    root = logging.getLogger()
    # Replace only our own handler, so embedding code (and pytest's caplog) keeps theirs.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "sentinel"] + [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; the audit log already has them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)

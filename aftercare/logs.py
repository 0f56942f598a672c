"""Structured logging. Log lines carry ids (enrollment, message), never patient names, numbers,
addresses or message bodies, and never credentials (API keys and bearer tokens are redacted)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aftercare.settings import Settings

# Credentials that must never reach a log line, whatever logged them: API keys and bearer tokens.
_CREDENTIALS = re.compile(r"\bak_[A-Za-z0-9]+_[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*")
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName", "color_message"}

# Loggers of libraries that would print request bodies (message text, phone numbers) at INFO.
_QUIET = ("twilio.http_client", "python_http_client", "httpx", "httpcore", "sqlalchemy.engine")
# Chatty at INFO without telling an operator anything they act on.
_TERSE = ("alembic.runtime.plugins", "pgserver")


def redact(text: str) -> str:
    """The text with API keys and bearer tokens replaced."""
    return _CREDENTIALS.sub("[redacted]", text)


class RedactCredentials(logging.Filter):
    """Replaces credentials in every record's message (and its arguments) before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(settings: Settings) -> None:
    """Route every logger to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactCredentials())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in (*_QUIET, *_TERSE):
        logging.getLogger(name).setLevel(logging.WARNING)

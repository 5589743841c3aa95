"""Process logging: plain text for a terminal, or one JSON object per line (`LOG_FORMAT=json`)
for a log pipeline. Job fields (job_id, job_type, tenant_id, attempt, duration_ms) become
JSON keys; secrets are redacted from every message, whatever the format. uvicorn's own
loggers (its access log included) propagate here: `superseller serve` runs uvicorn
without a logging config of its own (api/app.py `uvicorn_options`)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

JOB_FIELDS = ("job_id", "job_type", "tenant_id", "attempt", "duration_ms", "status")
# Values after these names, in query strings, JSON, headers or prose, are never logged.
_SECRET = re.compile(
    r"(?i)((?:access_token|refresh_token|client_secret|password|api[_-]?key|x-internal-key|"
    r"authorization|secret|token)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)([^\s\"'&,}]+)"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# Query-string parameters that are credentials only there (an OAuth callback's `code` and
# `state`): masked in URLs, e.g. uvicorn's access log lines.
_QUERY = re.compile(r"(?i)([?&](?:code|state|jti|csrf)=)([^&\s\"']+)")


def redact(text: str) -> str:
    text = _QUERY.sub(r"\1[REDACTED]", text)
    return _BEARER.sub(r"\1[REDACTED]", _SECRET.sub(r"\1[REDACTED]", text))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in JOB_FIELDS:
            if getattr(record, key, None) is not None:
                out[key] = getattr(record, key)
        if record.exc_info:
            out["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

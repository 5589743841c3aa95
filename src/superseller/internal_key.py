"""The `X-Internal-Key` an external scheduler sends: from `INTERNAL_JOBS_KEY`, or from AWS
Secrets Manager when `INTERNAL_JOBS_KEY_SECRET_ID` is set.

The secret is cached for `INTERNAL_JOBS_KEY_CACHE_S`. During a rotation the previous
value (`AWSPREVIOUS`) stays valid for `INTERNAL_JOBS_KEY_GRACE_S` after the current one
was created, so a scheduler still sending the old key is not locked out mid-rotation.
If Secrets Manager cannot be reached, the last values read keep working; with none,
internal endpoints answer 503. Comparison is constant-time against every accepted key.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from superseller.config import Settings

log = logging.getLogger("superseller.internal_key")


class KeyUnavailable(Exception):
    """No key could be read: the internal endpoints stay closed."""


class InternalKeys:
    def __init__(self, settings: Settings, client: Any = None):
        self.settings = settings
        self._client = client
        self._keys: list[str] | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(s.internal_jobs_key_secret_id) or bool(
            s.internal_jobs_key and s.internal_jobs_key.get_secret_value()
        )

    def accepted(self) -> list[str]:
        s = self.settings
        if not s.internal_jobs_key_secret_id:
            return [s.internal_jobs_key.get_secret_value()] if self.configured else []
        with self._lock:
            if time.monotonic() - self._read_at >= s.internal_jobs_key_cache_s:
                try:
                    self._keys = self._from_secrets_manager()
                    self._read_at = time.monotonic()
                except Exception as exc:  # noqa: BLE001 - keep serving the last good keys
                    log.warning("could not read the internal key secret: %s", type(exc).__name__)
                    if self._keys is None:
                        raise KeyUnavailable() from None
            return list(self._keys or [])

    def matches(self, given: str) -> bool:
        ok = False
        for key in self.accepted():  # no early exit: every key is compared
            ok |= hmac.compare_digest(given.encode(), key.encode())
        return ok

    def _sm(self):
        if self._client is None:
            import boto3  # optional dependency: `superseller[aws]`

            self._client = boto3.client("secretsmanager")
        return self._client

    def _from_secrets_manager(self) -> list[str]:
        sm, sid = self._sm(), self.settings.internal_jobs_key_secret_id
        current = sm.get_secret_value(SecretId=sid, VersionStage="AWSCURRENT")
        keys = [current["SecretString"]]
        created = current.get("CreatedDate")
        age = (datetime.now(UTC) - created).total_seconds() if created else float("inf")
        if age < self.settings.internal_jobs_key_grace_s:
            try:
                keys.append(
                    sm.get_secret_value(SecretId=sid, VersionStage="AWSPREVIOUS")["SecretString"]
                )
            except sm.exceptions.ResourceNotFoundException:
                pass  # never rotated: no previous value
        return keys

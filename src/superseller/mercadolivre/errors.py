"""Every Mercado Livre error body, parsed into one exception type."""

from __future__ import annotations

import httpx


class MLError(Exception):
    """An API error: HTTP status, the machine code (`error`/`code`/`error_status`), message."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"Mercado Livre {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class ReauthRequired(MLError):
    """The seller must connect again (refresh token invalid, revoked or expired)."""


def parse_error(resp: httpx.Response) -> MLError:
    """Accept the shapes in the reference: {message,error,status,cause}, OAuth's
    error_description, 403's `code`, clips' `error_status`, bare gateway bodies, HTML."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = (
        body.get("error")
        or body.get("code")
        or body.get("error_status")
        or f"http_{resp.status_code}"
    )
    message = (
        body.get("message")
        or body.get("error_description")
        or (resp.text[:200] if not body else "")
        or resp.reason_phrase
    )
    retry_after = None
    if "retry-after" in resp.headers:
        try:
            retry_after = max(0.0, float(resp.headers["retry-after"]))
        except ValueError:
            retry_after = None
    return MLError(resp.status_code, str(code), str(message), retry_after)

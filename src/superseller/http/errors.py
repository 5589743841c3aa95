"""The project's error body, `{"error": {"code", "message", "fields"?}}`, and the exception
that carries it out of a route (installed as a handler by `superseller.api.errors`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def error_body(code: str, message: str, fields: list | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def invalid(field: str, message: str, problem: str) -> ApiError:
    """422 for one bad field, in the shape FastAPI's own validation errors take here."""
    return ApiError(422, "invalid_request", message, [{"field": field, "problem": problem}])


def validation_fields(exc: RequestValidationError) -> list[dict]:
    """FastAPI's validation errors as the error body's `fields` (`field`, `problem`): the
    JSON API's 422 and the pages' pt-BR error page read the same list."""
    return [_invalid_field(e) for e in exc.errors()]


def _invalid_field(error: dict) -> dict:
    """One entry of a 422's `fields`. A body that is not JSON names the body (its `loc`
    holds a character position, not a field)."""
    if error.get("type") == "json_invalid":
        where = (error.get("ctx") or {}).get("error") or "malformed"
        pos = error["loc"][-1] if len(error["loc"]) > 1 else None
        at = f" at character {pos}" if isinstance(pos, int) else ""
        return {"field": "body", "problem": f"invalid JSON: {where}{at}"}
    name = ".".join(str(p) for p in error["loc"] if p != "body")
    return {"field": name or "body", "problem": error["msg"]}


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")

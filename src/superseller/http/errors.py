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
    return [
        {
            "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
            "problem": e["msg"],
        }
        for e in exc.errors()
    ]


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")

"""One JSON error shape everywhere: {"error": {"code", "message", "fields"?}}.

Content negotiation: a browser navigating to a page (`Accept` naming `text/html`) gets the
same error as a page in Portuguese instead (404, 403, 422, 500...), rendered by the web
layer's `html` hook; API clients and the pages' own `fetch` calls keep the JSON body."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from superseller.db.connection_errors import DB_ERRORS
from superseller.errors import UserFacingError
from superseller.http.errors import (  # noqa: F401
    ApiError,
    error_body,
    validation_fields,
    wants_html,
)
from superseller.jobs.cron import InvalidSchedule
from superseller.jobs.dbwatch import one_line
from superseller.jobs.errors import (
    InvalidPayload,
    InvalidTransition,
    JobError,
    JobNotFound,
    UnknownJobType,
)
from superseller.jobs.schedules import ScheduleNotFound
from superseller.limits import LimitError, PayloadTooLarge

log = logging.getLogger("superseller.api")


def _user_error(exc: UserFacingError) -> tuple[int, str]:
    """The status and code of a user-facing error: the job engine's by subclass (they
    predate `superseller.errors`), the others' from their own `status` and `code`."""
    if not isinstance(exc, JobError):
        return exc.status, exc.code
    if isinstance(exc, JobNotFound | ScheduleNotFound):
        return 404, "not_found"
    if isinstance(exc, InvalidTransition):
        return 409, "invalid_transition"
    if isinstance(exc, InvalidPayload | UnknownJobType):
        return 400, "invalid_payload"
    if isinstance(exc, InvalidSchedule):
        return 400, "invalid_schedule"
    return 400, "job_error"


HtmlHook = Callable[[Request, int, list[dict] | None], Response]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app fully matches for this request's path."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(r.matches(scope)[0] is Match.FULL for r in request.app.router.routes):
            allowed.append(method)
    return allowed


def install(app: FastAPI, html: HtmlHook | None = None) -> None:
    def respond(request: Request, status: int, body: dict, fields=None) -> Response:
        if html is not None and wants_html(request):
            return html(request, status, fields)
        return JSONResponse(body, status)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return respond(
            request, exc.status, error_body(exc.code, exc.message, exc.fields), exc.fields
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        fields = validation_fields(exc)
        body = error_body("invalid_request", "the request is not valid", fields)
        return respond(request, 422, body, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 413:  # a streamed body over MAX_BODY_BYTES
            body = error_body("payload_too_large", "the request body is too large")
        elif exc.status_code == 405:  # the internal API's name for it too
            body = error_body("method_not_allowed", str(exc.detail))
        else:
            body = error_body(f"http_{exc.status_code}", str(exc.detail))
        response = respond(request, exc.status_code, body)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # What the client may send instead (RFC 9110 §15.5.6). Starlette's own Allow
            # names only the first route of the path, not another route serving it too.
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(UserFacingError)
    async def _user(_: Request, exc: UserFacingError):
        status, code = _user_error(exc)
        return JSONResponse(error_body(code, str(exc)), status)

    @app.exception_handler(LimitError)
    async def _limit(_: Request, exc: LimitError):
        # Outside the bounds shared with the CLI (superseller.limits): nothing stored.
        if isinstance(exc, PayloadTooLarge):
            return JSONResponse(error_body("payload_too_large", str(exc)), 413)
        return JSONResponse(error_body("out_of_bounds", str(exc)), 400)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError):
        # e.g. a NUL character PostgreSQL cannot store, or a number out of its range:
        # bad input, nothing written (the statement failed and its transaction rolled back).
        return JSONResponse(
            error_body(
                "invalid_value",
                "a value in the request cannot be stored or compared (e.g. a NUL character)",
            ),
            400,
        )

    async def _database_away(request: Request, exc: Exception):
        # Not a bug: the database is unreachable or stalled (a dropped connection, a
        # restart, a held lock). One line in the log, and a 503 the user can act on.
        log.warning(
            "database unreachable on %s %s: %s", request.method, request.url.path, one_line(exc)
        )
        body = error_body(
            "database_unavailable", "the database is unreachable; try again in a moment"
        )
        response = respond(request, 503, body)
        response.headers["Retry-After"] = "5"
        return response

    for error in DB_ERRORS:
        if error is not OSError:  # an OSError is not always the database's
            app.add_exception_handler(error, _database_away)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(request, 500, error_body("internal_error", "unexpected server error"))

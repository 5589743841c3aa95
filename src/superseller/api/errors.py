"""One JSON error shape everywhere: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from superseller.jobs.cron import InvalidSchedule
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


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def error_body(code: str, message: str, fields: list | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _job_error(exc: JobError) -> tuple[int, str]:
    if isinstance(exc, JobNotFound | ScheduleNotFound):
        return 404, "not_found"
    if isinstance(exc, InvalidTransition):
        return 409, "invalid_transition"
    if isinstance(exc, InvalidPayload | UnknownJobType):
        return 400, "invalid_payload"
    if isinstance(exc, InvalidSchedule):
        return 400, "invalid_schedule"
    return 400, "job_error"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return JSONResponse(error_body(exc.code, exc.message, exc.fields), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        fields = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "problem": e["msg"],
            }
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid_request", "the request is not valid", fields), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        if exc.status_code == 413:  # a streamed body over MAX_BODY_BYTES
            return JSONResponse(
                error_body("payload_too_large", "the request body is too large"), 413
            )
        return JSONResponse(error_body(f"http_{exc.status_code}", str(exc.detail)), exc.status_code)

    @app.exception_handler(JobError)
    async def _job(_: Request, exc: JobError):
        status, code = _job_error(exc)
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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "unexpected server error"), 500)

"""What routes and pages need from the app (settings, engine, registry, clock), as typed
dependencies: `svc: Svc` in a route's signature instead of a lookup in its body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from superseller.config import Settings
from superseller.http.errors import ApiError
from superseller.jobs.clock import Clock
from superseller.jobs.registry import Registry
from superseller.limits import ID_MAX, PAYLOAD_MAX_BYTES

# Row ids in paths: bounded so that no database ever sees an integer it cannot store.
MAX_ID = ID_MAX
# A job's payload plus its envelope (type, tenant, keys, ...).
BODY_MAX_BYTES = PAYLOAD_MAX_BYTES + 16 * 1024


@dataclass
class Services:
    settings: Settings
    engine: Engine
    registry: Registry
    clock: Clock
    short_wait_s: float = 4.0  # under EventBridge's 5 s API-destination limit


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


def body_within_limit(request: Request) -> None:
    """Refuse (413) a request body larger than a job payload can be, before using it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_MAX_BYTES:
        raise ApiError(
            413,
            "payload_too_large",
            f"the request body is {declared} bytes; at most {BODY_MAX_BYTES} are allowed",
        )


def id_path(what: str = "id"):
    return Path(ge=1, le=MAX_ID, description=what)

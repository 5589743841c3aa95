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


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _declared_query(route) -> frozenset[str]:
    key = id(route)
    if key not in _QUERY_NAMES:
        _QUERY_NAMES[key] = frozenset(_query_names(route.dependant))
    return _QUERY_NAMES[key]


def known_query_only(request: Request) -> None:
    """422 for a query parameter the route does not declare: a misspelt filter (`satte=`)
    would otherwise be ignored and the caller shown every row as if it were filtered.
    (The API routes only; the HTML pages keep their own parameters.)"""
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    unknown = sorted(set(request.query_params) - _declared_query(route))
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"unknown query parameter(s): {', '.join(unknown)[:200]}",
            [{"field": name[:100], "problem": "unknown parameter"} for name in unknown[:20]],
        )

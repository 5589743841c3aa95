"""What routes and pages need from the app (settings, engine, registry, clock), as typed
dependencies: `svc: Svc` in a route's signature instead of a lookup in its body."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, NoReturn, Union, get_args, get_origin

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


_QUERY_NAMES: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
_SEQUENCES = (list, tuple, set, frozenset)


def _takes_many(annotation) -> bool:
    """A parameter declared as a list (also inside `| None`) may be given more than once."""
    origin = get_origin(annotation)
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        return True
    return origin in (Union, UnionType) and any(_takes_many(a) for a in get_args(annotation))


def _query_params(dependant) -> list:
    params = list(dependant.query_params)
    for sub in dependant.dependencies:
        params += _query_params(sub)
    return params


def _declared_query(route) -> tuple[frozenset[str], frozenset[str]]:
    """(every query parameter name the route declares, the names that take a single value)."""
    key = id(route)
    if key not in _QUERY_NAMES:
        params = _query_params(route.dependant)
        names = frozenset(p.alias for p in params)
        single = frozenset(p.alias for p in params if not _takes_many(p.field_info.annotation))
        _QUERY_NAMES[key] = (names, single)
    return _QUERY_NAMES[key]


def _refuse(message: str, names: list[str], problem: str) -> NoReturn:
    raise ApiError(
        422,
        "invalid_request",
        f"{message}: {', '.join(names)[:200]}",
        [{"field": name[:100], "problem": problem} for name in names[:20]],
    )


def known_query_only(request: Request) -> None:
    """422 for a query parameter the route does not declare: a misspelt filter (`satte=`)
    would otherwise be ignored and the caller shown every row as if it were filtered. 422
    too for a single-valued parameter given more than once (`tenantId=a&tenantId=b`): which
    one a reader takes is a guess, and the caller would be shown one tenant's rows as if they
    were both's. (The API routes only; the HTML pages keep their own parameters.)"""
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    names, single = _declared_query(route)
    given = Counter(k for k, _ in request.query_params.multi_items())
    unknown = sorted(set(given) - names)
    if unknown:
        _refuse("unknown query parameter(s)", unknown, "unknown parameter")
    repeated = sorted(k for k, n in given.items() if n > 1 and k in single)
    if repeated:
        _refuse("query parameter(s) given more than once", repeated, "given more than once")

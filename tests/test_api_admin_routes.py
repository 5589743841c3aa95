"""Every admin route, walked from the app's own route table (so a new route is covered the
day it is added): a seller gets 403 and nothing changes, no login gets 401, a misspelt or
unknown query parameter and a bad filter value get 422 with the field named."""

import re

import pytest
from fastapi.routing import APIRoute

from superseller.api.app import create_app
from superseller.api.deps import Services
from superseller.config import Settings
from superseller.jobs import audit
from superseller.jobs.clock import SystemClock
from superseller.users.accounts import create_user
from tests.support import handlers
from tests.support import marketplace as mk
from tests.support.api import PASSWORD, client, serving

SELLER, ADMIN_EMAIL = "ana@loja1.com", "ops@superseller.dev"
# Filter values no admin route may take silently.
BAD_FILTERS = [
    {"state": "exploded"},
    {"createdFrom": "yesterday"},
    {"createdFrom": "2026-01-10", "createdTo": "2026-01-01"},
    {"finishedTo": "2026-01-10T10:00:00"},  # a date-time without an offset
    {"limit": "0"},
    {"before": "-1"},
]


def walk(routes):
    """Every APIRoute, also inside included routers (FastAPI keeps those nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from walk(route.original_router.routes)


def query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_names(sub)
    return names


def admin_routes(tmp_path) -> list[tuple[str, str, frozenset[str]]]:
    """(method, path with ids filled in, its query parameter names) of every admin route."""
    svc = Services(Settings(data_dir=tmp_path), None, handlers.build_registry(), SystemClock())
    out = []
    for route in walk(create_app(svc).routes):
        if route.path.startswith("/api/admin"):
            names = query_names(route.dependant)
            path = re.sub(r"\{[a-z_]+\}", "1", route.path)
            out += [(m, path, frozenset(names)) for m in sorted(route.methods)]
    return out


@pytest.fixture
def url(engine, tmp_path):
    mk.tenant(engine, "t1")
    create_user(engine, SELLER, PASSWORD, "seller", "t1")
    create_user(engine, ADMIN_EMAIL, PASSWORD, "admin")
    with serving(Settings(data_dir=tmp_path), engine, handlers.build_registry()) as u:
        yield u


def test_a_seller_gets_403_on_every_admin_route_and_changes_nothing(url, engine, tmp_path):
    routes = admin_routes(tmp_path)
    assert len(routes) >= 25  # the whole admin API, not an empty walk
    with client(url, SELLER) as seller:
        for method, path, _ in routes:
            r = seller.request(method, path, json={} if method in ("POST", "PATCH") else None)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    with client(url, ADMIN_EMAIL) as admin:
        for method, path, _ in routes:
            anonymous = admin.build_request(method, url + path)
            anonymous.headers.pop("cookie", None)
            assert admin.send(anonymous).status_code in (401, 403)  # no session
    assert audit.entries(engine) == []  # nothing was done in anyone's name


def test_unknown_parameters_and_bad_filters_get_422_on_every_admin_route(url, tmp_path):
    with client(url, ADMIN_EMAIL) as admin:
        for method, path, names in admin_routes(tmp_path):
            r = admin.request(method, path, params={"satte": "failed"})
            assert r.status_code == 422, (method, path, r.text)
            assert r.json()["error"]["fields"] == [
                {"field": "satte", "problem": "unknown parameter"}
            ]
            for bad in BAD_FILTERS:
                if set(bad) <= names:
                    r = admin.request(method, path, params=bad)
                    assert r.status_code == 422, (method, path, bad, r.text)
                    named = {f["field"].split(".")[-1] for f in r.json()["error"]["fields"]}
                    assert named & set(bad), (method, path, bad, r.text)  # e.g. query.state

"""A single-valued query parameter given twice (`tenantId=a&tenantId=b`) is a 422 naming it,
on every JSON API route, walked from the app's own route table: which copy a reader would
take is a guess, and the caller would be shown one tenant's rows as if asked for both. A
parameter declared as a list may be repeated."""

import re

import httpx
import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.routing import APIRoute

from superseller.api import errors
from superseller.api.app import create_app
from superseller.api.deps import Services
from superseller.config import Settings
from superseller.http.deps import known_query_only
from superseller.jobs.clock import SystemClock
from tests import test_api_admin_routes as admin_routes
from tests.support import handlers
from tests.support.api import client, serving_app

SELLER, ADMIN_EMAIL = admin_routes.SELLER, admin_routes.ADMIN_EMAIL
url = admin_routes.url  # the fixture: a seller and an admin, served


def _strict(dependencies) -> bool:
    return any(d.dependency is known_query_only for d in dependencies or ())


def _walk(routes, strict=False):
    """(APIRoute, whether it refuses undeclared parameters), also inside included routers,
    which FastAPI keeps nested with the dependencies they were included with."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, strict or _strict(route.dependencies)
        elif hasattr(route, "original_router"):
            inherited = strict or _strict(route.include_context.dependencies)
            yield from _walk(route.original_router.routes, inherited)


def strict_routes(tmp_path) -> list[tuple[str, str, list[str]]]:
    """(method, path with ids filled in, its query parameter names) of every route that
    refuses undeclared parameters and declares at least one."""
    svc = Services(Settings(data_dir=tmp_path), None, handlers.build_registry(), SystemClock())
    out = []
    for route, strict in _walk(create_app(svc).routes):
        names = sorted({p.alias for p in route.dependant.query_params})
        if strict and names:
            path = re.sub(r"\{[a-z_]+\}", "1", route.path)
            out += [(m, path, names) for m in sorted(route.methods)]
    return out


@pytest.mark.parametrize("who", [SELLER, ADMIN_EMAIL])
def test_a_parameter_given_twice_gets_422_naming_it_on_every_route(url, tmp_path, who):
    routes = strict_routes(tmp_path)
    assert len(routes) >= 15  # the JSON API, not an empty walk
    with client(url, who) as c:
        for method, path, names in routes:
            for name in names:
                for values in (("a", "b"), ("1", "1")):  # different, and the same twice
                    r = c.request(method, path, params=[(name, v) for v in values], json={})
                    assert r.status_code == 422, (method, path, name, r.text)
                    assert r.json()["error"]["fields"] == [
                        {"field": name, "problem": "given more than once"}
                    ], (method, path, name)


def test_the_seeds_job_stats_keep_one_tenant_per_request(url):
    with client(url, ADMIN_EMAIL) as admin:
        once = admin.get("/api/v1/jobs/stats", params={"tenantId": "t1"})
        assert once.status_code == 200, once.text
        twice = admin.get("/api/v1/jobs/stats", params=[("tenantId", "t1"), ("tenantId", "t2")])
        assert twice.status_code == 422
        assert "tenantId" in twice.json()["error"]["message"]


def test_a_parameter_declared_as_a_list_may_be_repeated():
    app = FastAPI()
    errors.install(app)

    @app.get("/things", dependencies=[Depends(known_query_only)])
    def things(tag: list[str] | None = Query(None), limit: int = 10):
        return {"tags": tag, "limit": limit}

    with serving_app(app) as base, httpx.Client(base_url=base) as c:
        r = c.get("/things", params=[("tag", "a"), ("tag", "b")])
        assert r.status_code == 200 and r.json() == {"tags": ["a", "b"], "limit": 10}
        r = c.get("/things", params=[("tag", "a"), ("limit", "1"), ("limit", "2")])
        assert r.status_code == 422
        assert r.json()["error"]["fields"] == [
            {"field": "limit", "problem": "given more than once"}
        ]

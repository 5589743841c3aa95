"""The API docs: a valid OpenAPI document that tells the truth (security schemes, the real
error body, response models), and Swagger UI and ReDoc that render without internet."""

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from playwright.sync_api import expect

from superseller.api.openapi_doc import ERROR_SCHEMA
from superseller.config import Settings
from superseller.users.accounts import create_user
from tests.support import handlers
from tests.support.api import serving
from tests.support.browser import ADMIN, PASSWORD

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def url(engine, tmp_path):
    create_user(engine, ADMIN, PASSWORD, "admin")
    with serving(Settings(data_dir=tmp_path), engine, handlers.build_registry()) as u:
        yield u


def test_the_openapi_document_is_valid_and_tells_the_truth(url):
    doc = httpx.get(f"{url}/openapi.json").json()
    validate(doc)  # OpenAPI 3.1, by openapi-spec-validator
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["internalKey"]["in"], schemes["internalKey"]["name"]) == (
        "header",
        "X-Internal-Key",
    )
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    paths = doc["paths"]
    assert paths["/api/admin/jobs/{job_id}/retry"]["post"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/v1/jobs/sync-mercadolivre"]["post"]["security"] == [{"internalKey": []}]
    assert "security" not in paths["/api/v1/auth/login"]["post"]
    for path, ops in paths.items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    admin = paths["/api/admin/jobs/{job_id}/retry"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(admin)
    for path, method in [
        ("/api/admin/jobs/search", "get"),
        ("/api/admin/jobs/counts", "get"),
        ("/api/admin/jobs/audit", "get"),
        ("/api/admin/jobs/{job_id}", "get"),
        ("/api/admin/jobs/{job_id}/cancel", "post"),
    ]:
        ok = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok.get("$ref", "").startswith("#/components/schemas/"), path

    # The documented error body is the one the API sends.
    with httpx.Client(base_url=url) as c:
        c.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        for r in (
            c.get("/api/admin/jobs/search", params={"state": "exploded"}),
            c.get("/api/admin/jobs/424242"),
            httpx.get(f"{url}/api/admin/jobs/counts"),
        ):
            assert r.status_code in (401, 404, 422)
            jsonschema.validate(r.json(), ERROR_SCHEMA)


@pytest.mark.parametrize(("path", "operation"), [("/docs", ".opblock"), ("/redoc", "h2")])
def test_docs_render_with_the_network_off(browser, url, path, operation):
    """Only our own server answers: any other host (a CDN) is refused. Nothing the page needs
    (script, style, font, data) comes from elsewhere; ReDoc's bundle still asks for its
    decorative "powered by" logo, which is left out."""
    page = browser.new_page()
    outside = []

    def only_local(route):
        if route.request.url.startswith(url):
            route.continue_()
        else:
            if route.request.resource_type != "image":
                outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(url + path)
    expect(page.locator(operation).filter(has_text="retry").first).to_be_visible(timeout=20_000)
    assert outside == []
    page.close()

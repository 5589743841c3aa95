"""The OpenAPI document as the API really behaves: security schemes for the bearer token
(or the session cookie) and `X-Internal-Key`, each operation marked with the one it needs
(read from its dependencies), and the real error body `{"error": {...}}` for every 4xx an
operation can answer, instead of FastAPI's `{"detail": ...}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from superseller.api.admin_console import actor
from superseller.api.auth import current_user, require_admin
from superseller.api.deps import require_internal_key

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "invalid_request"},
                "message": {"type": "string", "example": "the request is not valid"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string", "example": "tenantId"},
                            "problem": {"type": "string", "example": "Field required"},
                        },
                    },
                },
            },
        }
    },
}
SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`POST /api/v1/auth/login` returns the token (the session cookie works too)",
    },
    "internalKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Internal-Key",
        "description": "INTERNAL_JOBS_KEY, for an external scheduler",
    },
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}  # what the same-origin guard may refuse
REASONS = {
    400: "Bad input (e.g. an invalid payload or schedule, a value that cannot be stored)",
    401: "Not logged in, or a missing or wrong key",
    403: "Administrators only, or a browser change from another origin (cross_origin_refused)",
    404: "Not found",
    409: "The job's state does not allow it",
    422: "The request does not match the schema",
    429: "Too many login attempts",
    503: "Not configured or not available",
}


def _calls(dependant) -> set:
    found = set()
    for dep in dependant.dependencies:
        found.add(dep.call)
        found |= _calls(dep)
    return found


def _needs(route: APIRoute) -> tuple[str | None, bool]:
    """(security scheme, admin only) from the route's dependencies."""
    calls = _calls(route.dependant)
    if require_internal_key in calls:
        return "internalKey", False
    if require_admin in calls or actor in calls:
        return "bearerAuth", True
    if current_user in calls:
        return "bearerAuth", False
    return None, False


def _api_routes(routes):
    """Every APIRoute, also inside included routers (FastAPI keeps those nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _names_a_tenant(op: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether the operation takes a `tenantId` (query or body): an unknown one is a 404."""
    if any(p.get("name") == "tenantId" for p in op.get("parameters", [])):
        return True
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = body.get("schema", {}).get("$ref", "")
    return "tenantId" in schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})


def _error(status: int) -> dict[str, Any]:
    return {
        "description": REASONS.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = ERROR_SCHEMA
        for name in ("ErrorBody", "ErrorDetail", "FieldProblem"):  # the same, as models
            schemas.pop(name, None)
        components["securitySchemes"] = SCHEMES
        for route in _api_routes(app.routes):
            if not route.include_in_schema:
                continue
            scheme, admin_only = _needs(route)
            for method in route.methods:
                op = doc["paths"].get(route.path_format, {}).get(method.lower())
                if op is None:
                    continue
                statuses = {422} if (op.get("parameters") or op.get("requestBody")) else set()
                if statuses:
                    statuses.add(400)
                if scheme:
                    op["security"] = [{scheme: []}]
                    statuses |= {401, 503} if scheme == "internalKey" else {401}
                if admin_only or method in UNSAFE:
                    statuses.add(403)  # admins only; a cross-origin browser change (guards.py)
                if "{" in route.path_format or _names_a_tenant(op, schemas):
                    statuses.add(404)
                if admin_only and method == "POST" and route.path_format.count("{") == 1:
                    statuses.add(409)
                if route.path_format == "/api/v1/auth/login":
                    statuses |= {401, 429}
                responses = op.setdefault("responses", {})
                for status in sorted(statuses):
                    responses[str(status)] = _error(status)
                for status, response in responses.items():  # declared by the route itself
                    if status[0] in "45":
                        response["content"] = _error(int(status))["content"]
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

"""The OpenAPI 3.1 schema of the REST API, written from the route table."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from ide.api.auth import api_endpoint
from ide.api.routes import ROUTES, openapi_path, path_params
from ide.roles import Capability

TYPES = {"int": {"type": "integer"}, "uuid": {"type": "string", "format": "uuid"},
         "str": {"type": "string"}, "serial": {"type": "string"}}


def schema() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        op: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": route.view.__name__,
            "x-required-capability": getattr(route.view, "capability", "read"),
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": TYPES[kind]}
                for name, kind in path_params(route.path)
            ] + [
                {"name": name, "in": "query", "required": False, "description": doc,
                 "schema": {"type": "string"}} for name, doc in route.query
            ],
            "responses": {
                str(route.status): {"description": "OK", "content": {
                    "application/json": {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        }
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": route.body}}}
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "oktoscripts REST API", "version": "1",
                 "description": "Scripts, versions, runs and devices. Authenticate with "
                                "'Authorization: Bearer <token>' (create tokens on the "
                                "API tokens page) or the browser session (with CSRF)."},
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "An error", "content": {
                "application/json": {"schema": {
                    "type": "object", "properties": {"error": {"type": "string"}}}}}}},
        },
        "security": [{"token": []}],
    }


@api_endpoint(Capability.READ)
def openapi_json(request: HttpRequest) -> JsonResponse:
    """Signed-in users only (session or token): the schema maps the whole API."""
    return JsonResponse(schema(), json_dumps_params={"indent": 1})

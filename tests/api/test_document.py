"""The OpenAPI document: valid 3.1, and the very routes the router serves."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from aiohttp.web import RouteDef, StaticResource
from openapi_spec_validator import validate

from crmd.console import ROUTES as CONSOLE_ROUTES
from crmd.http import middleware
from crmd.http.describe import described
from crmd.http.openapi import METHODS, api_routes, is_api_path
from crmd.http.responses import json_response

OPERATIONS = ("get", "put", "post", "delete", "patch")


async def _document(client: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


async def test_the_document_is_valid_openapi_3_1(client: Any) -> None:
    document = await _document(client)
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_the_router_and_the_document_list_the_same_routes(client: Any) -> None:
    document = await _document(client)
    listed = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in OPERATIONS
    }
    served = {(method, path) for method, path, _ in api_routes(client.app)}
    assert listed == served
    # Everything else the router serves is the console's (HTML pages and static files).
    console = {
        route.handler for table in CONSOLE_ROUTES for route in table if isinstance(route, RouteDef)
    }
    for route in client.app.router.routes():
        resource = route.resource
        if resource is None or route.method not in METHODS or is_api_path(resource.canonical):
            continue
        assert route.handler in console or isinstance(resource, StaticResource), resource
    assert len(listed) >= 50


async def test_every_operation_answers_errors_in_the_envelope(client: Any) -> None:
    document = await _document(client)
    envelope = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400 and path.startswith(("/c/", "/o/")):
                    assert list(response["content"]) == ["text/html"]  # a person follows it
                elif int(status) >= 400 and path != "/readyz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == envelope, (method, path, status)
            if path.startswith("/api/") and operation["security"]:
                assert "401" in operation["responses"], (method, path)


async def test_original_routes_are_deprecated_and_name_crmds(client: Any) -> None:
    document = await _document(client)
    segment = document["paths"]["/api/v1/segment"]["post"]
    assert segment["deprecated"] is True
    assert "`POST /api/v1/segments`" in segment["description"]
    body = segment["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/OriginalSegment"} in body["anyOf"]
    assert "deprecated" not in document["paths"]["/api/v1/segments"]["post"]
    deprecated = [
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("deprecated")
    ]
    assert len(deprecated) == 18


async def test_limits_and_enums_come_from_the_structs(client: Any) -> None:
    document = await _document(client)
    logs = document["paths"]["/api/v1/campaigns/{id}/logs"]["get"]
    params = {p["name"]: p for p in logs["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 500
    assert "DELIVERED" in str(params["status"]["schema"])
    schemas = document["components"]["schemas"]
    name = schemas["CampaignBody"]["properties"]["name"]
    assert name["maxLength"] == 200
    upload = document["paths"]["/api/v1/upload/{kind}"]["post"]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "text/csv"}
    kind = next(p for p in upload["parameters"] if p["name"] == "kind")
    assert kind["schema"]["enum"] == ["customers", "orders"]
    assert document["components"]["securitySchemes"]["accessToken"]["name"] == "x-access-token"
    receipt = document["paths"]["/api/v1/deliveryReceipt/{vendor}"]["post"]
    assert receipt["security"] == [{"receiptSignature": []}]
    created = document["paths"]["/api/v1/segments"]["post"]["responses"]["201"]
    assert created["links"]["get"]["operationId"] == "get_segment"


class Declared(msgspec.Struct):
    name: str


class Other(msgspec.Struct):
    count: int


async def test_an_answer_its_route_does_not_declare_fails_loudly(aiohttp_client: Any) -> None:
    routes = web.RouteTableDef()

    @routes.get("/api/v1/true")
    @described("tells the truth", tag="reference", ok=Declared, auth="public")
    async def truthful(request: web.Request) -> web.Response:
        return json_response(Declared("a"))

    @routes.get("/api/v1/wrong-shape")
    @described("answers another Struct", tag="reference", ok=Declared, auth="public")
    async def wrong_shape(request: web.Request) -> web.Response:
        return json_response(Other(1))

    @routes.get("/api/v1/wrong-status")
    @described("answers 201 where it declares 200", tag="reference", ok=Declared, auth="public")
    async def wrong_status(request: web.Request) -> web.Response:
        return json_response(Declared("a"), status=201)

    app = web.Application(middlewares=[middleware.errors, middleware.declared_answers])
    app.add_routes(routes)
    client = await aiohttp_client(app)
    assert (await client.get("/api/v1/true")).status == 200
    for lying in ("/api/v1/wrong-shape", "/api/v1/wrong-status"):
        response = await client.get(lying)
        assert response.status == 500, lying
        assert (await response.json())["error"]["code"] == "internal_error"

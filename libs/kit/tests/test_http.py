from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient
from proliferate.kit.errors import NotFound, ResourceExhausted
from proliferate.kit.http import create_app, readiness_route

SECRET = "http-test-secret-value-0123456789"


class ItemCreate(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    count: int


class Item(msgspec.Struct):
    name: str
    count: int


@post("/items", operation_id="create_item")
async def create_item(data: JSONBody[ItemCreate]) -> Item:
    return Item(name=data.name, count=data.count)


@get("/items/{item_id:str}", operation_id="get_item")
async def get_item(item_id: FromPath[str]) -> Item:
    if item_id == "crash":
        raise RuntimeError(f"leaking {SECRET}")
    if item_id == "busy":
        raise ResourceExhausted("slow down", code="too_many_requests", retry_after_s=7)
    raise NotFound("no such item", code="item_not_found", item_id=item_id)


async def ok() -> str:
    return "SERVING"


async def down() -> str:
    return "NOT_SERVING"


@pytest.fixture
def app() -> Litestar:
    return create_app(
        service="probe",
        route_handlers=[create_item, get_item, readiness_route({"a": ok, "b": ok})],
        max_body_bytes=1024,
    )


class TestErrors:
    async def test_malformed_json_is_400_invalid_json(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.post(
                "/items", content=b"{not json", headers={"content-type": "application/json"}
            )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"

    async def test_wrong_field_type_is_422_naming_the_field(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.post("/items", json={"name": "a", "count": "three"})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert any(f["field"] == "count" for f in error["details"]["fields"])

    @pytest.mark.parametrize("body", [b'{"name": ', b'{"name": "a"} trailing', b"\xff\xfe"])
    async def test_truncated_or_trailing_json_is_400_invalid_json(self, app: Litestar, body: bytes) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.post("/items", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"

    async def test_empty_body_is_400_invalid_json(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.post("/items", content=b"", headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"

    async def test_missing_field_is_422(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.post("/items", json={"name": "a"})
        assert response.status_code == 422
        assert "count" in str(response.json()["error"]["details"])

    async def test_body_over_the_limit_is_413(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.post("/items", json={"name": "a", "count": 1, "pad": "x" * 2048})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

    async def test_domain_error_maps_through_the_table(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.get("/items/abc", headers={"x-request-id": "req-123"})
        assert response.status_code == 404
        body = response.json()["error"]
        assert body == {
            "code": "item_not_found",
            "message": "no such item",
            "details": {"item_id": "abc"},
            "request_id": "req-123",
        }
        assert response.headers["x-request-id"] == "req-123"

    async def test_rate_limit_carries_retry_after(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.get("/items/busy")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"

    async def test_unexpected_error_is_500_without_trace(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            response = await client.get("/items/crash")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert "Traceback" not in response.text
        assert SECRET not in response.text

    async def test_unknown_route_and_method_are_typed(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            missing = await client.get("/nope")
            wrong = await client.delete("/items")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"


class TestProbes:
    async def test_healthz_and_openapi(self, app: Litestar) -> None:
        async with AsyncTestClient(app) as client:
            health = await client.get("/healthz")
            schema = await client.get("/openapi.json")
        assert health.status_code == 200
        operations = {
            op["operationId"]
            for path in schema.json()["paths"].values()
            for op in path.values()
            if "operationId" in op
        }
        assert {"create_item", "get_item"} <= operations

    async def test_readyz_is_200_only_when_every_check_passes(self) -> None:
        ready = create_app(service="probe", route_handlers=[readiness_route({"a": ok, "b": ok})])
        not_ready = create_app(service="probe", route_handlers=[readiness_route({"a": ok, "b": down})])
        async with AsyncTestClient(ready) as client:
            good = await client.get("/readyz")
        async with AsyncTestClient(not_ready) as client:
            bad = await client.get("/readyz")
        assert good.status_code == 200
        assert good.json() == {"status": "ready", "checks": {"a": "SERVING", "b": "SERVING"}}
        assert bad.status_code == 503
        assert bad.json()["checks"]["b"] == "NOT_SERVING"

"""The gateway's HTTP layer in-process (no bus needed): any unexpected exception becomes a
JSON 500 without a traceback, cache failures a 503, and body checks name every bad field."""
from __future__ import annotations

import redis.exceptions
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator

from parley_common.errors import Forbidden
from parley_gateway import schemas
from parley_gateway.http import add_security_headers, error_middleware, validation_details


async def _client() -> TestClient:
    async def boom(request):
        raise RuntimeError("secret internal detail")

    async def cache_down(request):
        raise redis.exceptions.ConnectionError("cache gone")

    async def forbidden(request):
        raise Forbidden()

    app = web.Application(middlewares=[error_middleware])
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/boom", boom)
    app.router.add_get("/cache", cache_down)
    app.router.add_get("/forbidden", forbidden)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_unexpected_exception_is_json_500_without_details():
    client = await _client()
    try:
        response = await client.get("/boom")
        assert response.status == 500
        body = await response.json()
        assert body["error"]["code"] == "internal_error"
        assert "secret" not in await response.text() and "Traceback" not in await response.text()
        assert response.headers["X-Frame-Options"] == "DENY"

        cache = await client.get("/cache")
        assert cache.status == 503 and (await cache.json())["error"]["code"] == "unavailable"
        assert int(cache.headers["Retry-After"]) > 0

        forbidden = await client.get("/forbidden")
        assert forbidden.status == 403 and (await forbidden.json())["error"]["code"] == "forbidden"

        missing = await client.get("/nowhere")
        assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
        wrong = await client.post("/boom")
        assert wrong.status == 405 and (await wrong.json())["error"]["code"] == "method_not_allowed"
    finally:
        await client.close()


def test_validation_details_name_every_bad_field_in_a_sentence():
    validator = Draft202012Validator(schemas.CREATE_ROOM)
    details = validation_details(validator, {"name": "", "kind": "secret", "member_ids": ["a", 3],
                                             "topic": "t" * 257})
    assert set(details) == {"name", "kind", "member_ids", "topic"}
    assert details["kind"] == "Kind must be one of: public, private."
    assert all(sentence.endswith(".") for sentence in details.values())
    assert validation_details(validator, {}) == {"name": "Name is required.",
                                                 "kind": "Kind is required."}
    assert validation_details(validator, {"name": "ok", "kind": "public", "extra": 1}) == {}

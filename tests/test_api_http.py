"""Public REST contract, the HTTP layer: malformed requests, unknown paths and methods, token
checks, the OpenAPI document, security headers, the web client's files, /healthz, /readyz,
/metrics, and 503 (not 500) when the services behind the gateway are missing."""
from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization

from helpers import PASSWORD, Client, new_user, start_extra_gateway, unique

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
CSP_PARTS = ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
             "connect-src 'self';", "base-uri 'none'")


def assert_security_headers(headers) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, dict(headers))
    csp = headers.get("Content-Security-Policy", "")
    for part in CSP_PARTS:
        assert part in csp, csp


# --- malformed requests ------------------------------------------------------------------------
async def test_malformed_bodies_get_the_right_codes(suite, http):
    alice = await new_user(http, suite.url)
    path = "/api/v1/rooms"

    not_json = await alice.post(path, data=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert not_json.status == 400 and not_json.error["code"] == "invalid_json", not_json
    for body in (b"[1, 2]", b'"text"', b"null", b""):
        reply = await alice.post(path, data=body, headers={"Content-Type": "application/json"})
        assert reply.status == 400 and reply.error["code"] == "invalid_json", (body, reply)

    form = await alice.post(path, data=b"name=x&kind=public",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415 and form.error["code"] == "unsupported_media_type", form
    plain = await alice.post(path, data=b'{"name": "x", "kind": "public"}',
                             headers={"Content-Type": "text/plain"})
    assert plain.status == 415

    huge = {"name": "big", "kind": "public", "topic": "x" * 70_000}
    too_large = await alice.post(path, huge)
    assert too_large.status == 413 and too_large.error["code"] == "too_large", too_large

    async def chunks():  # no Content-Length: the size is checked while reading
        for _ in range(20):
            yield b" " * 8192
    chunked = await alice.post(path, data=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status == 413, chunked

    wrong_types = await alice.post(path, {"name": 1, "kind": True, "member_ids": [1, 2]})
    assert wrong_types.status == 422
    assert set(wrong_types.error["details"]) == {"name", "kind", "member_ids"}
    # Unknown extra fields are ignored (documented in the OpenAPI description).
    extra = await alice.post(path, {"name": unique("r"), "kind": "public", "colour": "red"})
    assert extra.status == 201, extra


async def test_nul_and_lone_surrogates_are_refused_not_stored(suite, http):
    """JSON can carry "\\u0000" and "\\ud800"; PostgreSQL and UTF-8 cannot (fuzzing found
    a 500 on message edit)."""
    alice = await new_user(http, suite.url)
    room = (await alice.post("/api/v1/rooms", {"name": unique("r"), "kind": "public"})).body["room"]
    posted = await alice.post(f"/api/v1/rooms/{room['id']}/messages", {"text": "fine"})
    message_id = posted.body["message"]["id"]

    edit = await alice.request("PATCH", f"/api/v1/rooms/{room['id']}/messages/{message_id}",
                               {"text": "nul \u0000 inside"})
    assert edit.status == 422 and set(edit.error["details"]) == {"text"}, edit
    surrogate = await alice.post(f"/api/v1/rooms/{room['id']}/messages",
                                 {"text": "half a pair \ud83d", "client_id": "c1"})
    assert surrogate.status == 422 and set(surrogate.error["details"]) == {"text"}, surrogate
    odd_key = await alice.post("/api/v1/rooms", {"name": "x", "kind": "public", "\udc00": 1})
    assert odd_key.status == 422, odd_key
    query = await alice.get("/api/v1/users?q=%00")
    assert query.status == 422 and set(query.error["details"]) == {"q"}, query
    history = await alice.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["text"] for m in history.body["messages"]] == ["fine"]


async def test_unknown_paths_and_methods_are_json(suite, http):
    client = Client(http, suite.url)
    for path in ("/api/v1/nothing-here", "/nope", "/static/nope.js", "/static/../settings.py",
                 "/static/%2e%2e/settings.py",
                 "/static/" + "%CC%BA" * 200):  # a name too long for the filesystem (fuzzing found it)
        reply = await client.get(path)
        assert reply.status == 404 and reply.error["code"] == "not_found", (path, reply)
        assert_security_headers(reply.headers)
    wrong = await client.request("PUT", "/api/v1/auth/login", {"username": "x"})
    assert wrong.status == 405 and wrong.error["code"] == "method_not_allowed", wrong
    assert "POST" in wrong.headers["Allow"]
    bad_id = await new_user(http, suite.url)
    assert (await bad_id.get("/api/v1/rooms/" + "x" * 300)).status == 404


async def test_forged_tokens_are_refused(suite, http):
    alice = await new_user(http, suite.url)
    header = jwt.get_unverified_header(alice.token)
    claims = jwt.decode(alice.token, options={"verify_signature": False})
    keyfile = suite.isolation.workdir / "jwt-ed25519.pem"
    private = serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = {"kid": header["kid"]}

    genuine = jwt.encode(claims, private, algorithm="EdDSA", headers=kid)
    assert (await alice.get("/api/v1/users/me", token=genuine)).status == 200

    forged = {
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 60}, private,
                              algorithm="EdDSA", headers=kid),
        "no sid": jwt.encode({k: v for k, v in claims.items() if k != "sid"}, private,
                             algorithm="EdDSA", headers=kid),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, private,
                             algorithm="EdDSA", headers=kid),
        "unknown kid": jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "nokey"}),
        "hs256 with the public key": _hs256(claims, public_pem, header["kid"]),
    }
    for what, token in forged.items():
        reply = await alice.get("/api/v1/users/me", token=token)
        assert reply.status == 401 and reply.error["code"] == "unauthenticated", (what, reply)


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """The classic algorithm-confusion forgery (PyJWT refuses to build it; do it by hand)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "."
                     + b64(json.dumps(claims).encode()))
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


# --- documents, headers, files --------------------------------------------------------------------
async def test_openapi_lists_every_route_with_schemas(suite, http):
    reply = await Client(http, suite.url).get("/api/v1/openapi.json")
    assert reply.status == 200
    doc = reply.body
    assert doc["openapi"].startswith("3.")
    expected = {
        "/api/v1/auth/register": {"post"}, "/api/v1/auth/login": {"post"},
        "/api/v1/auth/logout": {"post"}, "/api/v1/users/me": {"get", "patch", "delete"},
        "/api/v1/users": {"get"}, "/api/v1/users/{user_id}": {"get"},
        "/api/v1/rooms": {"get", "post"}, "/api/v1/rooms/direct": {"post"},
        "/api/v1/rooms/{room_id}": {"get", "patch", "delete"},
        "/api/v1/rooms/{room_id}/join": {"post"}, "/api/v1/rooms/{room_id}/leave": {"post"},
        "/api/v1/rooms/{room_id}/members": {"get", "post"},
        "/api/v1/rooms/{room_id}/mute": {"put"},
        "/api/v1/rooms/{room_id}/messages": {"get", "post"},
        "/api/v1/rooms/{room_id}/messages/{message_id}": {"patch", "delete"},
        "/api/v1/rooms/{room_id}/read": {"post"}, "/api/v1/conversations": {"get"},
        "/api/v1/ws": {"get"}, "/api/v1/openapi.json": {"get"},
        "/healthz": {"get"}, "/readyz": {"get"}, "/metrics": {"get"}, "/": {"get"},
    }
    for path, methods in expected.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, doc["paths"][path].keys())
    register_op = doc["paths"]["/api/v1/auth/register"]["post"]
    body_schema = register_op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body_schema["required"]) == {"username", "email", "password"}
    assert {"201", "409", "422"} <= set(register_op["responses"])
    list_params = {p["name"] for p in doc["paths"]["/api/v1/rooms"]["get"]["parameters"]}
    assert list_params == {"scope", "q", "limit", "cursor"}
    history = {p["name"] for p in doc["paths"]["/api/v1/rooms/{room_id}/messages"]["get"]["parameters"]}
    assert {"before_seq", "after_seq", "limit"} <= history
    assert {"Error", "User", "Room", "Message"} <= set(doc["components"]["schemas"])
    try:
        from openapi_spec_validator import validate
    except ImportError:
        return
    validate(doc)


async def test_security_headers_everywhere_and_web_client_served(suite, http):
    client = Client(http, suite.url)
    async with http.get(suite.url + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "<html" in (await response.text()).lower()
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
        assert_security_headers(response.headers)
    async with http.get(suite.url + "/", headers={"If-None-Match": etag}) as response:
        assert response.status == 304  # revalidation
    async with http.get(suite.url + "/static/app.js") as response:
        assert response.status == 200 and "javascript" in response.content_type
        assert_security_headers(response.headers)
    alice = await new_user(http, suite.url)
    for reply in (await alice.get("/api/v1/users/me"), await client.get("/api/v1/users/me"),
                  await client.get("/healthz"), await client.get("/api/v1/openapi.json")):
        assert_security_headers(reply.headers)


async def test_health_readiness_and_metrics(suite, http):
    client = Client(http, suite.url)
    health = await client.get("/healthz")
    assert health.status == 200 and health.body == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200, ready
    assert {"broker", "cache", "auth", "rooms"} <= set(ready.body["checks"])
    await new_user(http, suite.url)  # some RPC and HTTP traffic to count
    async with http.get(suite.url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    for name in ("parley_gateway_ws_connections", "parley_gateway_ws_frames_in_total",
                 "parley_gateway_ws_frames_out_total", "parley_gateway_rpc_latency_seconds_bucket",
                 "parley_gateway_event_lag_seconds", "parley_gateway_http_requests_total",
                 "parley_gateway_events_in_total"):
        assert name in text, name
    assert 'method="auth.register"' in text and 'outcome="ok"' in text
    assert 'route="/api/v1/auth/login"' in text
    # Readiness as gauges (what deploy/prometheus alerts on), computed at the scrape.
    assert "\nparley_gateway_ready 1.0\n" in text
    for check in ("broker", "cache", "auth", "rooms", "keys"):
        assert f'parley_gateway_ready_check{{check="{check}"}} 1.0' in text, check


# --- dependencies down -----------------------------------------------------------------------------
async def test_missing_services_give_503_not_500(suite, http):
    alice = await new_user(http, suite.url)  # a genuine token from the running suite
    vhost = f"parley-empty-{uuid.uuid4().hex[:8]}"
    empty_broker = suite.isolation.servers.create_vhost(vhost)
    proc = None
    try:
        proc, url = start_extra_gateway(suite, "gateway-alone", AMQP_URI=empty_broker,
                                        RPC_TIMEOUT_SECONDS="1", LOG_SHIP="0")
        client = Client(http, url)
        register_reply = await client.post("/api/v1/auth/register", {
            "username": unique(), "email": f"{unique()}@example.com", "password": PASSWORD})
        assert register_reply.status == 503, register_reply
        assert register_reply.error["code"] == "unavailable"
        assert int(register_reply.headers["Retry-After"]) > 0
        # Tokens cannot be checked without auth's keys: 503, not 401 and not 500.
        me = await alice.at(url).get("/api/v1/users/me")
        assert me.status == 503 and "Retry-After" in me.headers, me
        ready = await client.get("/readyz")
        assert ready.status == 503 and ready.error["code"] == "unavailable", ready
        assert {"auth", "rooms"} <= set(ready.error["details"]["failed"])
        assert "Retry-After" in ready.headers
        async with http.get(url + "/metrics") as response:
            assert response.status == 200  # metrics still answer, saying what is wrong
            text = await response.text()
        assert "\nparley_gateway_ready 0.0\n" in text
        assert 'parley_gateway_ready_check{check="auth"} 0.0' in text
        assert 'parley_gateway_ready_check{check="rooms"} 0.0' in text
        assert (await client.get("/healthz")).status == 200  # alive, just not ready
        assert "Traceback" not in proc.output(20000)
    finally:
        if proc is not None:
            proc.stop()
        suite.isolation.servers.delete_vhost(vhost)

"""Hostile inputs: deeply nested JSON, control/format characters in names, no internal names
in error bodies, the Content-Security-Policy."""
from __future__ import annotations

import aiohttp

from helpers import Client, auth_headers, new_user, next_frame, unique, ws_url

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"type":"ping","x":' + '{"a":' * 3000 + "1" + "}" * 3000 + "}"


async def test_deep_json_is_invalid_json_on_rest(suite, http):
    alice = await new_user(http, suite.url)
    for body in (DEEP, DEEP_OBJECT, '{"name":' + "[" * 100 + "]" * 100 + "}"):
        reply = await alice.request("POST", "/api/v1/rooms", data=body.encode(),
                                    headers={"Content-Type": "application/json"})
        assert reply.status == 400 and reply.error["code"] == "invalid_json", reply
    unauthenticated = await Client(http, suite.url).request(
        "POST", "/api/v1/auth/login", data=DEEP.encode(),
        headers={"Content-Type": "application/json"})
    assert unauthenticated.status == 400 and unauthenticated.error["code"] == "invalid_json"
    gateway = suite.procs["gateway-1"].output(200_000)
    assert "RecursionError" not in gateway and "Traceback" not in gateway


async def test_deep_json_on_a_socket(suite, http):
    alice = await new_user(http, suite.url)
    ws = await http.ws_connect(ws_url(suite.url), headers=auth_headers(alice.token))
    await next_frame(ws, "ready")
    for data in (DEEP, DEEP_OBJECT):
        await ws.send_str(data)
        error = await next_frame(ws, "error")
        assert error["code"] == "invalid_json", error
    await ws.send_json({"type": "ping", "ref": 7})  # still open and answering
    assert (await next_frame(ws, "pong"))["ref"] == 7
    await ws.close()
    # Before authentication: a deep first frame is not an auth frame -> 4401.
    raw = await http.ws_connect(ws_url(suite.url))
    await raw.send_str('{"type":"auth","token":' + "[" * 5000 + "]" * 5000 + "}")
    msg = await raw.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and raw.close_code == 4401, (msg, raw.close_code)
    assert "RecursionError" not in suite.procs["gateway-1"].output(200_000)


BAD_CHARACTERS = ["\u200b", "\u202e", "\u2066", "\ufeff", "\x07", "\n", "\u00ad"]


async def test_names_and_topics_refuse_control_and_format_characters(suite, http):
    alice = await new_user(http, suite.url)
    ok = await alice.post("/api/v1/rooms", {"name": unique("r"), "kind": "public"})
    assert ok.status == 201, ok
    room_id = ok.body["room"]["id"]
    for ch in BAD_CHARACTERS:
        name = f"evil{ch}{unique('r')}"
        created = await alice.post("/api/v1/rooms", {"name": name, "kind": "public"})
        assert created.status == 422 and "name" in created.error["details"], (repr(ch), created)
        topic = await alice.post("/api/v1/rooms", {"name": unique("r"), "kind": "private",
                                                   "topic": f"a{ch}b"})
        assert topic.status == 422 and "topic" in topic.error["details"], (repr(ch), topic)
        for field, value in (("name", name), ("topic", f"x{ch}y")):
            patched = await alice.patch(f"/api/v1/rooms/{room_id}", {field: value})
            assert patched.status == 422 and field in patched.error["details"], (repr(ch), patched)
        display = await alice.patch("/api/v1/users/me", {"display_name": f"Al{ch}ice"})
        assert display.status == 422 and "display_name" in display.error["details"], display
    # Ordinary non-ASCII text is fine.
    fine = await alice.post("/api/v1/rooms", {"name": f"Café ☕ {unique('r')}", "kind": "public",
                                              "topic": "Ünïcödé, עברית, 日本語"})
    assert fine.status == 201, fine


async def test_errors_never_name_internal_exceptions():
    from parley_common.errors import from_body, from_remote

    fault = from_remote({"exc_type": "KeyError", "exc_path": "builtins.KeyError",
                         "exc_args": ["x"], "value": "x"})
    assert fault.code == "internal_error" and "remote" not in fault.to_body()["error"]["details"]
    assert "KeyError" not in str(fault.to_body())
    assert "remote" not in from_body({"nonsense": 1}).to_body()["error"]["details"]


async def test_csp_allows_connections_to_this_origin_only(suite, http):
    async with http.get(suite.url + "/") as response:
        csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["connect-src"] == ["'self'"], csp

"""The refresh credential (cookie or body, rotated, reuse ends the session), managing one's
sessions and password, account deletion asking for the password, transient password RPCs,
session ids kept out of logs."""
from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest

from helpers import PASSWORD, Client, register, unique

REFRESH = "/api/v1/auth/refresh"


def refresh_cookie(response_headers) -> dict:
    """The parley_refresh Set-Cookie: value and attributes (lowercased names)."""
    for header in response_headers.getall("Set-Cookie", []):
        name, _, rest = header.partition("=")
        if name.strip() == "parley_refresh":
            value, *attributes = [part.strip() for part in rest.split(";")]
            attrs = {}
            for attribute in attributes:
                key, _, val = attribute.partition("=")
                attrs[key.lower()] = val
            return {"value": value, **attrs}
    raise AssertionError(f"no parley_refresh cookie in {response_headers}")


async def browser_login(http, base: str, username: str, user_agent: str = "TestBrowser/1"):
    async with http.post(f"{base}/api/v1/auth/login",
                         json={"username": username, "password": PASSWORD},
                         headers={"User-Agent": user_agent}) as response:
        assert response.status == 200
        return await response.json(), refresh_cookie(response.headers)


async def cookie_refresh(http, base: str, value: str):
    async with http.post(base + REFRESH, headers={"Cookie": f"parley_refresh={value}"}) as response:
        body = await response.json()
        cookie = refresh_cookie(response.headers) if response.status == 200 else None
        return response.status, body, cookie


async def test_login_sets_an_httponly_secure_strict_cookie_scoped_to_refresh(suite, http):
    user = await register(http, suite.url)
    body, cookie = await browser_login(http, suite.url, user["username"])
    assert "refresh_token" not in body  # script never sees the credential
    assert "httponly" in cookie and "secure" in cookie, cookie
    assert cookie["samesite"].lower() == "strict" and cookie["path"] == REFRESH, cookie
    assert int(cookie["max-age"]) > 3600


async def test_refresh_rotates_and_reuse_ends_the_whole_session(suite, http):
    user = await register(http, suite.url)
    body, first = await browser_login(http, suite.url, user["username"])
    status, renewed, second = await cookie_refresh(http, suite.url, first["value"])
    assert status == 200 and second["value"] != first["value"], renewed
    me = Client(http, suite.url, renewed["access_token"])
    assert (await me.get("/api/v1/users/me")).status == 200
    status, third_body, third = await cookie_refresh(http, suite.url, second["value"])
    assert status == 200
    # The first credential again: a copy is in someone else's hands -> the session ends.
    status, refused, _ = await cookie_refresh(http, suite.url, first["value"])
    assert status == 401 and refused["error"]["code"] == "unauthenticated", refused
    status, _, _ = await cookie_refresh(http, suite.url, third["value"])
    assert status == 401  # the newest credential is dead too
    for token in (body["access_token"], renewed["access_token"], third_body["access_token"]):
        assert (await Client(http, suite.url, token).get("/api/v1/users/me")).status == 401


async def test_list_and_revoke_my_sessions(suite, http):
    user = await register(http, suite.url)
    phone, _ = await browser_login(http, suite.url, user["username"], "Phone/1")
    laptop, _ = await browser_login(http, suite.url, user["username"], "Laptop/2")
    tablet, _ = await browser_login(http, suite.url, user["username"], "Tablet/3")
    me = Client(http, suite.url, laptop["access_token"])
    listed = (await me.get("/api/v1/auth/sessions")).body["sessions"]
    assert {s["user_agent"] for s in listed} == {"Phone/1", "Laptop/2", "Tablet/3"}
    assert [s["user_agent"] for s in listed if s["current"]] == ["Laptop/2"]
    assert all(s["created_at"] and s["last_used_at"] for s in listed)
    phone_id = next(s["id"] for s in listed if s["user_agent"] == "Phone/1")
    assert (await me.delete(f"/api/v1/auth/sessions/{phone_id}")).status == 204
    assert (await Client(http, suite.url, phone["access_token"]).get("/api/v1/users/me")).status == 401
    # Someone else's session id is not found.
    other = await register(http, suite.url)
    other_body, _ = await browser_login(http, suite.url, other["username"])
    assert (await Client(http, suite.url, other_body["access_token"]).delete(
        f"/api/v1/auth/sessions/{next(s['id'] for s in listed if s['current'])}")).status == 404
    ended = await me.delete("/api/v1/auth/sessions")
    assert ended.status == 200 and ended.body["revoked"] == 1, ended
    assert (await Client(http, suite.url, tablet["access_token"]).get("/api/v1/users/me")).status == 401
    assert (await me.get("/api/v1/users/me")).status == 200
    assert len((await me.get("/api/v1/auth/sessions")).body["sessions"]) == 1


async def test_change_password_needs_the_old_one_and_ends_other_sessions(suite, http):
    user = await register(http, suite.url)
    here, _ = await browser_login(http, suite.url, user["username"])
    there, _ = await browser_login(http, suite.url, user["username"])
    me = Client(http, suite.url, here["access_token"])
    wrong = await me.post("/api/v1/auth/password", {"old_password": "not it at all",
                                                    "new_password": "a brand new one"})
    assert wrong.status == 422 and "old_password" in wrong.error["details"], wrong
    short = await me.post("/api/v1/auth/password", {"old_password": PASSWORD,
                                                    "new_password": "short"})
    assert short.status == 422 and "new_password" in short.error["details"], short
    done = await me.post("/api/v1/auth/password", {"old_password": PASSWORD,
                                                   "new_password": "a brand new one"})
    assert done.status == 204, done
    assert (await me.get("/api/v1/users/me")).status == 200
    assert (await Client(http, suite.url, there["access_token"]).get("/api/v1/users/me")).status == 401
    anon = Client(http, suite.url)
    assert (await anon.post("/api/v1/auth/login", {"username": user["username"],
                                                   "password": PASSWORD})).status == 401
    assert (await anon.post("/api/v1/auth/login", {"username": user["username"],
                                                   "password": "a brand new one"})).status == 200


async def test_password_rpcs_are_transient_and_session_ids_stay_out_of_logs(suite, http):
    connection = await aio_pika.connect_robust(suite.env["AMQP_URI"])
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("nameko-rpc", aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        spy = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in ("auth.login", "auth.register", "auth.change_password", "auth.delete_me"):
            await spy.bind(exchange, routing_key=key)
        name = unique()
        user = await register(http, suite.url, name)
        body, _ = await browser_login(http, suite.url, name)
        me = Client(http, suite.url, body["access_token"])
        assert (await me.post("/api/v1/auth/password", {"old_password": PASSWORD,
                                                        "new_password": PASSWORD + "!"})).status == 204
        sessions = (await me.get("/api/v1/auth/sessions")).body["sessions"]
        assert (await me.request("DELETE", "/api/v1/users/me",
                                 {"password": PASSWORD + "!"})).status == 204
        seen = {}
        for _ in range(40):
            message = await spy.get(no_ack=True, fail=False)
            if message is None:
                if len(seen) == 4:
                    break
                await asyncio.sleep(0.05)
                continue
            payload = json.loads(message.body)
            if name in json.dumps(payload) or user["id"] in json.dumps(payload):
                seen[message.routing_key] = message.delivery_mode
        assert seen == {"auth.register": 1, "auth.login": 1, "auth.change_password": 1,
                        "auth.delete_me": 1}, seen  # 1 = transient: never on the broker's disk
    finally:
        await connection.close()
    session_id = sessions[0]["id"]
    for proc in ("auth", "gateway-1", "gateway-2"):
        assert session_id not in suite.procs[proc].output(2_000_000), proc

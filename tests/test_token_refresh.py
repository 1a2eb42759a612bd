"""POST /api/v1/auth/refresh and the WebSocket's second `auth` frame: a session outlives its
first token for as long as the client keeps renewing it with its (rotating) refresh
credential, and ends at once on logout. The credential's own rules (cookie, rotation, reuse):
tests/security/test_sessions.py."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from helpers import (PASSWORD, Client, auth_headers, login, next_frame, receive_frame,
                     register, short_token_suite, ws_url)


async def refresh(http, base: str, refresh_token: str):
    async with http.post(f"{base}/api/v1/auth/refresh",
                         json={"refresh_token": refresh_token}) as response:
        return response.status, await response.json()


async def cli_login(http, base: str, username: str) -> dict:
    """A login whose refresh credential comes in the body (as parley-cli asks for it)."""
    async with http.post(f"{base}/api/v1/auth/login",
                         json={"username": username, "password": PASSWORD,
                               "refresh_delivery": "body"}) as response:
        assert response.status == 200
        return await response.json()


async def test_refresh_issues_a_working_token_until_logout(suite, http):
    gw = suite.gateway_urls[0]
    user = await register(http, gw)
    first = await cli_login(http, gw, user["username"])
    status, body = await refresh(http, gw, first["refresh_token"])
    assert status == 200, body
    assert set(body) == {"access_token", "token_type", "expires_in", "user", "refresh_token",
                         "refresh_expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["user"]["id"] == user["id"] and body["access_token"] != first["access_token"]
    assert body["refresh_token"] != first["refresh_token"]  # rotated
    renewed = Client(http, suite.gateway_urls[1], body["access_token"], body["user"])
    assert (await renewed.get("/api/v1/users/me")).status == 200
    old = Client(http, gw, first["access_token"])
    assert (await old.get("/api/v1/users/me")).status == 200  # the old one lives out its time

    assert (await renewed.post("/api/v1/auth/logout")).status == 204
    assert (await old.get("/api/v1/users/me")).status == 401  # one session: both end together
    status, error = await refresh(http, gw, body["refresh_token"])
    assert status == 401 and error["error"]["code"] == "unauthenticated", error
    status, error = await refresh(http, gw, "not-a-token")
    assert status == 401
    # An access token is not a refresh credential.
    async with http.post(f"{gw}/api/v1/auth/refresh",
                         headers=auth_headers(body["access_token"])) as response:
        assert response.status == 401


async def test_a_socket_takes_a_renewed_token_of_its_own_session_only(suite, http):
    gw = suite.gateway_urls[1]
    user = await register(http, gw)
    mine = await cli_login(http, gw, user["username"])
    other_session = await login(http, gw, user["username"])
    ws = await http.ws_connect(ws_url(gw), headers=auth_headers(mine["access_token"]))
    await next_frame(ws, "ready")
    _, body = await refresh(http, gw, mine["refresh_token"])
    await ws.send_json({"type": "auth", "token": body["access_token"], "ref": "renew"})
    renewed = await next_frame(ws, "renewed", ref="renew")
    assert renewed["expires_in"] > 0
    await ws.send_json({"type": "auth", "token": other_session["access_token"], "ref": "other"})
    assert (await next_frame(ws, "error", ref="other"))["code"] == "forbidden"
    await ws.send_json({"type": "auth", "token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln", "ref": "bad"})
    assert (await next_frame(ws, "error", ref="bad"))["code"] == "unauthenticated"
    await ws.send_json({"type": "ping", "ref": "still"})  # refused renewals leave it open
    await next_frame(ws, "pong", ref="still")
    await ws.close()


short_tokens = short_token_suite("shorttokens", 6)


async def test_a_renewed_socket_outlives_its_first_token_and_then_expires(short_tokens, http):
    gw = short_tokens
    user = await register(http, gw)
    body = await cli_login(http, gw, user["username"])
    started = time.monotonic()
    ws = await http.ws_connect(ws_url(gw), headers=auth_headers(body["access_token"]))
    await next_frame(ws, "ready")
    await asyncio.sleep(3)
    status, fresh = await refresh(http, gw, body["refresh_token"])
    assert status == 200, fresh
    await ws.send_json({"type": "auth", "token": fresh["access_token"], "ref": "renew"})
    await next_frame(ws, "renewed", ref="renew")
    # Whole-second token times: the first expires by 6 s after the socket opened, the
    # refreshed one no sooner than 8 s after.
    await asyncio.sleep(max(0.0, 7 - (time.monotonic() - started)))
    await ws.send_json({"type": "ping", "ref": "alive"})
    await next_frame(ws, "pong", ref="alive")
    # Not renewed again: the socket closes when the refreshed token expires.
    with pytest.raises(AssertionError, match="socket closed"):
        while True:
            await receive_frame(ws, timeout=8)
    assert ws.close_code == 4401


async def test_the_terminal_client_keeps_its_session_while_chatting(short_tokens, http, tmp_path):
    gw, token_file = short_tokens, tmp_path / "token"
    env = {**os.environ, "PARLEY_TOKEN_FILE": str(token_file)}

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "parley_cli", "--url", gw, *args],
                              input=stdin, capture_output=True, text=True, env=env, timeout=60)

    user = await register(http, gw)
    assert cli("login", user["username"], stdin=PASSWORD + "\n").returncode == 0
    first_token = json.loads(token_file.read_text())["access_token"]
    created = cli("create", "long chat")
    assert created.returncode == 0, created.stderr
    listed = cli("rooms")
    room_id = next(line.split()[0] for line in listed.stdout.splitlines() if "long chat" in line)

    chat = subprocess.Popen([sys.executable, "-m", "parley_cli", "--url", gw, "chat", room_id],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        await asyncio.sleep(9)  # past the first token's 6 s
        out, err = chat.communicate("typed after the first token expired\n/quit\n", timeout=30)
    finally:
        if chat.poll() is None:
            chat.kill()
    assert chat.returncode == 0, (out, err)
    kept = json.loads(token_file.read_text())
    assert kept["access_token"] != first_token  # the renewed token was kept
    history = requests.get(f"{gw}/api/v1/rooms/{room_id}/messages",
                           headers=auth_headers(kept["access_token"]), timeout=10).json()
    assert [m["text"] for m in history["messages"]] == ["typed after the first token expired"]


async def test_the_full_screen_client_keeps_its_session_and_socket(short_tokens, http, tmp_path):
    """Past its first token's life the client still talks over the same socket (renewed with
    `auth`) and over HTTP (renewed before each call), and the token file holds the newest."""
    import aiohttp
    from parley_cli.client import Parley, token_expiry
    from parley_cli.tui import ParleyApp

    gw = short_tokens
    alice, bob = await register(http, gw), await register(http, gw)
    bob_body = await cli_login(http, gw, bob["username"])
    bob_api = Client(http, gw, bob_body["access_token"], bob_body["user"])
    room = (await bob_api.post("/api/v1/rooms", {"name": "long view", "kind": "public"})).body["room"]
    async with aiohttp.ClientSession() as own:
        parley = Parley(own, gw, tmp_path / "token")
        parley.save_tokens(await cli_login(own, gw, alice["username"]))
        await parley.call("POST", f"/api/v1/rooms/{room['id']}/join")
        first_expiry = token_expiry(parley.load_tokens()["access_token"])
        app = ParleyApp(parley)
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 60
            while not (app.connected.is_set() and time.time() > first_expiry + 2):
                assert time.monotonic() < deadline, app.status_text()
                await asyncio.sleep(0.2)
            assert app.connects == 1, app.status_text()  # the socket was renewed, not reopened
            bob_api.token = (await refresh(http, gw, bob_body["refresh_token"]))[1]["access_token"]
            await bob_api.post(f"/api/v1/rooms/{room['id']}/messages", {"text": "still there?"})
            while "still there?" not in app.transcript_text().plain:
                assert time.monotonic() < deadline, app.status_text()
                await asyncio.sleep(0.1)
            await pilot.press(*"yes", "enter")
            while "yes" not in [m["text"] for m in app.rooms[room["id"]].messages.values()]:
                assert time.monotonic() < deadline, app.status_text()
                await asyncio.sleep(0.1)
            assert app.connects == 1
    assert token_expiry(json.loads((tmp_path / "token").read_text())["access_token"]) > first_expiry

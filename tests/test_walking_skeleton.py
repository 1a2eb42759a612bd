"""The thinnest real path through the whole suite, with every process real:
register, log in, create a public room, two sockets on two gateway instances, send from one,
receive at the other with its seq (gateway -> RPC -> rooms -> event -> gateway), and the
logger has archived records from all five processes."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import aiohttp
from helpers import next_frame

from parley_common.testing import wait_until

SERVICES = {"auth", "rooms", "gateway", "logger", "cleaner"}


async def register_and_login(http: aiohttp.ClientSession, base: str) -> tuple[str, dict]:
    name = f"u{uuid.uuid4().hex[:10]}"
    async with http.post(f"{base}/api/v1/auth/register", json={
            "username": name, "email": f"{name}@example.com", "password": "correct horse 1"}) as r:
        assert r.status == 201, await r.text()
        user = (await r.json())["user"]
        assert "password" not in json.dumps(user) and user["username"] == name
    async with http.post(f"{base}/api/v1/auth/login",
                         json={"username": name, "password": "correct horse 1"}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    return body["access_token"], user


async def test_message_crosses_two_gateways_and_every_process_logs(suite):
    gw_a, gw_b = suite.gateway_urls[:2]
    async with aiohttp.ClientSession() as http:
        alice_token, alice = await register_and_login(http, gw_a)
        bob_token, bob = await register_and_login(http, gw_b)

        async with http.post(f"{gw_a}/api/v1/rooms", json={"name": f"lobby-{uuid.uuid4().hex[:6]}", "kind": "public"},
                             headers={"Authorization": f"Bearer {alice_token}"}) as r:
            assert r.status == 201, await r.text()
            room = (await r.json())["room"]
        async with http.post(f"{gw_b}/api/v1/rooms/{room['id']}/join",
                             headers={"Authorization": f"Bearer {bob_token}"}) as r:
            assert r.status == 200, await r.text()

        async with http.ws_connect(f"{gw_a}/api/v1/ws") as ws_alice, \
                http.ws_connect(f"{gw_b}/api/v1/ws",
                                headers={"Authorization": f"Bearer {bob_token}"}) as ws_bob:
            await ws_alice.send_json({"type": "auth", "token": alice_token})  # browser style
            assert (await next_frame(ws_alice, "ready"))["user"]["id"] == alice["id"]
            for ws in (ws_alice, ws_bob):
                await ws.send_json({"type": "subscribe", "room_id": room["id"], "ref": "s1"})
                subscribed = await next_frame(ws, "subscribed")
                assert subscribed["room_id"] == room["id"] and subscribed["ref"] == "s1"

            await ws_alice.send_json({"type": "send", "room_id": room["id"], "text": "hello bob",
                                      "client_id": "c-1", "ref": "m1"})
            ack = await next_frame(ws_alice, "ack")
            assert ack["client_id"] == "c-1" and ack["message"]["seq"] == 1

            received = await next_frame(ws_bob, "message")
            message = received["message"]
            assert message["text"] == "hello bob" and message["seq"] == 1
            assert message["author"]["id"] == alice["id"] and message["room_id"] == room["id"]

    # Every process ships its records to parley.logs; the logger archives them.
    logger_env = suite.procs["logger"].env

    def archived_services() -> set:
        result = subprocess.run([sys.executable, "-m", "parley_logger.query", "--since", "1h",
                                 "--limit", "5000", "--json"], env=logger_env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return {json.loads(line)["service"] for line in result.stdout.splitlines() if line.strip()}

    def all_archived() -> set | None:
        services = archived_services()
        return services if SERVICES <= services else None

    assert wait_until(all_archived, 30, interval=1, what="log records from all five processes")

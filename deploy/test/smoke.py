"""The deployed stack, through its load balancer only (used by deploy/test/deploy_test.sh).

    smoke.py --base http://127.0.0.1:8080                 register, login, room, two WebSocket
                                                          clients on different gateways, history
    smoke.py --base ... --kill-during-stream 'CMD'        also: stream messages, start CMD (a
                                                          kill of a rooms replica, a rolling
                                                          upgrade) halfway and keep streaming
                                                          while it runs; resend unacknowledged
                                                          ones with the same client_id, reconnect
                                                          closed sockets; every acknowledged
                                                          message must be in the history, once
             ... --expect-reconnect                       also: both sockets were closed by the
                                                          command (their gateways were replaced)
                                                          and the clients reconnected
    smoke.py --base ... --rotate-key 'CMD' --retire-key 'CMD2'
                                                          JWT key rotation: a token and a live
                                                          WebSocket from before CMD keep working
                                                          on every gateway, a new login carries a
                                                          new kid accepted by every gateway; after
                                                          CMD2 (old key removed) logins still work

Prints one line per step; exits 1 with the reason on the first failure.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
import uuid

import aiohttp

WS_TIMEOUT = 15.0
MAX_STREAM = 90  # + the smoke's 4 messages: one page of history (limit 100)


class Failed(Exception):
    pass


def step(text: str) -> None:
    print(f"[smoke] {text}", flush=True)


async def call(http: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
               body=None, expect: int | tuple = (200, 201), retried_ok: tuple = ()) -> dict:
    """One API call. A 503 (a dependency busy or restarting) is retried after its Retry-After,
    as the API asks clients to, a few times and visibly; a status in ``retried_ok`` after
    such a retry means the first attempt went through (e.g. 409 for a repeated register)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    expected = expect if isinstance(expect, tuple) else (expect,)
    for attempt in range(5):
        async with http.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            if response.status == 503 and attempt < 4:
                wait = float(response.headers.get("Retry-After", "2"))
                step(f"{method} {url} -> 503 ({text[:120]}); retrying in {wait:.0f} s")
                await asyncio.sleep(wait)
                continue
            if attempt and response.status in retried_ok:
                return {}
            if response.status not in expected:
                raise Failed(f"{method} {url} -> {response.status} {text[:300]}")
            return json.loads(text) if text else {}


async def wait_ready(http: aiohttp.ClientSession, base: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
                last = f"{response.status} {(await response.text())[:300]}"
        except aiohttp.ClientError as exc:
            last = repr(exc)
        await asyncio.sleep(2)
    raise Failed(f"/readyz not 200 within {seconds:.0f} s: {last}")


async def new_user(http, base: str, name: str, password: str | None = None) -> tuple[str, dict]:
    password = password or "correct horse " + uuid.uuid4().hex[:8]
    await call(http, "POST", f"{base}/api/v1/auth/register",
               body={"username": name, "email": f"{name}@example.com", "password": password}, expect=201,
               retried_ok=(409,))
    return await login(http, base, name, password)


async def login(http, base: str, name: str, password: str) -> tuple[str, dict]:
    answer = await call(http, "POST", f"{base}/api/v1/auth/login",
                        body={"username": name, "password": password}, expect=200)
    return answer["access_token"], answer["user"]


async def frame(ws, wanted: str, timeout: float = WS_TIMEOUT, **match) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failed(f"no {wanted} frame {match} within {timeout} s")
        message = await ws.receive(timeout=left)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise Failed(f"socket closed while waiting for {wanted}: {message.type} {message.data}")
        data = json.loads(message.data)
        if data.get("type") == wanted and all(_get(data, k) == v for k, v in match.items()):
            return data
        if data.get("type") == "error" and wanted == "ack" and data.get("ref") == match.get("client_id"):
            raise Failed(f"send refused: {data}")


def _get(data: dict, dotted: str):
    for part in dotted.split("__"):
        data = data.get(part) if isinstance(data, dict) else None
    return data


async def connect(http, base: str, token: str):
    ws = await http.ws_connect(base.replace("http", "ws", 1) + "/api/v1/ws",
                               headers={"Authorization": f"Bearer {token}"}, heartbeat=20)
    gateway = ws._response.headers.get("X-Parley-Gateway", "?")
    await frame(ws, "ready")
    return ws, gateway


async def connect_on_each_gateway(http, base: str, token: str, gateways: int = 2) -> list[str]:
    """WebSockets with `token` until `gateways` different gateways accepted it (leastconn
    spreads new sockets); returns their names."""
    seen: dict[str, object] = {}
    for _ in range(12 * gateways):
        ws, gateway = await connect(http, base, token)
        if gateway in seen:
            await ws.close()
            continue
        seen[gateway] = ws
        if len(seen) == gateways:
            break
    for ws in seen.values():
        await ws.close()
    if len(seen) < gateways:
        raise Failed(f"the token reached only gateways {sorted(seen)}, not {gateways}")
    return sorted(seen)


async def smoke(base: str, kill_command: str | None, stream: int, expect_reconnect: bool = False) -> None:
    suffix = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await wait_ready(http, base, 240)
        step("GET /readyz: 200 (broker, cache, auth and rooms answer)")
        async with http.get(f"{base}/metrics") as response:
            if response.status != 404:
                raise Failed(f"/metrics is exposed through the load balancer ({response.status})")
        step("GET /metrics through the load balancer: 404 (not exposed)")
        token_a, alice = await new_user(http, base, f"alice_{suffix}")
        token_b, bob = await new_user(http, base, f"bob_{suffix}")
        step(f"registered and logged in alice_{suffix} and bob_{suffix}")
        room = (await call(http, "POST", f"{base}/api/v1/rooms", token_a,
                           {"name": f"deploy {suffix}", "kind": "public"}, expect=201))["room"]
        await call(http, "POST", f"{base}/api/v1/rooms/{room['id']}/join", token_b, expect=200)
        step(f"alice created room {room['id']}, bob joined")

        ws_a, gateway_a = await connect(http, base, token_a)
        for _ in range(12):  # leastconn sends the second socket elsewhere; retry a busy pick
            ws_b, gateway_b = await connect(http, base, token_b)
            if gateway_b != gateway_a:
                break
            await ws_b.close()
        else:
            raise Failed(f"both WebSockets landed on {gateway_a}: is only one gateway up?")
        step(f"alice's socket is on {gateway_a}, bob's on {gateway_b}")
        for ws in (ws_a, ws_b):
            await ws.send_json({"type": "subscribe", "room_id": room["id"]})
            await frame(ws, "subscribed", room_id=room["id"])

        texts = []
        for sender, receiver, who in ((ws_a, ws_b, "alice"), (ws_b, ws_a, "bob")) * 2:
            client_id = uuid.uuid4().hex
            text = f"hello from {who} {client_id[:6]}"
            await sender.send_json({"type": "send", "room_id": room["id"], "text": text, "client_id": client_id, "ref": client_id})
            await frame(sender, "ack", client_id=client_id)
            await frame(receiver, "message", message__client_id=client_id)
            texts.append(text)
        step(f"{len(texts)} messages sent and received across the two gateways")

        history = await call(http, "GET", f"{base}/api/v1/rooms/{room['id']}/messages?limit=100", token_b)
        got = [m["text"] for m in history["messages"]]
        if got[-len(texts):] != texts:
            raise Failed(f"history {got} does not end with {texts}")
        step("history holds them, in order")

        if kill_command:
            await stream_through_kill(http, base, room, (ws_a, token_a), (ws_b, token_b),
                                      kill_command, stream, expect_reconnect)
        for ws in (ws_a, ws_b):
            await ws.close()


async def stream_through_kill(http, base, room, a, b, kill_command: str, count: int,
                              expect_reconnect: bool = False) -> None:
    """Send `count` messages (alternating users, paced under the per-user rate limit); start
    kill_command halfway and go on sending while it runs. A send without an ack in time is
    resent with its client_id; a socket the server closed is reconnected and resubscribed."""
    sockets = {0: a, 1: b}
    reconnected = {0: 0, 1: 0}
    acked: dict[str, int] = {}
    resent = 0
    command = None
    index = -1
    # Go on past `count` while the command still runs (an upgrade takes a while), within the
    # one page of history (100 messages) the check below reads.
    while index + 1 < count or (command is not None and command.returncode is None
                                and index + 1 < MAX_STREAM):
        index += 1
        if index == count // 2:
            command = await asyncio.create_subprocess_shell(
                kill_command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            step(f"mid-stream ({index} acknowledged), started: {kill_command}")
        client_id = uuid.uuid4().hex
        text = f"stream {index} {client_id[:6]}"
        user = index % 2
        for attempt in range(20):
            ws, token = sockets[user]
            try:
                await ws.send_json({"type": "send", "room_id": room["id"], "text": text, "client_id": client_id, "ref": client_id})
                ack = await frame(ws, "ack", timeout=8, client_id=client_id)
                acked[client_id] = ack["message"]["seq"]
                break
            except (Failed, asyncio.TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                resent += 1
                step(f"message {index}: no ack ({str(exc)[:120]}); resending the same client_id")
                await asyncio.sleep(2)
                # A write that failed: the server closed it, aiohttp may not have read the
                # close frame yet (ws.closed is still False).
                if not ws.closed and isinstance(exc, (aiohttp.ClientError, ConnectionError)):
                    try:
                        await asyncio.wait_for(ws.close(), 3)
                    except (asyncio.TimeoutError, aiohttp.ClientError, ConnectionError):
                        pass
                if ws.closed:
                    try:
                        new_ws, gateway = await connect(http, base, token)
                        await new_ws.send_json({"type": "subscribe", "room_id": room["id"]})
                        await frame(new_ws, "subscribed", room_id=room["id"])
                    except (Failed, asyncio.TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                        step(f"reconnect failed ({str(exc)[:120]}); trying again")
                        continue
                    sockets[user] = (new_ws, token)
                    reconnected[user] += 1
                    step(f"user {user}: socket closed by the server, reconnected to {gateway}")
        else:
            raise Failed(f"message {index} never acknowledged")
        await asyncio.sleep(0.4)
    if command is not None:
        output, _ = await command.communicate()
        if command.returncode:
            raise Failed(f"{kill_command!r} failed ({command.returncode}): {output.decode()[-600:]}")
        step("the mid-stream command finished")
    history = await call(http, "GET", f"{base}/api/v1/rooms/{room['id']}/messages?limit=100",
                         a[1])
    by_client: dict[str, list[int]] = {}
    for message in history["messages"]:
        by_client.setdefault(message["client_id"], []).append(message["seq"])
    lost = [c for c in acked if c not in by_client]
    doubled = [c for c in acked if len(by_client.get(c, [])) > 1]
    moved = [c for c in acked if c in by_client and by_client[c] != [acked[c]]]
    if lost or doubled or moved:
        raise Failed(f"after the kill: lost {lost}, duplicated {doubled}, seq changed {moved}")
    step(f"{len(acked)} acknowledged messages through the command ({resent} resends, "
         f"{sum(reconnected.values())} reconnects): all in the history, each once, with its "
         "acknowledged seq")
    if expect_reconnect and not all(reconnected.values()):
        raise Failed(f"expected both clients to be moved off a replaced gateway: reconnects {reconnected}")
    for ws, _ in sockets.values():
        await ws.close()


def kid_of(token: str) -> str:
    header = token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


async def run(command: str) -> None:
    process = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    if process.returncode:
        raise Failed(f"{command!r} failed ({process.returncode}): {output.decode()[-600:]}")
    step(f"ran: {command}")


async def send_on(ws, room_id: str, text: str) -> int:
    client_id = uuid.uuid4().hex
    await ws.send_json({"type": "send", "room_id": room_id, "text": text, "client_id": client_id, "ref": client_id})
    return (await frame(ws, "ack", client_id=client_id))["message"]["seq"]


async def rotate_key(base: str, rotate_command: str, retire_command: str) -> None:
    """JWT signing key rotation as deploy/README.md describes it, checked from outside."""
    name, password = f"carol_{uuid.uuid4().hex[:8]}", "correct horse " + uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await wait_ready(http, base, 120)
        old_token, _ = await new_user(http, base, name, password)
        old_kid = kid_of(old_token)
        room = (await call(http, "POST", f"{base}/api/v1/rooms", old_token,
                           {"name": f"rotation {name}", "kind": "public"}, expect=201))["room"]
        live, gateway = await connect(http, base, old_token)
        await live.send_json({"type": "subscribe", "room_id": room["id"]})
        await frame(live, "subscribed", room_id=room["id"])
        await send_on(live, room["id"], "before the rotation")
        step(f"{name}: token with kid {old_kid}, a live WebSocket on {gateway}")

        await run(rotate_command)
        await wait_ready(http, base, 120)
        new_token, _ = await login(http, base, name, password)
        new_kid = kid_of(new_token)
        if new_kid == old_kid:
            raise Failed(f"a login after the rotation still signs with kid {old_kid}")
        step(f"a login after the rotation: kid {new_kid}")
        # An unknown kid makes a gateway fetch auth's keys again (at most every few seconds);
        # each gateway must accept the new token and still the old one.
        for token, which in ((new_token, "new"), (old_token, "old")):
            gateways = await connect_on_each_gateway(http, base, token)
            await call(http, "GET", f"{base}/api/v1/rooms/{room['id']}/messages?limit=1", token)
            step(f"the {which} token opens WebSockets on {', '.join(gateways)} and reads the API")
        if live.closed:
            raise Failed("the WebSocket opened before the rotation was closed")
        await send_on(live, room["id"], "after the rotation")
        step("the WebSocket opened before the rotation is still up and sends")
        await live.close()

        await run(retire_command)
        await wait_ready(http, base, 120)
        newest, _ = await login(http, base, name, password)
        if kid_of(newest) != new_kid:
            raise Failed(f"after retiring {old_kid}, logins sign with {kid_of(newest)}, not {new_kid}")
        gateways = await connect_on_each_gateway(http, base, newest)
        step(f"old key retired: logins still sign with {new_kid}, accepted on {', '.join(gateways)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--kill-during-stream", metavar="CMD")
    parser.add_argument("--stream", type=int, default=40)
    parser.add_argument("--expect-reconnect", action="store_true")
    parser.add_argument("--rotate-key", metavar="CMD")
    parser.add_argument("--retire-key", metavar="CMD")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    try:
        if args.rotate_key:
            asyncio.run(rotate_key(base, args.rotate_key, args.retire_key or "true"))
        else:
            asyncio.run(smoke(base, args.kill_during_stream, args.stream, args.expect_reconnect))
    except Failed as exc:
        print(f"[smoke] FAILED: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

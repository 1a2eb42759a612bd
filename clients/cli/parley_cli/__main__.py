"""parley-cli — the terminal client.

    parley-cli [--url http://localhost:8080] register NAME EMAIL
    parley-cli login NAME            (tokens are kept in ~/.config/parley/token, mode 0600)
    parley-cli rooms [--public] | create NAME [--private] | join ROOM_ID
    parley-cli chat ROOM_ID          (interactive; /quit leaves)
    parley-cli password              (change it; your other sessions end)
    parley-cli sessions | revoke SESSION_ID | revoke --others
    parley-cli delete-account        (asks for the password)
    parley-cli logout

The token file holds the access token and the refresh credential (JSON). An expired access
token is renewed with the refresh credential, which is rotated on every use and saved again.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import json
import os
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ACK_WAIT_SECONDS = 5
TOKEN_FILE = Path(os.environ.get("PARLEY_TOKEN_FILE", Path.home() / ".config" / "parley" / "token"))


class CliError(Exception):
    pass


def save_tokens(body: dict) -> None:
    """Keep a login/refresh answer's access token and refresh credential."""
    TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start so the tokens are never readable by others.
    fd = os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"access_token": body["access_token"],
                   "refresh_token": body["refresh_token"]}, handle)
    os.chmod(TOKEN_FILE, 0o600)


def load_tokens() -> dict:
    try:
        tokens = json.loads(TOKEN_FILE.read_text())
    except FileNotFoundError:
        raise CliError("not logged in: run `parley-cli login NAME` first") from None
    except ValueError:
        raise CliError("the token file is unreadable: run `parley-cli login NAME` again") from None
    return tokens


async def refreshed(http: aiohttp.ClientSession, base: str) -> str:
    """Rotate the refresh credential: a new access token (saved with the new credential)."""
    body = await api(http, "POST", f"{base}/api/v1/auth/refresh",
                     json={"refresh_token": load_tokens()["refresh_token"]})
    save_tokens(body)
    return body["access_token"]


async def access_token(http: aiohttp.ClientSession, base: str) -> str:
    """The saved access token, renewed first when it has (nearly) expired."""
    token = load_tokens()["access_token"]
    expiry = token_expiry(token)
    if expiry is not None and expiry - time.time() < 10:
        token = await refreshed(http, base)
    return token


async def api(http: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, headers=headers, **kwargs) as response:
        body = await response.json() if response.content_type == "application/json" else None
        if response.status >= 400:
            error = (body or {}).get("error", {})
            details = "; ".join(f"{k}: {v}" for k, v in (error.get("details") or {}).items())
            raise CliError(f"{error.get('message', response.reason)}" + (f" ({details})" if details else ""))
        return body


def token_expiry(token: str) -> float | None:
    """The token's `exp` (seconds since the epoch). Unverified: only the server judges it."""
    try:
        payload = token.split(".")[1]
        return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


async def keep_session(http: aiohttp.ClientSession, base: str, token: str, ws) -> None:
    """While chatting: refresh the token halfway through its life (rotating the refresh
    credential, both saved), and hand it to the socket (which would otherwise close when the
    first token expires)."""
    while (expiry := token_expiry(token)) is not None:
        await asyncio.sleep(max(1.0, (expiry - time.time()) / 2))
        try:
            token = await refreshed(http, base)
        except CliError:
            return  # the session ended: the socket closes with 4401 and says so
        except aiohttp.ClientError:
            continue  # the server is away for now: try again, sooner, while the token lives
        await ws.send_json({"type": "auth", "token": token})


async def chat(http: aiohttp.ClientSession, base: str, token: str, room_id: str) -> None:
    ws_url = base.replace("http", "ws", 1) + "/api/v1/ws"
    async with http.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}) as ws:
        history = await api(http, "GET", f"{base}/api/v1/rooms/{room_id}/messages?limit=20", token)
        for message in history["messages"]:
            show(message)
        last_seq = history["messages"][-1]["seq"] if history["messages"] else 0
        await ws.send_json({"type": "subscribe", "room_id": room_id, "after_seq": last_seq})
        print("-- connected; type a message and Enter, /quit to leave --")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        unacked: set[str] = set()
        all_acked = asyncio.Event()
        all_acked.set()

        async def typed() -> None:
            while line := (await reader.readline()).decode():
                text = line.strip()
                if text == "/quit":
                    break
                if text:
                    client_id = uuid.uuid4().hex
                    unacked.add(client_id)
                    all_acked.clear()
                    await ws.send_json({"type": "send", "room_id": room_id, "text": text,
                                        "client_id": client_id})
            try:  # leave only once what was typed is stored (bounded: the server may be gone)
                await asyncio.wait_for(all_acked.wait(), ACK_WAIT_SECONDS)
            except asyncio.TimeoutError:
                print(f"!! {len(unacked)} message(s) not confirmed by the server")
            await ws.close()

        sender = asyncio.create_task(typed())
        renewer = asyncio.create_task(keep_session(http, base, token, ws))
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(frame.data)
            if event["type"] == "ack":
                unacked.discard(event["client_id"])
                if not unacked:
                    all_acked.set()
            elif event["type"] == "message":
                show(event["message"])
            elif event["type"] == "typing":
                print(f"   {event['user']['display_name']} is typing…")
            elif event["type"] == "presence":
                print(f"   user {event['user_id']} is {event['status']}")
            elif event["type"] == "error":
                print(f"!! {event['message']}")
        sender.cancel()
        renewer.cancel()
        if ws.close_code in (4401, 4001):
            raise CliError("session ended: log in again")


def show(message: dict) -> None:
    when = message["created_at"][11:16]
    text = "(deleted)" if message["deleted"] else message["text"]
    print(f"[{when}] {message['author']['display_name']}: {text}")


async def run(args: argparse.Namespace) -> None:
    base = args.url.rstrip("/")
    async with aiohttp.ClientSession() as http:
        async def load_token() -> str:
            return await access_token(http, base)

        if args.command == "register":
            password = getpass.getpass("password: ")
            body = await api(http, "POST", f"{base}/api/v1/auth/register",
                             json={"username": args.name, "email": args.email, "password": password})
            print(f"registered {body['user']['username']}; now `parley-cli login {args.name}`")
        elif args.command == "login":
            password = getpass.getpass("password: ")
            body = await api(http, "POST", f"{base}/api/v1/auth/login",
                             json={"username": args.name, "password": password,
                                   "refresh_delivery": "body"})
            save_tokens(body)
            print(f"logged in as {body['user']['username']}")
        elif args.command == "logout":
            await api(http, "POST", f"{base}/api/v1/auth/logout", await load_token())
            TOKEN_FILE.unlink(missing_ok=True)
            print("logged out")
        elif args.command == "password":
            old = getpass.getpass("current password: ")
            new = getpass.getpass("new password: ")
            await api(http, "POST", f"{base}/api/v1/auth/password", await load_token(),
                      json={"old_password": old, "new_password": new})
            print("password changed; your other sessions have ended")
        elif args.command == "sessions":
            body = await api(http, "GET", f"{base}/api/v1/auth/sessions", await load_token())
            for item in body["sessions"]:
                mark = "*" if item["current"] else " "
                print(f"{mark} {item['id']}  created {item['created_at'][:16]}  last used "
                      f"{item['last_used_at'][:16]}  {item['user_agent'] or '(unknown device)'}")
        elif args.command == "revoke":
            if args.others:
                body = await api(http, "DELETE", f"{base}/api/v1/auth/sessions", await load_token())
                print(f"ended {body['revoked']} other session(s)")
            elif args.session_id:
                await api(http, "DELETE", f"{base}/api/v1/auth/sessions/{args.session_id}",
                          await load_token())
                print("session ended")
            else:
                raise CliError("name a SESSION_ID (see `parley-cli sessions`) or --others")
        elif args.command == "delete-account":
            password = getpass.getpass("password (to confirm deleting your account): ")
            await api(http, "DELETE", f"{base}/api/v1/users/me", await load_token(),
                      json={"password": password})
            TOKEN_FILE.unlink(missing_ok=True)
            print("account deleted")
        elif args.command == "rooms":
            scope = "public" if args.public else "joined"
            body = await api(http, "GET", f"{base}/api/v1/rooms?scope={scope}&limit=100", await load_token())
            for room in body["rooms"]:
                print(f"{room['id']}  {room['kind']:<8} {room['name'] or '(direct)'}  "
                      f"({room['member_count']} members)")
        elif args.command == "create":
            body = await api(http, "POST", f"{base}/api/v1/rooms", await load_token(),
                             json={"name": args.name, "kind": "private" if args.private else "public"})
            print(f"created {body['room']['id']}")
        elif args.command == "join":
            body = await api(http, "POST", f"{base}/api/v1/rooms/{args.room_id}/join", await load_token())
            print(f"joined {body['room']['name']}")
        elif args.command == "chat":
            await chat(http, base, await load_token(), args.room_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley-cli", description="Parley in a terminal")
    parser.add_argument("--url", default=os.environ.get("PARLEY_URL", "http://localhost:8080"))
    sub = parser.add_subparsers(dest="command", required=True)
    register = sub.add_parser("register")
    register.add_argument("name")
    register.add_argument("email")
    sub.add_parser("login").add_argument("name")
    sub.add_parser("logout")
    sub.add_parser("rooms").add_argument("--public", action="store_true")
    create = sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--private", action="store_true")
    sub.add_parser("join").add_argument("room_id")
    sub.add_parser("chat").add_argument("room_id")
    sub.add_parser("password")
    sub.add_parser("sessions")
    revoke = sub.add_parser("revoke")
    revoke.add_argument("session_id", nargs="?")
    revoke.add_argument("--others", action="store_true")
    sub.add_parser("delete-account")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args))
    except CliError as exc:
        print(f"parley-cli: {exc}", file=sys.stderr)
        return 1
    except aiohttp.ClientError as exc:
        print(f"parley-cli: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

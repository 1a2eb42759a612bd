"""parley-cli — the terminal client.

    parley-cli [--url http://localhost:8080]      full-screen client (same as `parley-cli tui`)
    parley-cli register NAME EMAIL
    parley-cli login NAME            (tokens are kept in ~/.config/parley/token, mode 0600)
    parley-cli rooms [--public] | create NAME [--private] | join ROOM | leave ROOM
    parley-cli chat ROOM             (line-by-line chat; /quit leaves)
    parley-cli dm PERSON             (line-by-line chat with one person)
    parley-cli send ROOM TEXT [--reply-to MESSAGE]   (for scripts)
    parley-cli history ROOM [--limit N] [--json]
    parley-cli search WORDS [--room ROOM] [--limit N] [--json]
    parley-cli mentions [--limit N] [--json]   (messages that mention you, newest first)
    parley-cli react ROOM MESSAGE EMOJI | unreact ROOM MESSAGE EMOJI
    parley-cli password              (change it; your other sessions end)
    parley-cli sessions | revoke SESSION_ID | revoke --others
    parley-cli delete-account        (asks for the password)
    parley-cli logout

ROOM is a room's name (`lounge`, `#lounge`), `@person` for a direct room, or its id. PERSON is
a username, display name or id. A name that fits several is an error listing them. MESSAGE is
a message's number in its room (`12` or `#12`, as history and chat show it) or its id.
In chat, `/reply N TEXT` answers message N and `/react N EMOJI` reacts to it.

The token file holds the access token and the refresh credential (JSON). An expired access
token is renewed with the refresh credential, which is rotated on every use and saved again.

Exit codes: 0 ok, 1 refused by the server (forbidden, invalid, conflict, rate limited),
2 usage (bad arguments, or an ambiguous name), 3 not logged in or the session has ended,
4 not found, 5 the server is unreachable or unavailable.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import uuid

import aiohttp

from .client import (DEFAULT_TOKEN_FILE, EXIT_NOT_LOGGED_IN, EXIT_OK, EXIT_UNAVAILABLE,
                     EXIT_USAGE, CliError, Parley, room_label, token_claims)
from .messages import author_name, find_message, quote_text, react, reactions_text

ACK_WAIT_SECONDS = 5


async def chat(parley: Parley, room: dict) -> None:
    room_id = room["id"]
    token = await parley.token()
    members = (await parley.call("GET", f"/api/v1/rooms/{room_id}/members"))["members"]
    names = {m["user"]["id"]: m["user"]["display_name"] or m["user"]["username"] for m in members}

    async def name_of(user_id: str) -> str:
        if user_id not in names:
            try:
                user = (await parley.call("GET", f"/api/v1/users/{user_id}"))["user"]
                names[user_id] = user["display_name"] or user["username"]
            except CliError:
                return user_id
        return names[user_id]

    async with parley.http.ws_connect(parley.ws_url(), headers={"Authorization": f"Bearer {token}"}) as ws:
        history = await parley.call("GET", f"/api/v1/rooms/{room_id}/messages?limit=20")
        me_id = token_claims(token).get("sub")
        for message in history["messages"]:
            show(message, me_id)
        last_seq = history["messages"][-1]["seq"] if history["messages"] else 0
        await ws.send_json({"type": "subscribe", "room_id": room_id, "after_seq": last_seq})
        peer = next((m["user"] for m in members if m["user"]["id"] != token_claims(token).get("sub")), None)
        print(f"-- connected to {room_label(room, peer=peer)}; type a message and Enter, /quit to leave --")
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
                command = chat_command(text)
                if command is not None:
                    await run_chat_command(parley, ws, room_id, command, unacked, all_acked)
                elif text:
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
        renewer = asyncio.create_task(parley.keep_socket_alive(ws, token))
        shown: set[int] = set()  # the sender may get its message twice (ack and message)
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(frame.data)
            if event["type"] == "ack":
                unacked.discard(event["client_id"])
                if not unacked:
                    all_acked.set()
            elif event["type"] == "message" and event["message"]["seq"] not in shown:
                shown.add(event["message"]["seq"])
                show(event["message"], me_id)
            elif event["type"] == "mention" and event["message"]["room_id"] != room_id:
                author = event["message"]["author"]
                print(f"@@ {author['display_name'] or author['username']} mentioned you "
                      f"elsewhere: {event['message']['text'][:200]}")
            elif event["type"] == "typing":
                print(f"   {event['user']['display_name'] or event['user']['username']} is typing…")
            elif event["type"] == "presence":
                print(f"   {await name_of(event['user_id'])} is {event['status']}")
            elif event["type"] == "member_joined":
                names[event["user"]["id"]] = event["user"]["display_name"] or event["user"]["username"]
                print(f"   {names[event['user']['id']]} joined")
            elif event["type"] == "member_left":
                print(f"   {await name_of(event['user_id'])} left")
            elif event["type"] in ("reaction_added", "reaction_removed"):
                verb = "reacted" if event["type"] == "reaction_added" else "took back"
                print(f"   {await name_of(event['user_id'])} {verb} {event['emoji']} on "
                      f"#{event['seq']}  ({reactions_text(event['reactions']) or 'no reactions'})")
            elif event["type"] == "error":
                print(f"!! {event['message']}")
        sender.cancel()
        renewer.cancel()
        if ws.close_code in (4401, 4001):
            raise CliError("session ended: log in again", EXIT_NOT_LOGGED_IN)


def show(message: dict, me_id: str | None = None, where: str = "") -> None:
    """One message: a quote line first if it replies, then `[hh:mm] #seq Name: text` ("@ " in
    front when it mentions you; Markdown shown as typed), then its reactions (`👍 3*`: the
    star is yours) if it has any."""
    when = message["created_at"][11:16]
    text = "(deleted)" if message["deleted"] else message["text"]
    quoted = message.get("reply_to")
    if quoted and not message["deleted"]:
        print(f"  ┌ {quote_text(quoted)}")
    mark = "@ " if me_id and me_id in (message.get("mentions") or ()) else ""
    print(f"{mark}[{when}] {where}#{message['seq']} {author_name(message['author'])}: {text}")
    if message.get("reactions") and not message["deleted"]:
        print(f"    {reactions_text(message['reactions'])}")


def chat_command(line: str) -> tuple[str, str, str] | None:
    """`/reply N TEXT` or `/react N EMOJI` typed in chat: (command, message, rest)."""
    parts = line.split(None, 2)
    if len(parts) == 3 and parts[0] in ("/reply", "/react"):
        return parts[0][1:], parts[1], parts[2]
    return None


async def run_chat_command(parley: Parley, ws, room_id: str, command: tuple[str, str, str],
                           unacked: set, all_acked: asyncio.Event) -> None:
    kind, which, rest = command
    try:
        message = await find_message(parley, room_id, which)
        if kind == "react":
            await react(parley, room_id, message, rest.strip(), add=True)
            return
    except CliError as exc:
        print(f"!! {exc}")
        return
    client_id = uuid.uuid4().hex
    unacked.add(client_id)
    all_acked.clear()
    await ws.send_json({"type": "send", "room_id": room_id, "text": rest,
                        "client_id": client_id, "reply_to": message["id"]})


async def history(parley: Parley, room_id: str, limit: int) -> list[dict]:
    """The newest `limit` messages, oldest first (paged back with before_seq past 100)."""
    messages: list[dict] = []
    before = None
    while len(messages) < limit:
        params = {"limit": min(100, limit - len(messages))}
        if before is not None:
            params["before_seq"] = before
        page = await parley.call("GET", f"/api/v1/rooms/{room_id}/messages", params=params)
        messages = page["messages"] + messages
        if not page["has_more"] or not page["messages"]:
            break
        before = page["messages"][0]["seq"]
    return messages


async def search(parley: Parley, query: str, room_id: str | None, limit: int) -> list[dict]:
    """The best `limit` results of a message search, best first (paged with `before`)."""
    results: list[dict] = []
    before = None
    while len(results) < limit:
        params = {"q": query, "limit": min(100, limit - len(results))}
        if room_id is not None:
            params["room_id"] = room_id
        if before is not None:
            params["before"] = before
        page = await parley.call("GET", "/api/v1/search", params=params)
        results += page["results"]
        before = page["next_cursor"]
        if before is None:
            break
    return results


def show_result(result: dict, marked: bool) -> None:
    """One result: when, where (with the message's seq), who, and the snippet with its matching
    words in bold on a terminal, between * otherwise."""
    message = result["message"]
    author = message["author"]["display_name"] or message["author"]["username"]
    start, stop = ("\033[1m", "\033[0m") if marked else ("*", "*")
    snippet = "".join(f"{start}{part['text']}{stop}" if part["match"] else part["text"]
                      for part in result["snippet"])
    print(f"[{message['created_at'][:16].replace('T', ' ')}] {room_label(result['room'])} "
          f"#{message['seq']} {author}: {snippet}")


async def run(args: argparse.Namespace) -> None:
    async with aiohttp.ClientSession() as http:
        parley = Parley(http, args.url, DEFAULT_TOKEN_FILE)
        command = args.command or "tui"
        if command == "tui":
            if not sys.stdout.isatty():
                raise CliError("the full-screen client needs a terminal; see `parley-cli --help` "
                               "for the line mode", EXIT_USAGE)
            from .tui import run_tui
            await run_tui(parley)
        elif command == "register":
            password = getpass.getpass("password: ")
            body = await parley.call("POST", "/api/v1/auth/register", authorized=False,
                                     json={"username": args.name, "email": args.email, "password": password})
            print(f"registered {body['user']['username']}; now `parley-cli login {args.name}`")
        elif command == "login":
            password = getpass.getpass("password: ")
            body = await parley.call("POST", "/api/v1/auth/login", authorized=False,
                                     json={"username": args.name, "password": password,
                                           "refresh_delivery": "body"})
            parley.save_tokens(body)
            print(f"logged in as {body['user']['username']}")
        elif command == "logout":
            await parley.call("POST", "/api/v1/auth/logout")
            parley.token_file.unlink(missing_ok=True)
            print("logged out")
        elif command == "password":
            old = getpass.getpass("current password: ")
            new = getpass.getpass("new password: ")
            await parley.call("POST", "/api/v1/auth/password",
                              json={"old_password": old, "new_password": new})
            print("password changed; your other sessions have ended")
        elif command == "sessions":
            body = await parley.call("GET", "/api/v1/auth/sessions")
            for item in body["sessions"]:
                mark = "*" if item["current"] else " "
                print(f"{mark} {item['id']}  created {item['created_at'][:16]}  last used "
                      f"{item['last_used_at'][:16]}  {item['user_agent'] or '(unknown device)'}")
        elif command == "revoke":
            if args.others:
                body = await parley.call("DELETE", "/api/v1/auth/sessions")
                print(f"ended {body['revoked']} other session(s)")
            elif args.session_id:
                await parley.call("DELETE", f"/api/v1/auth/sessions/{args.session_id}")
                print("session ended")
            else:
                raise CliError("name a SESSION_ID (see `parley-cli sessions`) or --others", EXIT_USAGE)
        elif command == "delete-account":
            password = getpass.getpass("password (to confirm deleting your account): ")
            await parley.call("DELETE", "/api/v1/users/me", json={"password": password})
            parley.token_file.unlink(missing_ok=True)
            print("account deleted")
        elif command == "rooms":
            scope = "public" if args.public else "joined"
            for room in await parley.all_pages(f"/api/v1/rooms?scope={scope}&limit=100", "rooms"):
                print(f"{room['id']}  {room['kind']:<8} {room['name'] or '(direct)'}  "
                      f"({room['member_count']} members)")
        elif command == "create":
            body = await parley.call("POST", "/api/v1/rooms",
                                     json={"name": args.name, "kind": "private" if args.private else "public"})
            print(f"created {body['room']['name']} ({body['room']['id']})")
        elif command == "join":
            room = await parley.find_room(args.room, joined_only=False)
            body = await parley.call("POST", f"/api/v1/rooms/{room['id']}/join")
            print(f"joined {body['room']['name']}")
        elif command == "leave":
            room = await parley.find_room(args.room)
            await parley.call("POST", f"/api/v1/rooms/{room['id']}/leave")
            print(f"left {room['name'] or 'the direct room'}")
        elif command == "chat":
            await chat(parley, await parley.find_room(args.room))
        elif command == "dm":
            await chat(parley, await parley.direct_room(args.person))
        elif command == "send":
            room = await parley.find_room(args.room)
            post = {"text": args.text, "client_id": uuid.uuid4().hex}
            if args.reply_to:
                post["reply_to"] = (await find_message(parley, room["id"], args.reply_to))["id"]
            body = await parley.call("POST", f"/api/v1/rooms/{room['id']}/messages", json=post)
            if args.json:
                print(json.dumps(body["message"]))
        elif command == "history":
            room = await parley.find_room(args.room)
            messages = await history(parley, room["id"], args.limit)
            if args.json:
                print(json.dumps(messages, indent=1))
            else:
                me_id = token_claims(await parley.token()).get("sub")
                for message in messages:
                    show(message, me_id)
        elif command == "search":
            room_id = (await parley.find_room(args.room))["id"] if args.room else None
            results = await search(parley, args.query, room_id, args.limit)
            if args.json:
                print(json.dumps(results, indent=1))
            elif not results:
                print("no messages found", file=sys.stderr)
            else:
                for result in results:
                    show_result(result, sys.stdout.isatty())
        elif command == "mentions":
            items = (await parley.call("GET", "/api/v1/mentions",
                                       params={"limit": min(args.limit, 100)}))["mentions"]
            if args.json:
                print(json.dumps(items, indent=1))
            for item in [] if args.json else items:
                where = f"#{item['room']['name']} " if item["room"]["name"] else "(direct) "
                print(("* " if item["unread"] else "  ") + item["message"]["created_at"][:10], end=" ")
                show(item["message"], None, where)
        elif command in ("react", "unreact"):
            room = await parley.find_room(args.room)
            message = await find_message(parley, room["id"], args.message)
            reactions = await react(parley, room["id"], message, args.emoji,
                                    add=command == "react")
            print(reactions_text(reactions) or "no reactions")


def page_size(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley-cli", description="Parley in a terminal",
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("PARLEY_URL", "http://localhost:8080"))
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("tui", help="the full-screen client (the default)")
    register = sub.add_parser("register")
    register.add_argument("name")
    register.add_argument("email")
    sub.add_parser("login").add_argument("name")
    sub.add_parser("logout")
    sub.add_parser("rooms").add_argument("--public", action="store_true")
    create = sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--private", action="store_true")
    sub.add_parser("join").add_argument("room")
    sub.add_parser("leave").add_argument("room")
    sub.add_parser("chat").add_argument("room")
    sub.add_parser("dm").add_argument("person")
    send = sub.add_parser("send")
    send.add_argument("room")
    send.add_argument("text")
    send.add_argument("--json", action="store_true", help="print the stored message as JSON")
    send.add_argument("--reply-to", metavar="MESSAGE",
                      help="reply to this message (its number in the room, or its id)")
    hist = sub.add_parser("history")
    hist.add_argument("room")
    hist.add_argument("--limit", type=page_size, default=20)
    hist.add_argument("--json", action="store_true", help="a JSON array of messages, oldest first")
    find = sub.add_parser("search", help="search the messages of your rooms")
    find.add_argument("query", help="words that must all occur (each as a word start)")
    find.add_argument("--room", help="only this room (name, @person or id)")
    find.add_argument("--limit", type=page_size, default=20)
    find.add_argument("--json", action="store_true",
                      help="a JSON array of results ({message, room, snippet}), best first")
    mentions = sub.add_parser("mentions", help="messages that mention you, newest first")
    mentions.add_argument("--limit", type=page_size, default=20)
    mentions.add_argument("--json", action="store_true", help="the API's mention items as JSON")
    for name, does in (("react", "react to a message with an emoji"),
                       ("unreact", "take your reaction back")):
        reacting = sub.add_parser(name, help=does)
        reacting.add_argument("room")
        reacting.add_argument("message", help="its number in the room (12 or #12) or its id")
        reacting.add_argument("emoji")
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
        return exc.exit_code
    except aiohttp.ClientError as exc:
        print(f"parley-cli: cannot reach {args.url}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

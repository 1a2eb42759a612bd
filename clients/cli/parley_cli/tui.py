"""The full-screen client (`parley-cli` or `parley-cli tui`), built on Textual.

One WebSocket carries every room you belong to; each room keeps its messages keyed by `seq`
and the highest seq seen, so a reconnect subscribes with `after_seq` and the replay fills the
gap without duplicates. Everything else goes over the public HTTP API (see client.py)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
from rich.markup import escape
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Static

from .client import EXIT_NOT_LOGGED_IN, MENTION, CliError, Parley, room_label
from .messages import find_message, quote_text, react, reactions_text

HISTORY_PAGE = 50
TYPING_SECONDS = 5
TYPING_SEND_EVERY = 3

HELP = """\
[b]Parley — keys[/b]

  F1          this help (Esc closes it)
  Ctrl+N / Ctrl+P   next / previous conversation
  F2          direct message: type a person's name after /dm
  F3          open or join a room: type its name after /join
  F4          create a room: /create NAME  (or /create NAME --private)
  F5          leave the open room (Enter confirms /leave)
  F6          mute / unmute the open room
  F7          edit your last message (/edit NEW TEXT)
  F8          delete your last message (Enter confirms /delete)
  F9          search the messages of your rooms: /search WORDS (Esc closes the results)
  PageUp      scroll back; at the top it loads older messages
  PageDown    scroll forward
  Esc         clear the composer
  Ctrl+Q      quit

[b]Commands in the composer[/b]
  /join NAME  /dm NAME  /create NAME [--private]  /leave  /mute
  /edit TEXT  /delete  /older  /search WORDS  /help  /quit
  /reply N TEXT  /react N EMOJI  /unreact N EMOJI   (N: the message's #number)
  //text sends a line that starts with "/"
"""



def append_mentions(text: Text, body: str, username: str | None, mentions_me: bool) -> None:
    """``body`` (Markdown shown as typed) with @username (yours, when the message mentions
    you) in reverse video and other @names in bold."""
    at = 0
    for match in MENTION.finditer(body):
        text.append(body[at:match.start()])
        name = match.group(1)
        mine = mentions_me and username and name.rstrip(".-").lower() == username.lower()
        text.append(match.group(0), style="bold reverse" if mine else "bold")
        at = match.end()
    text.append(body[at:])

@dataclass
class RoomState:
    room: dict
    label: str
    unread: int = 0
    muted: bool = False
    mentions: int = 0                     # unread messages that mention you
    last_seq: int = 0                     # the highest seq seen: where a resume starts
    messages: dict = field(default_factory=dict)   # seq -> message (loaded part of history)
    loaded: bool = False
    has_more: bool = False
    online: set = field(default_factory=set)
    typing: dict = field(default_factory=dict)     # user id -> until (monotonic)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,f1,q", "app.pop_screen", "close help")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")


class SearchScreen(ModalScreen):
    """The results of /search: where, when, who, and the snippet with its matches in bold."""
    BINDINGS = [Binding("escape,f9,q", "app.pop_screen", "close results")]

    def __init__(self, query: str, results: list[dict]):
        super().__init__()
        self.query_text = query
        self.results = results

    def text(self) -> Text:
        text = Text()
        text.append(f"Messages matching “{self.query_text}”", style="bold")
        text.append(" (Esc closes)\n\n", style="dim")
        if not self.results:
            text.append("nothing found", style="dim")
        for result in self.results:
            message = result["message"]
            text.append(f"{room_label(result['room'])} ", style="bold")
            text.append(f"{message['created_at'][:16].replace('T', ' ')} ", style="dim")
            author = message["author"]
            text.append(f"{author['display_name'] or author['username']}: ")
            for part in result["snippet"]:
                text.append(part["text"], style="bold reverse" if part["match"] else None)
            text.append("\n")
        return text

    def compose(self) -> ComposeResult:
        yield VerticalScroll(Static(self.text(), id="search-results"), id="search")


class ParleyApp(App):
    TITLE = "Parley"
    ENABLE_COMMAND_PALETTE = False  # its Ctrl+P is "previous room" here; F1 is the help
    CSS = """
    #sidebar { width: 28; height: 100%; border-right: solid $primary; padding: 0 1; }
    #main { width: 1fr; }
    #log { height: 1fr; padding: 0 1; }
    #status { height: 2; color: $text-muted; padding: 0 1; }
    #composer { dock: bottom; }
    HelpScreen { align: center middle; }
    #help { width: 76; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    SearchScreen { align: center middle; }
    #search { width: 90%; height: 80%; border: thick $primary; background: $surface; padding: 1 2; }
    """
    BINDINGS = [
        Binding("f1", "help", "help"),
        Binding("ctrl+n", "next_room", "next room", priority=True),
        Binding("ctrl+p", "previous_room", "prev room", priority=True),
        Binding("f2", "prefill('/dm ')", "DM"),
        Binding("f3", "prefill('/join ')", "join"),
        Binding("f4", "prefill('/create ')", "create"),
        Binding("f5", "prefill('/leave')", "leave"),
        Binding("f6", "toggle_mute", "mute"),
        Binding("f7", "edit_last", "edit"),
        Binding("f8", "prefill('/delete')", "delete"),
        Binding("f9", "prefill('/search ')", "search"),
        Binding("pageup", "older", "older", show=False, priority=True),
        Binding("pagedown", "newer", "newer", show=False, priority=True),
        Binding("escape", "prefill('')", "clear", show=False),
        Binding("ctrl+q", "quit", "quit", priority=True),
    ]

    def __init__(self, parley: Parley, history_page: int = HISTORY_PAGE):
        super().__init__()
        self.parley = parley
        self.history_page = history_page
        self.me: dict = {}
        self.users: dict[str, dict] = {}          # id -> user, for display names
        self.rooms: dict[str, RoomState] = {}
        self.order: list[str] = []                # sidebar order (by last activity)
        self.current: str | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connection = "connecting…"
        self.notice = ""
        self.loaded = asyncio.Event()              # the first conversations list is in
        self.connected = asyncio.Event()           # set while the socket is subscribed
        self.connects = 0                          # sockets opened so far (1 + reconnects)
        self._typing_sent = 0.0
        self._read_due: dict[str, int] = {}

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Horizontal():
            yield Static("", id="sidebar")
            with Vertical(id="main"):
                with VerticalScroll(id="log"):
                    yield Static("", id="transcript")
                yield Static("", id="status")
                yield Input(placeholder="message (F1: help)", id="composer")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#composer", Input).focus()
        self.set_interval(1.0, self.tick)
        self.run_worker(self.start(), exclusive=False)

    async def start(self) -> None:
        try:
            self.me = (await self.parley.call("GET", "/api/v1/users/me"))["user"]
            self.users[self.me["id"]] = self.me
            self.sub_title = self.me["display_name"] or self.me["username"]
            for item in await self.parley.conversations():
                state = await self.add_room(item["room"], item["unread_count"], item["muted"])
                state.mentions = item.get("mention_count") or 0
        except CliError as exc:
            self.notice = str(exc)
            self.refresh_all()
            return
        self.loaded.set()
        if self.order:
            await self.open_room(self.order[0])
        self.refresh_all()
        self.run_worker(self.stay_connected(), exclusive=False)

    async def add_room(self, room: dict, unread: int = 0, muted: bool = False) -> RoomState:
        peer = await self.parley.peer_of(room, self.me["id"]) if room["kind"] == "direct" else None
        if peer:
            self.users[peer["id"]] = peer
        state = self.rooms.get(room["id"])
        if state is None:
            state = self.rooms[room["id"]] = RoomState(room, room_label(room, self.me, peer),
                                                       unread, muted, room.get("last_seq") or 0)
            self.order.append(room["id"])
            if self.ws is not None and not self.ws.closed:
                await self.send_frame({"type": "subscribe", "room_id": room["id"],
                                       "after_seq": state.last_seq})
        return state

    def remove_room(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)
        if room_id in self.order:
            self.order.remove(room_id)
        if self.current == room_id:
            self.current = None
            if self.order:
                self.run_worker(self.open_room(self.order[0]))
        self.refresh_all()

    # --- the socket ---------------------------------------------------------------------
    async def stay_connected(self) -> None:
        """Connect, subscribe every room after its last seen seq, read events; after a drop
        come back with growing pauses (0.5 s up to 10 s)."""
        delay = 0.5
        while True:
            close_code = None
            try:
                token = await self.parley.token()
                async with self.parley.http.ws_connect(self.parley.ws_url(), heartbeat=20,
                                                       headers={"Authorization": f"Bearer {token}"}) as ws:
                    self.ws = ws
                    for room_id, state in list(self.rooms.items()):
                        await ws.send_json({"type": "subscribe", "room_id": room_id,
                                            "after_seq": state.last_seq})
                    self.connection = "connected"
                    self.connects += 1
                    self.connected.set()
                    self.refresh_all()
                    delay = 0.5
                    renewer = asyncio.create_task(self.parley.keep_socket_alive(ws, token))
                    try:
                        async for frame in ws:
                            if frame.type != aiohttp.WSMsgType.TEXT:
                                break
                            try:
                                await self.handle_event(json.loads(frame.data))
                            except CliError as exc:  # a look-up it needed failed: say so, go on
                                self.notice = str(exc)
                    finally:
                        renewer.cancel()
                    close_code = ws.close_code
            except CliError as exc:
                if exc.exit_code == EXIT_NOT_LOGGED_IN:
                    return self.lost(str(exc))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            self.ws = None
            self.connected.clear()
            if close_code == 4001:
                return self.lost("this session was ended (logged out elsewhere or password changed): log in again")
            if close_code == 4401:
                try:
                    await self.parley.refreshed()
                except CliError as exc:
                    if exc.exit_code == EXIT_NOT_LOGGED_IN:
                        return self.lost(str(exc))
            self.connection = f"disconnected: reconnecting in {delay:g} s"
            self.refresh_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    def lost(self, why: str) -> None:
        self.connection = "offline"
        self.notice = why
        self.refresh_all()

    async def send_frame(self, frame: dict) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                await self.ws.send_json(frame)
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                pass  # the reader notices the drop and reconnects

    async def handle_event(self, event: dict) -> None:
        kind = event.get("type")
        state = self.rooms.get(event.get("room_id") or event.get("message", {}).get("room_id") or "")
        if kind in ("message", "message_edited") and state:
            self.take_message(state, event["message"])
        elif kind == "message_deleted" and state:
            message = state.messages.get(event["seq"])
            if message:
                message.update(deleted=True, text="")
            for other in state.messages.values():  # replies quoting it say so now
                if (other.get("reply_to") or {}).get("id") == event.get("message_id"):
                    other["reply_to"] = {**other["reply_to"], "deleted": True, "excerpt": ""}
        elif kind in ("reaction_added", "reaction_removed") and state:
            message = state.messages.get(event["seq"])
            if message:
                message["reactions"] = merged_reactions(message.get("reactions") or [], event,
                                                        self.me.get("id"))
        elif kind == "member_joined":
            user = event["user"]
            self.users[user["id"]] = user
            if user["id"] == self.me.get("id") and not state:
                room = (await self.parley.call("GET", f"/api/v1/rooms/{event['room_id']}"))["room"]
                await self.add_room(room)
        elif kind == "room_created" and event["room"]["id"] not in self.rooms:
            room = event["room"]  # public ones reach everybody: only those you own are yours
            if room["kind"] != "public" or room["owner_id"] == self.me.get("id"):
                await self.add_room(room)
        elif kind == "member_left" and state:
            if event["user_id"] == self.me.get("id"):
                self.remove_room(state.room["id"])
            state.online.discard(event["user_id"])
        elif kind == "presence" and state:
            await self.learn_user(event["user_id"])
            (state.online.add if event["status"] == "online" else state.online.discard)(event["user_id"])
        elif kind == "typing" and state:
            self.users.setdefault(event["user"]["id"], event["user"])
            state.typing[event["user"]["id"]] = time.monotonic() + TYPING_SECONDS
        elif kind == "user_updated":
            self.users[event["user"]["id"]] = event["user"]
        elif kind == "room_updated" and event["room"]["id"] in self.rooms:
            room_state = self.rooms[event["room"]["id"]]
            room_state.room.update(event["room"])
            if room_state.room["kind"] != "direct":
                room_state.label = room_label(room_state.room)
        elif kind == "room_deleted" and state:
            self.remove_room(state.room["id"])
        elif kind == "mention" and state and state.room["id"] != self.current:
            state.mentions += 1  # shown in the sidebar as "@N"
        elif kind == "error":
            self.notice = f"server: {event.get('message')}"
        self.refresh_all()

    def take_message(self, state: RoomState, message: dict) -> None:
        """Keep one copy per seq; new messages from others count as unread unless the room
        is open (then they are marked read)."""
        seq = message["seq"]
        self.users.setdefault(message["author"]["id"], message["author"])
        state.typing.pop(message["author"]["id"], None)
        new = seq > state.last_seq
        state.last_seq = max(state.last_seq, seq)
        if state.loaded or state.room["id"] == self.current:
            state.messages[seq] = message
        if new and message["author"]["id"] != self.me.get("id") and not message["deleted"]:
            if state.room["id"] == self.current:
                self._read_due[state.room["id"]] = state.last_seq
            else:
                state.unread += 1
        if new and state.room["id"] in self.order:  # newest activity first, as the server orders
            self.order.remove(state.room["id"])
            self.order.insert(0, state.room["id"])

    async def learn_user(self, user_id: str) -> None:
        if user_id not in self.users:
            try:
                self.users[user_id] = (await self.parley.call("GET", f"/api/v1/users/{user_id}"))["user"]
            except CliError:
                pass

    def name_of(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return (user.get("display_name") or user["username"]) if user else user_id[:8]

    # --- opening rooms and history --------------------------------------------------------
    async def open_room(self, room_id: str) -> None:
        state = self.rooms.get(room_id)
        if state is None:
            return
        self.current = room_id
        state.unread = state.mentions = 0
        self.refresh_all()
        try:
            if not state.loaded:
                page = await self.parley.call("GET", f"/api/v1/rooms/{room_id}/messages",
                                              params={"limit": self.history_page})
                for message in page["messages"]:
                    self.take_message(state, message)
                state.has_more = page["has_more"]
                state.loaded = True
            members = (await self.parley.call("GET", f"/api/v1/rooms/{room_id}/members"))["members"]
            for member in members:
                self.users[member["user"]["id"]] = member["user"]
            state.online = {m["user"]["id"] for m in members if m["online"]}
            if state.last_seq:
                self._read_due[room_id] = state.last_seq
        except CliError as exc:
            self.notice = str(exc)
        self.refresh_all(scroll_end=True)

    async def load_older(self) -> None:
        state = self.rooms.get(self.current or "")
        if not state or not state.has_more or not state.messages:
            return
        page = await self.parley.call("GET", f"/api/v1/rooms/{state.room['id']}/messages",
                                      params={"before_seq": min(state.messages), "limit": self.history_page})
        for message in page["messages"]:
            state.messages[message["seq"]] = message
        state.has_more = page["has_more"]
        self.refresh_all()

    async def tick(self) -> None:
        """Once a second: mark what was seen as read, and let typing markers lapse."""
        due, self._read_due = self._read_due, {}
        for room_id, seq in due.items():
            if room_id in self.rooms:
                try:
                    await self.parley.call("POST", f"/api/v1/rooms/{room_id}/read", json={"seq": seq})
                except CliError:
                    self._read_due.setdefault(room_id, seq)
        self.refresh_all()

    # --- rendering ----------------------------------------------------------------------
    def sidebar_text(self) -> Text:
        text = Text()
        for room_id in self.order:
            state = self.rooms[room_id]
            style = "reverse" if room_id == self.current else ("dim" if state.muted else "")
            badge = f" ({state.unread})" if state.unread else ""
            badge += f" @{state.mentions}" if state.mentions else ""
            text.append(f"{state.label[:18]}{badge}{' [muted]' if state.muted else ''}\n",
                        style=style or None)
        if not self.order:
            text.append("no conversations yet:\nF3 joins a room,\nF2 writes to someone")
        return text

    def transcript_text(self) -> Text:
        state = self.rooms.get(self.current or "")
        text = Text()
        if state is None:
            return text
        if state.has_more:
            text.append("── PageUp for older messages ──\n", style="dim")
        for seq in sorted(state.messages):
            message = state.messages[seq]
            when = message["created_at"][11:16]
            if message.get("reply_to") and not message["deleted"]:
                text.append(f"  ┌ {quote_text(message['reply_to'])}\n", style="dim")
            text.append(f"[{when}] #{seq} ", style="dim")
            text.append(self.name_of(message["author"]["id"]) if message["author"]["id"] in self.users
                        else message["author"]["display_name"], style="bold")
            if message["deleted"]:
                text.append(": (deleted)\n", style="dim italic")
            else:
                text.append(": ")
                append_mentions(text, message["text"], self.me.get("username"),
                                self.me.get("id") in (message.get("mentions") or ()))
                text.append((" (edited)" if message["edited_at"] else "") + "\n")
                if message.get("reactions"):
                    text.append(f"    {reactions_text(message['reactions'])}\n")
        return text

    def status_text(self) -> str:
        state = self.rooms.get(self.current or "")
        parts = []
        if state:
            here = state.online | ({self.me["id"]} if self.connected.is_set() else set())
            online = sorted(self.name_of(u) for u in here)
            parts.append(f"{state.label} · online: {', '.join(online) or 'nobody'}")
            now = time.monotonic()
            typing = [self.name_of(u) for u, until in state.typing.items()
                      if until > now and u != self.me.get("id")]
            if typing:
                parts.append(f"{', '.join(typing)} {'is' if len(typing) == 1 else 'are'} typing…")
        parts.append(self.connection)
        line = " · ".join(parts)
        return escape(line + (f"\n{self.notice}" if self.notice else ""))

    def refresh_all(self, scroll_end: bool = False) -> None:
        if not self.is_running:
            return
        try:
            log = self.query_one("#log", VerticalScroll)
        except Exception:  # not composed yet (or a modal screen is on top)
            return
        at_end = scroll_end or log.scroll_y >= log.max_scroll_y - 1
        self.query_one("#sidebar", Static).update(self.sidebar_text())
        self.query_one("#transcript", Static).update(self.transcript_text())
        self.query_one("#status", Static).update(self.status_text())
        if at_end:
            self.call_after_refresh(log.scroll_end, animate=False)

    # --- actions ------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_prefill(self, text: str) -> None:
        composer = self.query_one("#composer", Input)
        composer.value = text
        composer.cursor_position = len(text)
        composer.focus()

    async def step_room(self, step: int) -> None:
        if not self.order:
            return
        index = self.order.index(self.current) if self.current in self.order else -1
        await self.open_room(self.order[(index + step) % len(self.order)])

    async def action_next_room(self) -> None:
        await self.step_room(1)

    async def action_previous_room(self) -> None:
        await self.step_room(-1)

    async def action_toggle_mute(self) -> None:
        await self.command("/mute")

    def action_edit_last(self) -> None:
        last = self.my_last_message()
        self.action_prefill("/edit " + (last["text"] if last else ""))

    async def action_older(self) -> None:
        log = self.query_one("#log", VerticalScroll)
        if log.scroll_y <= 0:
            await self.load_older()
        else:
            log.scroll_page_up(animate=False)

    def action_newer(self) -> None:
        self.query_one("#log", VerticalScroll).scroll_page_down(animate=False)

    def my_last_message(self) -> dict | None:
        state = self.rooms.get(self.current or "")
        mine = [m for seq, m in sorted(state.messages.items())
                if m["author"]["id"] == self.me.get("id") and not m["deleted"]] if state else []
        return mine[-1] if mine else None

    async def on_input_changed(self, event: Input.Changed) -> None:
        if self.current and event.value and not event.value.startswith("/"):
            if time.monotonic() - self._typing_sent > TYPING_SEND_EVERY:
                self._typing_sent = time.monotonic()
                await self.send_frame({"type": "typing", "room_id": self.current})

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if not text:
            return
        self.notice = ""
        try:
            if text.startswith("/") and not text.startswith("//"):
                await self.command(text)
            else:
                await self.post(text.removeprefix("/"))
        except CliError as exc:
            self.notice = str(exc)
        self.refresh_all()

    async def post(self, text: str, reply_to: str | None = None) -> None:
        if not self.current:
            raise CliError("no room is open: F3 joins one, F2 writes to a person")
        post = {"text": text, "client_id": uuid.uuid4().hex}
        if reply_to:
            post["reply_to"] = reply_to
        body = await self.parley.call("POST", f"/api/v1/rooms/{self.current}/messages",
                                      json=post)
        self._typing_sent = 0.0
        state = self.rooms.get(self.current)
        if state:
            self.take_message(state, body["message"])
        self.refresh_all(scroll_end=True)

    async def command(self, line: str) -> None:
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        state = self.rooms.get(self.current or "")
        if name in ("join", "open", "j"):
            room = await self.parley.find_room(rest or "?", joined_only=False)
            if room["id"] not in self.rooms:
                if room["kind"] == "public":
                    room = (await self.parley.call("POST", f"/api/v1/rooms/{room['id']}/join"))["room"]
                await self.add_room(room)
            await self.open_room(room["id"])
        elif name in ("dm", "msg", "query"):
            if not rest:
                raise CliError("whom? /dm NAME")
            room = await self.parley.direct_room(rest)
            await self.add_room(room)
            await self.open_room(room["id"])
        elif name == "create":
            private = "--private" in rest.split()
            room_name = " ".join(w for w in rest.split() if w != "--private")
            body = await self.parley.call("POST", "/api/v1/rooms", json={
                "name": room_name, "kind": "private" if private else "public"})
            await self.add_room(body["room"])
            await self.open_room(body["room"]["id"])
        elif name in ("leave", "part") and state:
            await self.parley.call("POST", f"/api/v1/rooms/{state.room['id']}/leave")
            self.notice = f"you left {state.label}"
            self.remove_room(state.room["id"])
        elif name == "mute" and state:
            body = await self.parley.call("PUT", f"/api/v1/rooms/{state.room['id']}/mute",
                                          json={"muted": not state.muted})
            state.muted = body["muted"]
        elif name in ("edit", "delete") and state:
            last = self.my_last_message()
            if last is None:
                raise CliError("you have no message here to " + name)
            path = f"/api/v1/rooms/{state.room['id']}/messages/{last['id']}"
            if name == "edit":
                if not rest:
                    raise CliError("/edit NEW TEXT")
                self.take_message(state, (await self.parley.call("PATCH", path, json={"text": rest}))["message"])
            else:
                await self.parley.call("DELETE", path)
                last.update(deleted=True, text="")
        elif name in ("reply", "react", "unreact") and state:
            number, _, rest = rest.partition(" ")
            rest = rest.strip()
            if not rest:
                raise CliError(f"/{name} N " + ("TEXT" if name == "reply" else "EMOJI"))
            message = await find_message(self.parley, state.room["id"], number)
            if name == "reply":
                await self.post(rest, reply_to=message["id"])
            else:
                reactions = await react(self.parley, state.room["id"], message, rest,
                                        add=name == "react")
                shown = state.messages.get(message.get("seq"))
                if shown:
                    shown["reactions"] = reactions
        elif name == "older":
            await self.load_older()
        elif name in ("search", "find"):
            if not rest:
                raise CliError("search for what? /search WORDS")
            body = await self.parley.call("GET", "/api/v1/search", params={"q": rest, "limit": 50})
            self.push_screen(SearchScreen(rest, body["results"]))
        elif name == "help":
            self.action_help()
        elif name in ("quit", "exit"):
            self.exit()
        elif name in ("leave", "part", "mute", "edit", "delete", "reply", "react", "unreact"):
            raise CliError("no room is open")
        else:
            raise CliError(f"unknown command /{name}: F1 lists them")
        self.refresh_all()


def merged_reactions(before: list[dict], event: dict, me_id: str | None) -> list[dict]:
    """A reaction frame's counts, with `me` kept from before unless the frame was yours."""
    mine = {r["emoji"] for r in before if r.get("me")}
    if event.get("user_id") == me_id:
        (mine.add if event["type"] == "reaction_added" else mine.discard)(event["emoji"])
    return [{**r, "me": r["emoji"] in mine} for r in event.get("reactions") or []]


async def run_tui(parley: Parley) -> None:
    """Check the session first (a clear error and exit code instead of an empty screen)."""
    await parley.call("GET", "/api/v1/users/me")
    await ParleyApp(parley).run_async()

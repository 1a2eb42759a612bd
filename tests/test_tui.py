"""The full-screen terminal client (parley_cli.tui) driven by Textual's own pilot against the real
suite: one person in the client, the other over the API. Its traffic goes through a small TCP
proxy in the test, so a dropped connection is a real one (both sockets cut, new connections
refused until the test lets them through again)."""
from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aiohttp
from helpers import PASSWORD, Client, new_user, register, unique, ws_url
from parley_cli.client import Parley
from parley_cli.tui import HelpScreen, ParleyApp, SearchScreen

WAIT = 45  # generous: a loaded 2-core CI box


class Proxy:
    """127.0.0.1:<port> → the gateway; drop() cuts every connection and refuses new ones
    until restore()."""

    def __init__(self, target: str):
        parts = urlsplit(target)
        self.target = (parts.hostname, parts.port)
        self.down = False
        self.pairs: set = set()

    async def start(self) -> "Proxy":
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def handle(self, reader, writer) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        pair = (writer, up_writer)
        self.pairs.add(pair)

        async def pipe(source, sink) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.pairs.discard(pair)

    def drop(self) -> None:
        self.down = True
        for client_side, server_side in list(self.pairs):
            client_side.transport.abort()
            server_side.transport.abort()

    def restore(self) -> None:
        self.down = False

    async def close(self) -> None:
        self.drop()
        self.server.close()
        await self.server.wait_closed()


async def until(predicate, what: str, timeout: float = WAIT) -> None:
    """Wait for a condition (sync or async predicate); fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.1)


def screen_text(app: ParleyApp) -> str:
    return app.transcript_text().plain


async def type_line(pilot, text: str) -> None:
    await pilot.press(*text, "enter")


async def texts(client: Client, room_id: str) -> list[str]:
    reply = await client.get(f"/api/v1/rooms/{room_id}/messages?limit=100")
    assert reply.status == 200, reply
    return [m["text"] for m in reply.body["messages"]]


async def logged_in_client(http, base: str, token_file, username: str) -> Parley:
    """The client's own login (refresh credential in the body, saved 0600), as `login` does."""
    parley = Parley(http, base, token_file)
    body = await parley.call("POST", "/api/v1/auth/login", authorized=False, json={
        "username": username, "password": PASSWORD, "refresh_delivery": "body"})
    parley.save_tokens(body)
    return parley


async def test_two_people_chat_live_and_a_dropped_connection_resumes(suite, http, tmp_path):
    bob = await new_user(http, suite.url, unique("bob"), display_name="Bob Builder")
    alice = await register(http, suite.url, unique("alice"), display_name="Alice Ant")
    lounge = (await bob.post("/api/v1/rooms", {"name": unique("lounge"), "kind": "public"})).body["room"]
    side = (await bob.post("/api/v1/rooms", {"name": unique("side"), "kind": "public"})).body["room"]
    proxy = await Proxy(suite.url).start()
    async with aiohttp.ClientSession() as own:
        parley = await logged_in_client(own, proxy.url, tmp_path / "token", alice["username"])
        await parley.call("POST", f"/api/v1/rooms/{side['id']}/join")
        alice_api = Client(http, suite.url, parley.load_tokens()["access_token"], alice)
        app = ParleyApp(parley, history_page=10)
        try:
            async with app.run_test(size=(120, 36)) as pilot:
                await until(lambda: app.connected.is_set() and app.current == side["id"],
                            "the client connected with the side room open")

                # Join a room by its name from the composer; it opens.
                await type_line(pilot, f"/join {lounge['name']}")
                await until(lambda: app.current == lounge["id"], "the lounge opened")
                assert f"#{lounge['name']}" in app.sidebar_text().plain

                # Both ways: the client's line reaches the API user, and back.
                await type_line(pilot, "hello from the full screen")
                await until(lambda: _contains(texts(bob, lounge["id"]), "hello from the full screen"),
                            "bob reads alice's line")
                await bob.post(f"/api/v1/rooms/{lounge['id']}/messages", {"text": "hi alice"})
                await until(lambda: "Bob Builder: hi alice" in screen_text(app), "alice sees bob's line")

                # Presence and typing by display name (bob's socket, subscribed to the lounge).
                async with http.ws_connect(ws_url(suite.url),
                                           headers={"Authorization": f"Bearer {bob.token}"}) as bob_ws:
                    await bob_ws.send_json({"type": "subscribe", "room_id": lounge["id"]})
                    await until(lambda: "Bob Builder" in app.status_text(), "bob shown online")
                    await bob_ws.send_json({"type": "typing", "room_id": lounge["id"]})
                    await until(lambda: "Bob Builder is typing" in app.status_text(), "bob shown typing")

                # Unread counts move for the room that is not open, and clear when it opens.
                for number in range(3):
                    await bob.post(f"/api/v1/rooms/{side['id']}/messages", {"text": f"side {number}"})
                await until(lambda: app.rooms[side["id"]].unread == 3
                            and "(3)" in app.sidebar_text().plain, "three unread in the side room")
                while app.current != side["id"]:
                    await pilot.press("ctrl+n")
                    await pilot.pause()
                assert app.rooms[side["id"]].unread == 0 and "(3)" not in app.sidebar_text().plain

                async def server_unread() -> dict:
                    reply = await alice_api.get("/api/v1/conversations")
                    return {c["room"]["id"]: c["unread_count"] for c in reply.body["conversations"]}

                await until(lambda: _unread_is(server_unread(), side["id"], 0),
                            "the server knows alice read the side room")

                # A dropped connection: messages written meanwhile arrive once, in order, no gap.
                before = set(app.rooms[side["id"]].messages)
                proxy.drop()
                await until(lambda: not app.connected.is_set(), "the client noticed the drop")
                away = [f"while away {number}" for number in range(5)]
                for text in away:
                    await bob.post(f"/api/v1/rooms/{side['id']}/messages", {"text": text})
                for number in range(2):
                    await bob.post(f"/api/v1/rooms/{lounge['id']}/messages", {"text": f"lounge away {number}"})
                assert not app.connected.is_set()
                proxy.restore()
                await until(lambda: app.connected.is_set(), "the client reconnected")
                await until(lambda: all(t in screen_text(app) for t in away), "the missed lines arrived")
                await bob.post(f"/api/v1/rooms/{side['id']}/messages", {"text": "after the resume"})
                await until(lambda: "after the resume" in screen_text(app), "live again after the resume")
                seqs = sorted(app.rooms[side["id"]].messages)
                assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs  # no gap
                assert before < set(seqs)
                shown = screen_text(app)
                for text in [*away, "side 0", "side 1", "side 2", "after the resume"]:
                    assert shown.count(f": {text}\n") == 1, (text, shown)  # no duplicate
                await until(lambda: app.rooms[lounge["id"]].unread == 2, "lounge unread counted the missed two")

                # Edit and delete your last message, by key.
                await type_line(pilot, "a tpyo")
                await until(lambda: "Alice Ant: a tpyo" in screen_text(app), "alice's line shown")
                await pilot.press("f7")
                assert app.query_one("#composer").value == "/edit a tpyo"
                await pilot.press("ctrl+u")
                await type_line(pilot, "/edit no typo")
                await until(lambda: _contains(texts(bob, side["id"]), "no typo"), "bob sees the edit")
                assert "Alice Ant: no typo (edited)" in screen_text(app)
                await pilot.press("f8", "enter")
                await until(lambda: "Alice Ant: (deleted)" in screen_text(app), "the line shown deleted")
                assert "no typo" not in await texts(bob, side["id"])

                # Someone else starts a direct conversation: it appears, unread, by name.
                direct = (await bob.post("/api/v1/rooms/direct", {"user_id": alice["id"]})).body["room"]
                await bob.post(f"/api/v1/rooms/{direct['id']}/messages", {"text": "knock knock"})
                await until(lambda: direct["id"] in app.rooms and app.rooms[direct["id"]].unread == 1
                            and "@Bob Builder (1)" in app.sidebar_text().plain, "bob's DM shown unread")
        finally:
            await proxy.close()


async def test_scroll_back_direct_messages_mute_leave_and_help(suite, http, tmp_path):
    bob = await new_user(http, suite.url, unique("bob"), display_name="Bobby Tables")
    alice = await register(http, suite.url, unique("alice"))
    busy = (await bob.post("/api/v1/rooms", {"name": unique("busy"), "kind": "public"})).body["room"]
    async with aiohttp.ClientSession() as own:
        parley = await logged_in_client(own, suite.url, tmp_path / "token", alice["username"])
        await parley.call("POST", f"/api/v1/rooms/{busy['id']}/join")
        for number in range(25):
            await bob.post(f"/api/v1/rooms/{busy['id']}/messages", {"text": f"line {number:02}"})
        app = ParleyApp(parley, history_page=10)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(lambda: app.current == busy["id"] and app.rooms[busy["id"]].loaded, "busy open")
            state = app.rooms[busy["id"]]
            assert len(state.messages) == 10 and state.has_more
            assert "PageUp for older" in screen_text(app)
            # PageUp scrolls back; at the top it pages in older history (before_seq).
            deadline = time.monotonic() + WAIT
            while state.has_more and time.monotonic() < deadline:
                await pilot.press("pageup")
                await pilot.pause(0.05)
            assert [m["text"] for _, m in sorted(state.messages.items())] == [f"line {n:02}" for n in range(25)]

            # Mute by key: the server keeps it, the sidebar says so.
            await pilot.press("f6")
            await until(lambda: state.muted and "[muted]" in app.sidebar_text().plain, "muted")
            conversations = (await parley.call("GET", "/api/v1/conversations"))["conversations"]
            assert next(c for c in conversations if c["room"]["id"] == busy["id"])["muted"] is True

            # A direct message to a person found by name.
            await pilot.press("f2")
            await type_line(pilot, "Bobby Tables"[:5])  # a prefix of the display name is enough when unique
            await until(lambda: app.current and app.rooms[app.current].room["kind"] == "direct", "the DM opened")
            direct = app.current
            assert "@Bobby Tables" in app.sidebar_text().plain
            await type_line(pilot, "psst")
            await until(lambda: _contains(texts(bob, direct), "psst"), "bob got the direct message")

            # Leave the busy room (F5, Enter confirms): gone from the sidebar and the server.
            while app.current != busy["id"]:
                await pilot.press("ctrl+p")
                await pilot.pause()
            await pilot.press("f5", "enter")
            await until(lambda: busy["id"] not in app.rooms, "left the room")
            joined = await parley.all_pages("/api/v1/rooms?scope=joined&limit=100", "rooms")
            assert busy["id"] not in {r["id"] for r in joined}

            # Create a room from the keyboard; the help screen opens and closes.
            name = unique("made")
            await pilot.press("f4")
            await type_line(pilot, name)
            await until(lambda: app.current and app.rooms[app.current].label == f"#{name}", "created and open")
            await pilot.press("f1")
            await until(lambda: isinstance(app.screen, HelpScreen), "help shown")
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, HelpScreen), "help closed")
            await type_line(pilot, "/nonsense")
            assert "unknown command" in app.status_text()


async def test_search_key_shows_matches_from_your_rooms(suite, http, tmp_path):
    bob = await new_user(http, suite.url, unique("bob"), display_name="Bobby Search")
    alice = await register(http, suite.url, unique("alice"))
    word = unique("quokka")
    room = (await bob.post("/api/v1/rooms", {"name": unique("zoo"), "kind": "public"})).body["room"]
    elsewhere = (await bob.post("/api/v1/rooms", {"name": unique("mine"), "kind": "private"})).body["room"]
    await bob.post(f"/api/v1/rooms/{elsewhere['id']}/messages", {"text": f"a hidden {word}"})
    async with aiohttp.ClientSession() as own:
        parley = await logged_in_client(own, suite.url, tmp_path / "token", alice["username"])
        await parley.call("POST", f"/api/v1/rooms/{room['id']}/join")
        await bob.post(f"/api/v1/rooms/{room['id']}/messages", {"text": f"look, a {word} smiles"})
        app = ParleyApp(parley)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(lambda: app.current == room["id"], "room open")
            await pilot.press("f9")
            await type_line(pilot, word[:8])
            await until(lambda: isinstance(app.screen, SearchScreen), "results shown")
            shown = app.screen.text()
            assert f"#{room['name']}" in shown.plain and "Bobby Search: look, a" in shown.plain
            assert "hidden" not in shown.plain  # bob's private room is not alice's to search
            bold = [shown.plain[span.start:span.end] for span in shown.spans if "reverse" in str(span.style)]
            assert bold == [word]
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, SearchScreen), "results closed")


async def _contains(texts_coroutine, text: str) -> bool:
    return text in await texts_coroutine


async def _unread_is(unread_coroutine, room_id: str, count: int) -> bool:
    return (await unread_coroutine).get(room_id) == count


async def test_replies_and_reactions_in_the_transcript(suite, http, tmp_path):
    """/reply and /react on message #N; quotes and reactions in the transcript, others'
    reactions live (reaction frames), a deleted original shown as such."""
    from textual.widgets import Input

    bob = await new_user(http, suite.url, unique("bob"), display_name="Bob Builder")
    alice = await register(http, suite.url, unique("alice"))
    room = (await bob.post("/api/v1/rooms", {"name": unique("porch"), "kind": "public"})).body["room"]
    question = (await bob.post(f"/api/v1/rooms/{room['id']}/messages",
                               {"text": "lunch?"})).body["message"]
    async with aiohttp.ClientSession() as own:
        parley = await logged_in_client(own, suite.url, tmp_path / "token", alice["username"])
        await parley.call("POST", f"/api/v1/rooms/{room['id']}/join")
        app = ParleyApp(parley)

        async def enter(pilot, line: str) -> None:
            app.query_one(Input).value = line  # emoji are not keys to press
            await pilot.press("enter")

        async with app.run_test(size=(100, 30)) as pilot:
            await until(lambda: app.current == room["id"] and app.connected.is_set(), "room open")
            assert "#1 Bob Builder: lunch?" in screen_text(app)
            await enter(pilot, "/reply 1 yes please")
            await until(lambda: "┌ re #1 Bob Builder: lunch?" in screen_text(app), "the quote")
            await enter(pilot, "/react #1 👍")
            await until(lambda: "👍 1*" in screen_text(app), "alice's reaction")
            path = f"/api/v1/rooms/{room['id']}/messages/{question['id']}/reactions/%F0%9F%91%8D"
            assert (await bob.put(path)).status == 200
            await until(lambda: "👍 2*" in screen_text(app), "bob's reaction, live")
            await enter(pilot, "/unreact 1 👍")
            await until(lambda: "👍 1\n" in screen_text(app), "alice's taken back")
            await bob.delete(f"/api/v1/rooms/{room['id']}/messages/{question['id']}")
            await until(lambda: "re: (deleted message)" in screen_text(app), "the original gone")
            await enter(pilot, "/react 99 👍")
            await until(lambda: "no message #99" in app.notice, "an unknown number is said")

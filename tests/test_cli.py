"""parley-cli against the real suite: register, login (token file 0600), create, list."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid

import requests


def access_token(token_file) -> str:
    return json.loads(token_file.read_text())["access_token"]


def cli(suite, token_file, *args, stdin=""):
    env = {**os.environ, "PARLEY_TOKEN_FILE": str(token_file)}
    return subprocess.run([sys.executable, "-m", "parley_cli", "--url", suite.url, *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60)


def test_register_login_create_and_list_rooms(suite, tmp_path):
    token_file = tmp_path / "token"
    name = f"cli{uuid.uuid4().hex[:8]}"
    # getpass falls back to stdin when there is no terminal.
    registered = cli(suite, token_file, "register", name, f"{name}@example.com", stdin="a long password\n")
    assert registered.returncode == 0, registered.stderr
    wrong = cli(suite, token_file, "login", name, stdin="not the password\n")
    assert wrong.returncode == 1 and "password" in wrong.stderr.lower()
    assert not token_file.exists()

    login = cli(suite, token_file, "login", name, stdin="a long password\n")
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    room_name = f"cli-room-{uuid.uuid4().hex[:6]}"
    created = cli(suite, token_file, "create", room_name)
    assert created.returncode == 0, created.stderr
    listed = cli(suite, token_file, "rooms")
    assert room_name in listed.stdout

    room_id = next(line.split()[0] for line in listed.stdout.splitlines() if room_name in line)
    chat = cli(suite, token_file, "chat", room_id, stdin="hello from the terminal\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert "connected" in chat.stdout
    history = requests.get(f"{suite.url}/api/v1/rooms/{room_id}/messages",
                           headers={"Authorization": f"Bearer {access_token(token_file)}"},
                           timeout=10)
    assert [m["text"] for m in history.json()["messages"]] == ["hello from the terminal"]

    assert cli(suite, token_file, "logout").returncode == 0
    after = cli(suite, token_file, "rooms")
    assert after.returncode == 3 and "not logged in" in after.stderr


def test_sessions_password_and_account_deletion(suite, tmp_path):
    name = f"cli{uuid.uuid4().hex[:8]}"
    laptop, phone = tmp_path / "laptop", tmp_path / "phone"
    assert cli(suite, laptop, "register", name, f"{name}@example.com",
               stdin="a long password\n").returncode == 0
    for token_file in (laptop, phone):
        assert cli(suite, token_file, "login", name, stdin="a long password\n").returncode == 0
    stored = json.loads(laptop.read_text())
    assert set(stored) == {"access_token", "refresh_token"}
    listed = cli(suite, laptop, "sessions")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 2, listed
    assert sum(line.startswith("*") for line in listed.stdout.splitlines()) == 1

    changed = cli(suite, laptop, "password", stdin="a long password\nan even longer one\n")
    assert changed.returncode == 0, changed.stderr
    ended = cli(suite, phone, "rooms")  # the other session ended with the password change
    assert ended.returncode == 3, ended.stderr
    assert len(cli(suite, laptop, "sessions").stdout.splitlines()) == 1

    refused = cli(suite, laptop, "delete-account", stdin="a long password\n")
    assert refused.returncode == 1 and "password" in refused.stderr.lower(), refused.stderr
    deleted = cli(suite, laptop, "delete-account", stdin="an even longer one\n")
    assert deleted.returncode == 0, deleted.stderr
    assert not laptop.exists()
    again = cli(suite, phone, "login", name, stdin="an even longer one\n")
    assert again.returncode == 1


def api(suite, token: str, method: str, path: str, **kwargs):
    response = requests.request(method, suite.url + path, headers={"Authorization": f"Bearer {token}"},
                                timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def test_names_for_rooms_and_people_send_history_and_exit_codes(suite, tmp_path):
    token_file = tmp_path / "token"
    name, friend = f"cli{uuid.uuid4().hex[:8]}", f"pal{uuid.uuid4().hex[:8]}"
    for who in (name, friend):
        assert cli(suite, tmp_path / who, "register", who, f"{who}@example.com",
                   stdin="a long password\n").returncode == 0
        assert cli(suite, tmp_path / who, "login", who, stdin="a long password\n").returncode == 0
    token_file = tmp_path / name
    friend_token = access_token(tmp_path / friend)
    api(suite, friend_token, "PATCH", "/api/v1/users/me", json={"display_name": "Pal Friendly"})

    # Not logged in: 3, before anything else.
    nobody = cli(suite, tmp_path / "nobody", "history", "lounge")
    assert nobody.returncode == 3 and "not logged in" in nobody.stderr

    # Rooms by name: create, send, history (text and JSON).
    room = f"lounge-{uuid.uuid4().hex[:6]}"
    assert cli(suite, token_file, "create", room).returncode == 0
    for text in ("first", "second", "third"):
        sent = cli(suite, token_file, "send", room, text)
        assert sent.returncode == 0, sent.stderr
    shown = cli(suite, token_file, "history", room, "--limit", "2")
    assert shown.returncode == 0, shown.stderr
    assert [line.split(": ", 1)[1] for line in shown.stdout.splitlines()] == ["second", "third"]
    as_json = cli(suite, token_file, "history", f"#{room}", "--json")
    assert as_json.returncode == 0, as_json.stderr
    messages = json.loads(as_json.stdout)
    assert [m["text"] for m in messages] == ["first", "second", "third"]
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)

    # The friend joins by name; an id works as well as the name.
    joined = cli(suite, tmp_path / friend, "join", room)
    assert joined.returncode == 0, joined.stderr
    by_id = cli(suite, tmp_path / friend, "send", messages[0]["room_id"], "by id", "--json")
    assert by_id.returncode == 0 and json.loads(by_id.stdout)["text"] == "by id"

    # Not found: 4. Ambiguous: 2, listing the candidates. Usage: 2. Unreachable: 5.
    missing = cli(suite, token_file, "send", "no-such-room-here", "hello")
    assert missing.returncode == 4 and "no room called" in missing.stderr, missing.stderr
    twins = [api(suite, access_token(token_file), "POST", "/api/v1/rooms",
                 json={"name": "twin", "kind": "private"})["room"]["id"] for _ in range(2)]
    ambiguous = cli(suite, token_file, "history", "twin")
    assert ambiguous.returncode == 2 and all(t in ambiguous.stderr for t in twins), ambiguous.stderr
    assert cli(suite, token_file, "history", room, "--limit", "0").returncode == 2
    nobody_home = subprocess.run([sys.executable, "-m", "parley_cli", "--url", "http://127.0.0.1:9",
                                  "history", room], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "PARLEY_TOKEN_FILE": str(token_file)})
    assert nobody_home.returncode == 5 and "cannot reach" in nobody_home.stderr, nobody_home.stderr
    unknown_person = cli(suite, token_file, "dm", "zz-nobody-by-this-name")
    assert unknown_person.returncode == 4 and "nobody" in unknown_person.stderr

    # Direct messages by display name; presence lines carry display names, not ids.
    env = {**os.environ, "PARLEY_TOKEN_FILE": str(token_file), "PYTHONUNBUFFERED": "1"}
    chat = subprocess.Popen([sys.executable, "-m", "parley_cli", "--url", suite.url, "dm", "Pal Friendly"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        first = chat.stdout.readline()  # a new direct room has no history: this is the banner
        assert "connected to @Pal Friendly" in first, (first, chat.stderr.read())
        chat.stdin.write("hi pal\n")
        chat.stdin.flush()
        direct = api(suite, friend_token, "POST", "/api/v1/rooms/direct",
                     json={"user_id": api(suite, access_token(token_file), "GET", "/api/v1/users/me")["user"]["id"]})
        import websockets.sync.client as ws_client
        with ws_client.connect(suite.url.replace("http", "ws", 1) + "/api/v1/ws",
                               additional_headers={"Authorization": f"Bearer {friend_token}"}) as ws:
            ws.send(json.dumps({"type": "subscribe", "room_id": direct["room"]["id"]}))
            seen = ""
            while "Pal Friendly is online" not in seen:
                line = chat.stdout.readline()
                assert line, (seen, chat.stderr.read())
                seen += line
        out, err = chat.communicate("/quit\n", timeout=60)
    finally:
        if chat.poll() is None:
            chat.kill()
    assert chat.returncode == 0, err
    texts = [m["text"] for m in api(suite, friend_token, "GET",
                                     f"/api/v1/rooms/{direct['room']['id']}/messages")["messages"]]
    assert texts == ["hi pal"]


def test_search_prints_marked_snippets_json_and_exit_codes(suite, tmp_path):
    name = f"cli{uuid.uuid4().hex[:8]}"
    assert cli(suite, tmp_path / name, "register", name, f"{name}@example.com",
               stdin="a long password\n").returncode == 0
    assert cli(suite, tmp_path / name, "login", name, stdin="a long password\n").returncode == 0
    token_file = tmp_path / name
    word = f"kiwi{uuid.uuid4().hex[:6]}"
    rooms = [f"grove-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for room in rooms:
        assert cli(suite, token_file, "create", room).returncode == 0
        assert cli(suite, token_file, "send", room, f"a {word} in {room}").returncode == 0
    assert cli(suite, token_file, "send", rooms[0], "no fruit here").returncode == 0

    found = cli(suite, token_file, "search", word.upper())
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert len(lines) == 2 and all(f"*{word}*" in line for line in lines), lines
    assert {line.split(" ")[2] for line in lines} == {f"#{room}" for room in rooms}

    only = cli(suite, token_file, "search", word[:6], "--room", rooms[1], "--json")
    assert only.returncode == 0, only.stderr
    results = json.loads(only.stdout)
    assert [r["message"]["text"] for r in results] == [f"a {word} in {rooms[1]}"]
    assert [p["text"] for p in results[0]["snippet"] if p["match"]] == [word]
    assert cli(suite, token_file, "search", word, "--limit", "1", "--json").stdout.count('"seq"') == 1

    nothing = cli(suite, token_file, "search", "zzzz" + uuid.uuid4().hex[:8])
    assert nothing.returncode == 0 and nothing.stdout == "" and "no messages" in nothing.stderr
    assert cli(suite, token_file, "search", "?!").returncode == 1  # refused: no word in it
    assert cli(suite, token_file, "search", word, "--room", "no-such-room-here").returncode == 4
    assert cli(suite, tmp_path / "nobody", "search", word).returncode == 3


def test_mentions_marked_in_history_and_listed(suite, tmp_path):
    name, friend = f"cli{uuid.uuid4().hex[:8]}", f"pal{uuid.uuid4().hex[:8]}"
    for who in (name, friend):
        assert cli(suite, tmp_path / who, "register", who, f"{who}@example.com",
                   stdin="a long password\n").returncode == 0
        assert cli(suite, tmp_path / who, "login", who, stdin="a long password\n").returncode == 0
    room = f"den-{uuid.uuid4().hex[:6]}"
    assert cli(suite, tmp_path / name, "create", room).returncode == 0
    assert cli(suite, tmp_path / friend, "join", room).returncode == 0
    for text in (f"hey @{name.upper()} **look**", "no mention here"):
        assert cli(suite, tmp_path / friend, "send", room, text).returncode == 0

    shown = cli(suite, tmp_path / name, "history", room)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("@ [") and lines[0].endswith(f"hey @{name.upper()} **look**")
    assert lines[1].startswith("[")  # not a mention: no mark

    listed = cli(suite, tmp_path / name, "mentions")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.startswith("* ") and f"#{room} " in line and line.endswith("**look**")
    as_json = json.loads(cli(suite, tmp_path / name, "mentions", "--json").stdout)
    assert [item["room"]["name"] for item in as_json] == [room] and as_json[0]["unread"] is True
    assert cli(suite, tmp_path / friend, "mentions").stdout == ""


def test_tui_marks_mentions_of_you():
    from rich.text import Text

    from parley_cli.tui import append_mentions

    text = Text()
    append_mentions(text, "hi @Ada and @bob.", "ada", True)
    assert text.plain == "hi @Ada and @bob."
    styles = {text.plain[span.start:span.end]: str(span.style) for span in text.spans}
    assert styles == {"@Ada": "bold reverse", "@bob.": "bold"}


def test_replies_and_reactions_as_text(suite, tmp_path):
    names = [f"rx{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for who in names:
        assert cli(suite, tmp_path / who, "register", who, f"{who}@example.com",
                   stdin="a long password\n").returncode == 0
        assert cli(suite, tmp_path / who, "login", who, stdin="a long password\n").returncode == 0
    mine, theirs = (tmp_path / who for who in names)
    room = f"porch-{uuid.uuid4().hex[:6]}"
    assert cli(suite, mine, "create", room).returncode == 0
    assert cli(suite, theirs, "join", room).returncode == 0
    assert cli(suite, mine, "send", room, "coffee?").returncode == 0

    replied = cli(suite, theirs, "send", room, "yes please", "--reply-to", "#1", "--json")
    assert replied.returncode == 0, replied.stderr
    assert json.loads(replied.stdout)["reply_to"]["excerpt"] == "coffee?"
    reacted = cli(suite, theirs, "react", room, "1", "👍")
    assert reacted.returncode == 0 and reacted.stdout.strip() == "👍 1*", reacted
    assert cli(suite, mine, "react", room, "1", "👍").stdout.strip() == "👍 2*"

    shown = cli(suite, theirs, "history", room).stdout.splitlines()
    assert shown[0].endswith(f"#1 {names[0]}: coffee?")
    assert shown[1] == "    👍 2*"
    assert shown[2] == f"  ┌ re #1 {names[0]}: coffee?"
    assert shown[3].endswith(f"#2 {names[1]}: yes please")

    assert cli(suite, theirs, "unreact", room, "1", "👍").stdout.strip() == "👍 1"
    assert cli(suite, theirs, "unreact", room, "1", "👍").returncode == 0  # nothing to take back
    not_emoji = cli(suite, theirs, "react", room, "1", "ok")
    assert not_emoji.returncode == 1 and "emoji" in not_emoji.stderr, not_emoji.stderr
    missing = cli(suite, theirs, "react", room, "#99", "👍")
    assert missing.returncode == 4 and "#99" in missing.stderr, missing.stderr
    elsewhere = cli(suite, theirs, "send", room, "x", "--reply-to", uuid.uuid4().hex)
    assert elsewhere.returncode == 1 and "reply_to" in elsewhere.stderr, elsewhere.stderr

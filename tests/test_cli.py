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

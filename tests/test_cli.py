"""parley-cli against the real suite: register, login (token file 0600), create, list."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid

import requests


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
                           headers={"Authorization": f"Bearer {token_file.read_text()}"}, timeout=10)
    assert [m["text"] for m in history.json()["messages"]] == ["hello from the terminal"]

    assert cli(suite, token_file, "logout").returncode == 0
    after = cli(suite, token_file, "rooms")
    assert after.returncode == 1 and "not logged in" in after.stderr

"""Messages as text, and the calls about one message: its quote and reactions as a line of
text, finding a message by its number in the room, reacting. Shared by the line mode
(__main__.py) and the full-screen client (tui.py)."""
from __future__ import annotations

import urllib.parse

from .client import EXIT_NOT_FOUND, CliError, Parley


def author_name(author: dict | None) -> str:
    return (author or {}).get("display_name") or (author or {}).get("username") or "someone"


def quote_text(quoted: dict) -> str:
    if quoted["deleted"]:
        return "re: (deleted message)"
    return f"re #{quoted['seq']} {author_name(quoted['author'])}: {quoted['excerpt']}"


def reactions_text(reactions: list[dict]) -> str:
    return "  ".join(f"{r['emoji']} {r['count']}{'*' if r.get('me') else ''}" for r in reactions)


async def find_message(parley: Parley, room_id: str, which: str) -> dict:
    """A message of the room by its number (`12`, `#12`) or its id."""
    number = which.removeprefix("#")
    if number.isdigit():
        page = await parley.call("GET", f"/api/v1/rooms/{room_id}/messages",
                                 params={"after_seq": max(int(number) - 1, 0), "limit": 1})
        found = [m for m in page["messages"] if m["seq"] == int(number)]
        if not found:
            raise CliError(f"no message #{number} in this room", EXIT_NOT_FOUND)
        return found[0]
    return {"id": which}


async def react(parley: Parley, room_id: str, message: dict, emoji: str, add: bool) -> list:
    path = (f"/api/v1/rooms/{room_id}/messages/{message['id']}/reactions/"
            f"{urllib.parse.quote(emoji, safe='')}")
    body = await parley.call("PUT" if add else "DELETE", path)
    return body["reactions"]

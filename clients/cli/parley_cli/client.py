"""The public API as the terminal client uses it: tokens (kept and renewed), errors with exit
codes, and names for rooms and people. Shared by the line mode and the full-screen client."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from pathlib import Path

import aiohttp

DEFAULT_TOKEN_FILE = Path(os.environ.get("PARLEY_TOKEN_FILE",
                                         Path.home() / ".config" / "parley" / "token"))

# Exit codes of the line mode (documented in the README and `parley-cli --help`).
EXIT_OK = 0
EXIT_REFUSED = 1        # the server said no (forbidden, validation, conflict, rate limited)
EXIT_USAGE = 2          # bad arguments, or a name that fits several rooms/people
EXIT_NOT_LOGGED_IN = 3  # no token file, or the session has ended/expired: log in again
EXIT_NOT_FOUND = 4      # no such room, person or message (or not visible to you)
EXIT_UNAVAILABLE = 5    # the server cannot be reached or answers 503/5xx

ROOM_ID = re.compile(r"^[0-9a-f]{32}$")


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_REFUSED, status: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status  # the HTTP status, when the server answered


def token_claims(token: str) -> dict:
    """The token's payload, unverified (only the server judges it): `exp`, `sub`…"""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """The token's `exp` (seconds since the epoch)."""
    try:
        return float(token_claims(token)["exp"])
    except (KeyError, TypeError, ValueError):
        return None


def status_exit_code(status: int, code: str) -> int:
    if status == 401:  # a wrong password (invalid_credentials) is refused, not a lost session
        return EXIT_NOT_LOGGED_IN if code in ("unauthenticated", "session_revoked", "") else EXIT_REFUSED
    if status == 404:
        return EXIT_NOT_FOUND
    if status >= 500:
        return EXIT_UNAVAILABLE
    return EXIT_REFUSED


# An @mention as the server reads one (services/rooms/README.md "Mentions"): shown marked.
MENTION = re.compile(r"(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{3,32})")


def room_label(room: dict, me: dict | None = None, peer: dict | None = None) -> str:
    """How a room is named on screen: `#name`, or `@person` for a direct room."""
    if room["kind"] == "direct":
        return "@" + (peer["display_name"] or peer["username"] if peer else "direct")
    return "#" + (room["name"] or room["id"][:8])


class Parley:
    """One user's view of one server over HTTP (the WebSocket is opened by the callers)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token_file: Path = DEFAULT_TOKEN_FILE):
        self.http = http
        self.base = base.rstrip("/")
        self.token_file = Path(token_file)
        self._refreshing = asyncio.Lock()  # the refresh credential rotates: one renewal at a time

    # --- tokens -------------------------------------------------------------------------
    def save_tokens(self, body: dict) -> None:
        """Keep a login/refresh answer's access token and refresh credential."""
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        # Create with 0600 from the start so the tokens are never readable by others.
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"access_token": body["access_token"],
                       "refresh_token": body["refresh_token"]}, handle)
        os.chmod(self.token_file, 0o600)

    def load_tokens(self) -> dict:
        try:
            return json.loads(self.token_file.read_text())
        except FileNotFoundError:
            raise CliError("not logged in: run `parley-cli login NAME` first", EXIT_NOT_LOGGED_IN) from None
        except ValueError:
            raise CliError("the token file is unreadable: run `parley-cli login NAME` again",
                           EXIT_NOT_LOGGED_IN) from None

    async def refreshed(self) -> str:
        """Rotate the refresh credential: a new access token (saved with the new credential)."""
        async with self._refreshing:
            before = self.load_tokens()
            try:
                body = await self.call("POST", "/api/v1/auth/refresh", authorized=False,
                                       json={"refresh_token": before["refresh_token"]})
            except CliError as exc:
                if exc.status in (400, 401, 422):  # the credential is no longer (or never was) good
                    raise CliError(f"your session has ended ({exc}): run `parley-cli login NAME` again",
                                   EXIT_NOT_LOGGED_IN) from None
                raise
            self.save_tokens(body)
            return body["access_token"]

    async def token(self) -> str:
        """The saved access token, renewed first when it has (nearly) expired."""
        token = self.load_tokens()["access_token"]
        expiry = token_expiry(token)
        if expiry is not None and expiry - time.time() < 10:
            token = await self.refreshed()
        return token

    async def keep_socket_alive(self, ws, token: str) -> None:
        """While a socket is open: renew the access token halfway through its life (rotating
        the refresh credential, both saved) and hand it to the socket, which would otherwise
        close when its first token expires."""
        while (expiry := token_expiry(token)) is not None:
            await asyncio.sleep(max(1.0, (expiry - time.time()) / 2))
            try:
                token = await self.refreshed()
            except CliError as exc:
                if exc.exit_code == EXIT_NOT_LOGGED_IN:
                    return  # the session ended: the socket closes with 4401 and says so
                continue  # the server is away for now: try again while the token lives
            await ws.send_json({"type": "auth", "token": token})

    # --- HTTP ---------------------------------------------------------------------------
    async def call(self, method: str, path: str, authorized: bool = True, **kwargs):
        headers = {"Authorization": f"Bearer {await self.token()}"} if authorized else {}
        try:
            async with self.http.request(method, self.base + path, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=30), **kwargs) as response:
                body = await response.json() if response.content_type == "application/json" else None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise CliError(f"cannot reach {self.base}: {exc or type(exc).__name__}", EXIT_UNAVAILABLE) from None
        if response.status >= 400:
            error = (body or {}).get("error", {})
            details = "; ".join(f"{k}: {v}" for k, v in (error.get("details") or {}).items())
            message = error.get("message", response.reason) + (f" ({details})" if details else "")
            exit_code = status_exit_code(response.status, error.get("code", ""))
            if exit_code == EXIT_NOT_LOGGED_IN:
                message += ": run `parley-cli login NAME` again"
            raise CliError(message, exit_code, response.status)
        return body

    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/api/v1/ws"

    async def all_pages(self, path: str, key: str) -> list[dict]:
        items, cursor = [], None
        while True:
            joiner = "&" if "?" in path else "?"
            page = await self.call("GET", path + (f"{joiner}cursor={cursor}" if cursor else ""))
            items += page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def conversations(self) -> list[dict]:
        return await self.all_pages("/api/v1/conversations?limit=100", "conversations")

    async def peer_of(self, room: dict, me_id: str) -> dict | None:
        """The other person of a direct room."""
        members = (await self.call("GET", f"/api/v1/rooms/{room['id']}/members"))["members"]
        return next((m["user"] for m in members if m["user"]["id"] != me_id), None)

    # --- names --------------------------------------------------------------------------
    async def _if_exists(self, path: str, key: str) -> dict | None:
        """The object at ``path``, or None when there is none (a name that only looks like
        an id is then looked up as a name)."""
        try:
            return (await self.call("GET", path))[key]
        except CliError as exc:
            if exc.exit_code != EXIT_NOT_FOUND:
                raise
            return None

    async def find_user(self, name: str) -> dict:
        """A person by username, display name or id; ambiguity is an error listing them."""
        name = name.removeprefix("@")
        if ROOM_ID.match(name):
            user = await self._if_exists(f"/api/v1/users/{name}", "user")
            if user is not None:
                return user
        found = (await self.call("GET", "/api/v1/users", params={"q": name, "limit": 20}))["users"]
        wanted = name.casefold()
        for rule in (lambda u: u["username"].casefold() == wanted,
                     lambda u: (u["display_name"] or "").casefold() == wanted):
            exact = [u for u in found if rule(u)]
            if len(exact) == 1:
                return exact[0]
            if exact:
                found = exact
                break
        if len(found) == 1:
            return found[0]
        if not found:
            raise CliError(f"nobody is called {name!r}", EXIT_NOT_FOUND)
        listing = ", ".join(f"{u['username']} ({u['display_name']})" for u in found[:10])
        raise CliError(f"{name!r} could be several people: {listing}; use the username", EXIT_USAGE)

    async def direct_room(self, name: str) -> dict:
        person = await self.find_user(name)
        return (await self.call("POST", "/api/v1/rooms/direct", json={"user_id": person["id"]}))["room"]

    async def find_room(self, name: str, joined_only: bool = True) -> dict:
        """A room by id, by name among your rooms, `@person` for a direct room, or (when not
        joined_only) a public room by name. Several fits are an error listing their ids."""
        if name.startswith("@"):
            return await self.direct_room(name)
        if ROOM_ID.match(name):
            room = await self._if_exists(f"/api/v1/rooms/{name}", "room")
            if room is not None:
                return room
        wanted = name.removeprefix("#").strip().casefold()
        mine = await self.all_pages("/api/v1/rooms?scope=joined&limit=100", "rooms")
        fits = [r for r in mine if (r["name"] or "").casefold() == wanted]
        if not fits and not joined_only:
            public = (await self.call("GET", "/api/v1/rooms", params={
                "scope": "public", "q": wanted, "limit": 100}))["rooms"]
            fits = [r for r in public if (r["name"] or "").casefold() == wanted]
        if len(fits) == 1:
            return fits[0]
        if not fits:
            hint = "" if not joined_only else " among your rooms (see `parley-cli rooms`; `parley-cli join NAME` joins a public one)"
            raise CliError(f"no room called {name!r}{hint}", EXIT_NOT_FOUND)
        listing = ", ".join(f"{r['id']} ({r['kind']})" for r in fits)
        raise CliError(f"{name!r} names several rooms: {listing}; use the id", EXIT_USAGE)

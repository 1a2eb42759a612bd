"""The administrators' console API (/api/v1/admin/...) end to end: roles, 403 for everyone
else, deactivation (sessions end, sockets close with 4001, login refused, messages stay),
deleting any message or room, archiving, listings with filters, the audit log entry of every
action, and the log archive search through the gateway."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone

import aiohttp
import pika
import pytest

from helpers import PASSWORD, Client, auth_headers, login, new_user, next_frame, register, unique, ws_url
from parley_common import bus
from parley_common.testing import SUITE_ADMIN


@pytest.fixture
async def admin(suite, http) -> Client:
    """The administrator PARLEY_ADMINS names in the suite (registered on first use)."""
    reply = await Client(http, suite.url).post("/api/v1/auth/register", {
        "username": SUITE_ADMIN, "email": f"{SUITE_ADMIN}@example.com", "password": PASSWORD})
    assert reply.status in (201, 409), reply
    body = await login(http, suite.url, SUITE_ADMIN)
    assert body["user"]["is_admin"] is True, body
    return Client(http, suite.url, body["access_token"], body["user"])


async def audit_entries(admin: Client, limit: int = 100) -> list[dict]:
    reply = await admin.get(f"/api/v1/admin/audit?limit={limit}")
    assert reply.status == 200, reply
    return reply.body["entries"]


async def audited(admin: Client, action: str, target_id: str) -> list[dict]:
    return [entry for entry in await audit_entries(admin)
            if entry["action"] == action and entry["target"]["id"] == target_id]


async def public_room(owner: Client, *members: Client) -> dict:
    reply = await owner.post("/api/v1/rooms", {"name": unique("r"), "kind": "public"})
    assert reply.status == 201, reply
    for member in members:
        joined = await member.post(f"/api/v1/rooms/{reply.body['room']['id']}/join")
        assert joined.status == 200, joined
    return reply.body["room"]


async def post(client: Client, room_id: str, text: str = "hello"):
    return await client.post(f"/api/v1/rooms/{room_id}/messages",
                             {"text": text, "client_id": uuid.uuid4().hex})


async def close_code(ws, timeout: float = 10) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(ws.receive(), max(deadline - time.monotonic(), 0.01))
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data
        if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR):
            return ws.close_code


# --- who may --------------------------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/api/v1/admin/users", None),
    ("POST", "/api/v1/admin/users/{user}/deactivate", None),
    ("POST", "/api/v1/admin/users/{user}/reactivate", None),
    ("PUT", "/api/v1/admin/users/{user}/role", {"admin": True}),
    ("GET", "/api/v1/admin/rooms", None),
    ("DELETE", "/api/v1/admin/rooms/{room}", None),
    ("POST", "/api/v1/admin/rooms/{room}/archive", None),
    ("POST", "/api/v1/admin/rooms/{room}/unarchive", None),
    ("GET", "/api/v1/admin/rooms/{room}/messages", None),
    ("DELETE", "/api/v1/admin/rooms/{room}/messages/{message}", None),
    ("GET", "/api/v1/admin/audit", None),
    ("GET", "/api/v1/admin/logs", None),
    ("GET", "/api/v1/admin/stats", None),
]


async def test_everyone_else_gets_403_and_nothing_changes(suite, http, admin):
    mallory = await new_user(http, suite.url)
    victim = await new_user(http, suite.url)
    assert mallory.user["is_admin"] is False
    room = await public_room(victim)
    message = (await post(victim, room["id"])).body["message"]
    for method, path, body in ADMIN_CALLS:
        url = path.format(user=victim.id, room=room["id"], message=message["id"])
        reply = await mallory.request(method, url, *(() if body is None else (body,)))
        assert reply.status == 403, (method, url, reply)
        assert reply.error["code"] == "forbidden" and reply.error["message"], reply
        anonymous = await Client(http, suite.url).request(method, url,
                                                          *(() if body is None else (body,)))
        assert anonymous.status == 401, (method, url, anonymous)
    history = await victim.get(f"/api/v1/rooms/{room['id']}/messages")
    assert history.body["messages"][0]["text"] == "hello"
    assert (await login(http, suite.url, victim.user["username"]))["access_token"]
    assert await audited(admin, "user_deactivated", victim.id) == []


async def test_admin_endpoints_are_in_the_openapi_document(suite, http):
    document = await Client(http, suite.url).get("/api/v1/openapi.json")
    paths = document.body["paths"]
    for method, path, _ in ADMIN_CALLS:
        templated = path.replace("{user}", "{user_id}").replace("{room}", "{room_id}") \
            .replace("{message}", "{message_id}")
        operation = paths[templated][method.lower()]
        assert "403" in operation["responses"], templated
        assert operation["tags"] == ["admin"]


# --- roles ----------------------------------------------------------------------------------

async def test_grant_and_take_back_the_role_each_audited(suite, http, admin):
    helper = await new_user(http, suite.url)
    reply = await admin.put(f"/api/v1/admin/users/{helper.id}/role", {"admin": True})
    assert reply.status == 200 and reply.body["user"]["is_admin"] is True, reply
    assert reply.body["user"]["admin_source"] == "granted"
    again = await admin.put(f"/api/v1/admin/users/{helper.id}/role", {"admin": True})
    assert again.status == 200  # a repeat changes nothing ...
    granted = await audited(admin, "admin_granted", helper.id)
    assert len(granted) == 1  # ... and is not audited twice
    assert granted[0]["actor"] == {"id": admin.id, "username": SUITE_ADMIN}
    assert granted[0]["target"]["label"] == helper.user["username"]

    me = await helper.get("/api/v1/users/me")
    assert me.body["user"]["is_admin"] is True
    assert (await helper.get("/api/v1/admin/users")).status == 200  # at once, same token

    taken = await helper.put(f"/api/v1/admin/users/{helper.id}/role", {"admin": False})
    assert taken.status == 200 and taken.body["user"]["is_admin"] is False, taken
    assert len(await audited(admin, "admin_revoked", helper.id)) == 1
    assert (await helper.get("/api/v1/admin/users")).status == 403


async def test_the_configured_admin_cannot_lose_the_role_through_the_api(suite, http, admin):
    reply = await admin.put(f"/api/v1/admin/users/{admin.id}/role", {"admin": False})
    assert reply.status == 409, reply
    assert "PARLEY_ADMINS" in reply.error["message"]
    bad = await admin.put(f"/api/v1/admin/users/{admin.id}/role", {"admin": "no"})
    assert bad.status == 422 and "admin" in bad.error["details"], bad


async def test_an_admin_cannot_deactivate_themself(suite, http, admin):
    reply = await admin.post(f"/api/v1/admin/users/{admin.id}/deactivate")
    assert reply.status == 409, reply


# --- deactivation ---------------------------------------------------------------------------

async def test_deactivation_ends_sessions_closes_sockets_refuses_login_keeps_messages(
        suite, http, admin):
    gw_a, gw_b = suite.gateway_urls[:2]
    bob = await new_user(http, gw_a)
    other_session = Client(http, gw_b, (await login(http, gw_b, bob.user["username"]))["access_token"],
                           bob.user)
    room = await public_room(admin, bob)
    message = (await post(bob, room["id"], "keep me")).body["message"]
    here = await http.ws_connect(ws_url(gw_a), headers=auth_headers(bob.token))
    await next_frame(here, "ready")
    there = await http.ws_connect(ws_url(gw_b), headers=auth_headers(other_session.token))
    await next_frame(there, "ready")

    reply = await admin.post(f"/api/v1/admin/users/{bob.id}/deactivate")
    assert reply.status == 200, reply
    assert reply.body["user"]["deactivated"] is True and reply.body["user"]["deactivated_at"]

    assert await close_code(here) == 4001
    assert await close_code(there) == 4001
    for client in (bob, other_session):
        refused = await client.get("/api/v1/users/me")
        assert refused.status == 401, refused
    login_reply = await Client(http, gw_a).post("/api/v1/auth/login", {
        "username": bob.user["username"], "password": PASSWORD})
    assert login_reply.status == 403, login_reply
    assert login_reply.error["code"] == "account_deactivated"
    assert "deactivated" in login_reply.error["message"]
    wrong = await Client(http, gw_a).post("/api/v1/auth/login", {
        "username": bob.user["username"], "password": "not the password"})
    assert wrong.status == 401  # says nothing about the account to whoever lacks the password

    history = await admin.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["text"] for m in history.body["messages"]] == ["keep me"]
    assert history.body["messages"][0]["id"] == message["id"]

    again = await admin.post(f"/api/v1/admin/users/{bob.id}/deactivate")
    assert again.status == 200
    assert len(await audited(admin, "user_deactivated", bob.id)) == 1

    listed = await admin.get(f"/api/v1/admin/users?q={bob.user['username']}&status=deactivated")
    assert [user["id"] for user in listed.body["users"]] == [bob.id]
    active = await admin.get(f"/api/v1/admin/users?q={bob.user['username']}&status=active")
    assert active.body["users"] == []

    back = await admin.post(f"/api/v1/admin/users/{bob.id}/reactivate")
    assert back.status == 200 and back.body["user"]["deactivated"] is False, back
    assert (await login(http, gw_a, bob.user["username"]))["access_token"]
    entry, = await audited(admin, "user_reactivated", bob.id)
    assert entry["target"] == {"type": "user", "id": bob.id, "label": bob.user["username"]}


async def test_listing_users_filters_and_pages(suite, http, admin):
    tag = unique("f")
    made = [await register(http, suite.url, f"{tag}{index}") for index in range(3)]
    first = await admin.get(f"/api/v1/admin/users?q={tag}&limit=2")
    assert first.status == 200, first
    assert [user["username"] for user in first.body["users"]] == [f"{tag}0", f"{tag}1"]
    assert first.body["users"][0]["email"] == f"{tag}0@example.com"
    rest = await admin.get(f"/api/v1/admin/users?q={tag}&limit=2&cursor={first.body['next_cursor']}")
    assert [user["id"] for user in rest.body["users"]] == [made[2]["id"]]
    assert rest.body["next_cursor"] is None
    admins = await admin.get(f"/api/v1/admin/users?role=admin&q={SUITE_ADMIN}")
    assert [user["username"] for user in admins.body["users"]] == [SUITE_ADMIN]
    assert admins.body["users"][0]["admin_source"] == "config"
    bad = await admin.get("/api/v1/admin/users?status=sleeping")
    assert bad.status == 422 and "status" in bad.error["details"], bad


# --- messages and rooms ---------------------------------------------------------------------

async def test_admin_deletes_any_message_for_everyone(suite, http, admin):
    alice, bob = await new_user(http, suite.url), await new_user(http, suite.url)
    reply = await alice.post("/api/v1/rooms", {"name": unique("p"), "kind": "private",
                                               "member_ids": [bob.id]})
    room = reply.body["room"]  # private: the administrator is not a member
    message = (await post(alice, room["id"], "abuse")).body["message"]
    socket = await http.ws_connect(ws_url(suite.url), headers=auth_headers(bob.token))
    await next_frame(socket, "ready")
    await socket.send_json({"type": "subscribe", "room_id": room["id"]})
    await next_frame(socket, "subscribed")
    seen = await admin.get(f"/api/v1/admin/rooms/{room['id']}/messages")
    assert seen.status == 200, seen  # readable though the administrator is no member
    assert [m["text"] for m in seen.body["messages"]] == ["abuse"]
    assert seen.body["room"]["id"] == room["id"] and seen.body["has_more"] is False

    deleted = await admin.delete(f"/api/v1/admin/rooms/{room['id']}/messages/{message['id']}")
    assert deleted.status == 204, deleted
    frame = await next_frame(socket, "message_deleted")
    assert frame["message_id"] == message["id"]
    await socket.close()
    for reader in (alice, bob):
        history = (await reader.get(f"/api/v1/rooms/{room['id']}/messages")).body["messages"]
        assert [(m["id"], m["text"], m["deleted"]) for m in history] == [(message["id"], "", True)]
    seen = await admin.get(f"/api/v1/admin/rooms/{room['id']}/messages")
    assert [(m["text"], m["deleted"]) for m in seen.body["messages"]] == [("", True)]
    assert (await admin.delete(f"/api/v1/admin/rooms/{room['id']}/messages/{message['id']}")
            ).status == 204
    entry, = await audited(admin, "message_deleted", message["id"])
    assert entry["details"]["room_id"] == room["id"]
    missing = await admin.delete(f"/api/v1/admin/rooms/{room['id']}/messages/{uuid.uuid4().hex}")
    assert missing.status == 404, missing


async def test_archived_room_is_readable_not_writable(suite, http, admin):
    owner, member = await new_user(http, suite.url), await new_user(http, suite.url)
    room = await public_room(owner, member)
    message = (await post(member, room["id"], "before")).body["message"]

    archived = await admin.post(f"/api/v1/admin/rooms/{room['id']}/archive")
    assert archived.status == 200 and archived.body["room"]["archived_at"], archived

    refused = await post(member, room["id"], "after")
    assert refused.status == 403, refused
    assert refused.error["details"] == {"room_id": "archived"}
    assert "archived" in refused.error["message"]
    socket = await http.ws_connect(ws_url(suite.url), headers=auth_headers(member.token))
    await next_frame(socket, "ready")
    await socket.send_json({"type": "send", "room_id": room["id"], "text": "by socket",
                            "client_id": uuid.uuid4().hex, "ref": "s1"})
    error = await next_frame(socket, "error", ref="s1")
    assert error["code"] == "forbidden" and "archived" in error["message"]
    await socket.close()
    edit = await member.patch(f"/api/v1/rooms/{room['id']}/messages/{message['id']}",
                              {"text": "changed"})
    assert edit.status == 403, edit
    rename = await owner.patch(f"/api/v1/rooms/{room['id']}", {"name": unique("n")})
    assert rename.status == 403, rename

    history = await member.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["text"] for m in history.body["messages"]] == ["before"]
    assert (await owner.get(f"/api/v1/rooms/{room['id']}")).body["room"]["archived_at"]

    listed = await admin.get(f"/api/v1/admin/rooms?archived=true&q={room['name']}")
    assert [r["id"] for r in listed.body["rooms"]] == [room["id"]]
    assert (await admin.get(f"/api/v1/admin/rooms?archived=false&q={room['name']}")
            ).body["rooms"] == []

    assert (await admin.post(f"/api/v1/admin/rooms/{room['id']}/archive")).status == 200
    assert len(await audited(admin, "room_archived", room["id"])) == 1
    unarchived = await admin.post(f"/api/v1/admin/rooms/{room['id']}/unarchive")
    assert unarchived.status == 200 and unarchived.body["room"]["archived_at"] is None
    assert (await post(member, room["id"], "after")).status == 201
    assert len(await audited(admin, "room_unarchived", room["id"])) == 1


async def test_admin_deletes_any_room(suite, http, admin):
    alice, bob = await new_user(http, suite.url), await new_user(http, suite.url)
    reply = await alice.post("/api/v1/rooms", {"name": unique("p"), "kind": "private",
                                               "member_ids": [bob.id]})
    room = reply.body["room"]
    await post(alice, room["id"], "soon gone")
    listed = await admin.get(f"/api/v1/admin/rooms?kind=private&q={room['name']}")
    assert [r["id"] for r in listed.body["rooms"]] == [room["id"]]  # private rooms too
    socket = await http.ws_connect(ws_url(suite.url), headers=auth_headers(bob.token))
    await next_frame(socket, "ready")

    assert (await admin.delete(f"/api/v1/admin/rooms/{room['id']}")).status == 204
    frame = await next_frame(socket, "room_deleted")
    assert frame["room_id"] == room["id"]
    await socket.close()
    assert (await alice.get(f"/api/v1/rooms/{room['id']}")).status == 404
    assert (await admin.delete(f"/api/v1/admin/rooms/{room['id']}")).status == 204  # repeat
    entry, = await audited(admin, "room_deleted", room["id"])
    assert entry["target"]["label"] == room["name"]
    assert entry["details"]["members"] == 2
    assert (await admin.delete(f"/api/v1/admin/rooms/{uuid.uuid4().hex}")).status == 404


async def test_audit_log_pages_newest_first_across_services(suite, http, admin):
    user = await new_user(http, suite.url)
    room = await public_room(user)
    await admin.post(f"/api/v1/admin/users/{user.id}/deactivate")
    await admin.post(f"/api/v1/admin/rooms/{room['id']}/archive")
    await admin.post(f"/api/v1/admin/users/{user.id}/reactivate")
    newest = await audit_entries(admin, limit=3)
    assert [(e["action"], e["target"]["id"]) for e in newest] == [
        ("user_reactivated", user.id), ("room_archived", room["id"]),
        ("user_deactivated", user.id)]
    seen, cursor = [], None
    while True:
        page = await admin.get("/api/v1/admin/audit?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page
        seen.extend(page.body["entries"])
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    everything = await audit_entries(admin)
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert len({e["id"] for e in seen}) == len(seen)
    bad = await admin.get("/api/v1/admin/audit?cursor=nonsense")
    assert bad.status == 422, bad


# --- the log archive ------------------------------------------------------------------------

async def test_log_archive_search_through_the_gateway(suite, http, admin):
    """A record shipped to the log exchange, as every process ships its records, is found
    through the gateway with the command line's filters; bad filters are named. (The record is
    published by the test itself: whether a given process's record has been shipped yet is
    the log shipper's timing, not the search's.)"""
    marker = f"console_search_{uuid.uuid4().hex[:8]}"
    record = {"event": marker, "level": "info", "service": "auth", "instance": "auth-test",
              "ts": datetime.now(timezone.utc).isoformat(), "target_id": "someone"}
    connection = pika.BlockingConnection(pika.URLParameters(suite.isolation.amqp_uri))
    try:
        channel = connection.channel()
        bus.declare_log_topology_pika(channel)
        channel.basic_publish(bus.LOG_EXCHANGE, bus.log_routing_key("auth", "info"),
                              json.dumps(record).encode())
    finally:
        connection.close()
    deadline = time.monotonic() + 60
    while True:  # the logger archives in batches (LOGGER_BATCH_MS)
        reply = await admin.get(f"/api/v1/admin/logs?service=auth&min_level=info&since=10m"
                                f"&q={marker}&limit=50")
        assert reply.status == 200, reply
        found = reply.body["records"]
        if found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [(r["service"], r["level"], r["event"], r["fields"].get("target_id"))
            for r in found] == [("auth", "info", marker, "someone")], reply
    other = await admin.get(f"/api/v1/admin/logs?service=rooms&q={marker}&since=10m")
    assert other.status == 200 and other.body["records"] == []
    bad = await admin.get("/api/v1/admin/logs?since=yesterday&level=loud")
    assert bad.status == 422, bad
    assert set(bad.error["details"]) == {"since", "level"}
    member = await new_user(http, suite.url)
    assert (await member.get("/api/v1/admin/logs?q=x")).status == 403


async def test_live_figures_of_every_gateway_and_the_queues(suite, http, admin):
    member = await new_user(http, suite.url)
    room = await public_room(member)
    socket = await http.ws_connect(ws_url(suite.gateway_urls[1]), headers=auth_headers(member.token))
    await next_frame(socket, "ready")
    for n in range(3):
        assert (await post(member, room["id"], f"m{n}")).status == 201
    wanted = {"gateway-1", "gateway-2"}
    deadline = time.monotonic() + 20
    while True:  # each gateway samples every few seconds
        reply = await admin.get("/api/v1/admin/stats")
        assert reply.status == 200, reply
        gateways = reply.body["gateways"]
        latest = {name: samples[-1] for name, samples in gateways.items() if samples}
        if wanted <= set(latest) and latest["gateway-2"]["sockets"] >= 1 \
                and latest["gateway-1"]["messages"] >= 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    await socket.close()
    assert wanted <= set(latest), gateways
    assert latest["gateway-2"]["sockets"] >= 1
    assert latest["gateway-1"]["messages"] >= 3  # REST posts through gateway-1
    assert latest["gateway-1"]["rpc_p99"] is None or latest["gateway-1"]["rpc_p99"] > 0
    assert reply.body["sample_seconds"] > 0
    queues = reply.body["queues"]
    assert isinstance(queues["rpc-auth"], int) and isinstance(queues["logs.archive"], int)

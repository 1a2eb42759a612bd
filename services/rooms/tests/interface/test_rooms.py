"""Rooms: creation rules, visibility and authorization, direct rooms, membership changes,
listings with cursors, conversations, deletion, and the users replica fed by auth.events."""
from __future__ import annotations

import asyncio
import uuid


def unique_name(prefix: str = "Room") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def test_create_room_shape_members_and_event(rooms):
    owner, a, b = await rooms.user(), await rooms.user(), await rooms.user()
    room = await rooms.call("create_room", owner["id"], "  Team Room  ", "private",
                            topic="plans", member_ids=[a["id"], b["id"], a["id"], owner["id"]])
    assert set(room) == {"id", "kind", "name", "topic", "owner_id", "member_count", "created_at",
                         "last_activity_at", "last_seq", "archived_at"}
    assert room["archived_at"] is None
    assert room["name"] == "Team Room" and room["kind"] == "private" and room["topic"] == "plans"
    assert room["owner_id"] == owner["id"] and room["member_count"] == 3 and room["last_seq"] == 0
    members = await rooms.call("list_members", a["id"], room["id"])
    roles = {m["user"]["id"]: m["role"] for m in members}
    assert roles == {owner["id"]: "owner", a["id"]: "member", b["id"]: "member"}
    first = members[0]
    assert set(first) == {"user", "role", "joined_at", "last_read_seq"}
    assert set(first["user"]) == {"id", "username", "display_name", "avatar_url", "created_at"}
    created = await rooms.events.wait_for("room_created", lambda p: p["room"]["id"] == room["id"])
    assert set(created[0]["member_ids"]) == {owner["id"], a["id"], b["id"]}
    assert await rooms.call("room_ids_for_user", b["id"]) == [room["id"]]


async def test_create_room_validation(rooms):
    owner = await rooms.user()
    for args, kwargs, fields in (
        (("", "public"), {}, {"name"}),
        (("   ", "public"), {}, {"name"}),
        (("x" * 65, "public"), {}, {"name"}),
        (("ok", "direct"), {}, {"kind"}),
        ((None, "secret"), {}, {"name", "kind"}),
        (("ok", "public"), {"topic": "t" * 257}, {"topic"}),
        (("ok", "private"), {"member_ids": "abc"}, {"member_ids"}),
        (("ok", "private"), {"member_ids": [str(n) for n in range(101)]}, {"member_ids"}),
    ):
        error = await rooms.error("create_room", owner["id"], *args, **kwargs)
        assert error.code == "validation_failed" and set(error.details) == fields, (args, error.details)
    error = await rooms.error("create_room", owner["id"], "ok", "private", member_ids=[uuid.uuid4().hex])
    assert error.code == "not_found" and "member_ids" in error.details


async def test_public_names_are_unique_case_insensitively_even_when_racing(rooms):
    owner, other = await rooms.user(), await rooms.user()
    name = unique_name("Lobby")
    await rooms.call("create_room", owner["id"], name, "public")
    error = await rooms.error("create_room", other["id"], "  " + name.upper() + " ", "public")
    assert error.code == "room_exists" and error.status == 409
    # private rooms may share any name
    await rooms.call("create_room", other["id"], name, "private")
    racing = unique_name("Race")
    results = await asyncio.gather(*(rooms.call("create_room", owner["id"], racing, "public")
                                     for _ in range(8)), return_exceptions=True)
    assert sum(isinstance(result, dict) for result in results) == 1
    assert all(getattr(result, "code", None) == "room_exists" for result in results
               if not isinstance(result, dict))
    # renaming onto a taken public name is the same conflict
    mine = await rooms.call("create_room", other["id"], unique_name(), "public")
    error = await rooms.error("update_room", other["id"], mine["id"], name=name.lower())
    assert error.code == "room_exists"


async def test_a_replayed_create_answers_with_the_room_it_made(rooms):
    # What a redelivered RPC (the first replica died after committing) looks like to rooms:
    # the same request id again, even for a public name that is now taken by that very room.
    owner, member = await rooms.user(), await rooms.user()
    request_id, name = uuid.uuid4().hex, unique_name("Replay")
    first = await rooms.call("create_room", owner["id"], name, "public", request_id=request_id)
    again = await rooms.call("create_room", owner["id"], name, "public", request_id=request_id)
    assert again == first
    twins = await asyncio.gather(*(
        rooms.call("create_room", owner["id"], "Twins", "private", member_ids=[member["id"]],
                   request_id=twin_id) for twin_id in [uuid.uuid4().hex] * 6))
    assert len({room["id"] for room in twins}) == 1
    assert rooms.sql("SELECT count(*) FROM rooms WHERE creation_key LIKE %s",
                     f"{owner['id']}:%")[0][0] == 2
    await rooms.events.wait_for("room_created", lambda p: p["room"]["id"] == twins[0]["id"])
    await asyncio.sleep(0.3)  # a second event would have arrived by now
    for room in (first, twins[0]):
        assert len(rooms.events.of("room_created", lambda p: p["room"]["id"] == room["id"])) == 1
    # The request id is the creator's own: another user's request with it is a new request.
    other = await rooms.user()
    theirs = await rooms.call("create_room", other["id"], "Theirs", "private", request_id=request_id)
    assert theirs["id"] != first["id"] and theirs["owner_id"] == other["id"]
    # A new request for the taken public name still conflicts.
    error = await rooms.error("create_room", owner["id"], name, "public", request_id=uuid.uuid4().hex)
    assert error.code == "room_exists"
    error = await rooms.error("create_room", owner["id"], "ok", "private", request_id="")
    assert error.code == "validation_failed" and set(error.details) == {"request_id"}


async def test_private_and_direct_rooms_are_invisible_to_outsiders(rooms):
    owner, member, outsider = await rooms.user(), await rooms.user(), await rooms.user()
    private = await rooms.room(owner, members=[member])
    direct = (await rooms.call("open_direct", owner["id"], member["id"]))["room"]
    message = await rooms.post(owner, private)
    for room in (private, direct):
        for method, args in (("get_room", ()), ("list_members", ()), ("list_messages", ()),
                             ("post_message", ("hi", "c")), ("join_room", ()), ("leave_room", ()),
                             ("mark_read", (1,)), ("set_muted", (True,)), ("delete_room", ()),
                             ("update_room", ()), ("add_member", (outsider["id"],))):
            error = await rooms.error(method, outsider["id"], room["id"], *args)
            assert error.code == "not_found", (room["kind"], method, error.code)
    for method, args in (("edit_message", (message["id"], "x")), ("delete_message", (message["id"],))):
        assert (await rooms.error(method, outsider["id"], private["id"], *args)).code == "not_found"
    assert (await rooms.error("get_room", owner["id"], "no-such-room")).code == "not_found"
    listed = await rooms.call("list_rooms", outsider["id"], "public", q=private["name"])
    assert private["id"] not in [room["id"] for room in listed["rooms"]]


async def test_public_room_rules(rooms):
    owner, member, outsider = await rooms.user(), await rooms.user(), await rooms.user()
    room = await rooms.room(owner, kind="public", name=unique_name("Public"))
    assert (await rooms.call("get_room", outsider["id"], room["id"]))["id"] == room["id"]
    assert await rooms.call("leave_room", outsider["id"], room["id"]) is None  # not in it: no-op
    joined = await rooms.call("join_room", member["id"], room["id"])
    assert joined["member_count"] == 2
    again = await rooms.call("join_room", member["id"], room["id"])  # idempotent
    assert again["member_count"] == 2
    await rooms.events.wait_for("member_joined", lambda p: p["room_id"] == room["id"])
    await asyncio.sleep(0.3)
    joins = rooms.events.of("member_joined", lambda p: p["room_id"] == room["id"])
    assert len(joins) == 1 and joins[0]["user"]["id"] == member["id"]
    assert set(joins[0]["member_ids"]) == {owner["id"], member["id"]}
    # only the owner renames or deletes; members may not add members to public rooms
    assert (await rooms.error("update_room", member["id"], room["id"], name="Mine now")).code == "forbidden"
    assert (await rooms.error("delete_room", member["id"], room["id"])).code == "forbidden"
    assert (await rooms.error("add_member", member["id"], room["id"], outsider["id"])).code == "forbidden"
    renamed = await rooms.call("update_room", owner["id"], room["id"], name=unique_name("Renamed"),
                               topic="new topic")
    assert renamed["topic"] == "new topic" and renamed["name"].startswith("Renamed")
    updated = await rooms.events.wait_for("room_updated", lambda p: p["room"]["id"] == room["id"])
    assert set(updated[0]["member_ids"]) == {owner["id"], member["id"]}
    error = await rooms.error("update_room", owner["id"], room["id"], name="  ")
    assert error.code == "validation_failed" and "name" in error.details


async def test_private_room_members_add_members(rooms):
    owner, member, newcomer, later = (await rooms.user(), await rooms.user(), await rooms.user(),
                                      await rooms.user())
    room = await rooms.room(owner, members=[member])
    assert (await rooms.error("join_room", newcomer["id"], room["id"])).code == "not_found"
    added = await rooms.call("add_member", member["id"], room["id"], newcomer["id"])
    assert added["member_count"] == 3
    assert (await rooms.call("add_member", member["id"], room["id"], newcomer["id"]))["member_count"] == 3
    event = await rooms.events.wait_for("member_joined", lambda p: p["room_id"] == room["id"])
    assert event[0]["user"]["id"] == newcomer["id"]
    assert set(event[0]["member_ids"]) == {owner["id"], member["id"], newcomer["id"]}
    assert (await rooms.call("get_room", newcomer["id"], room["id"]))["id"] == room["id"]
    error = await rooms.error("add_member", member["id"], room["id"], uuid.uuid4().hex)
    assert error.code == "not_found" and "member_id" in error.details
    await rooms.post(owner, room, "history")
    await rooms.post(owner, room, "more history")
    assert (await rooms.call("add_member", newcomer["id"], room["id"], later["id"]))["member_count"] == 4
    # a newcomer starts with the history read: nothing before they came counts as unread
    members = {m["user"]["id"]: m for m in await rooms.call("list_members", later["id"], room["id"])}
    assert members[later["id"]]["last_read_seq"] == 2
    conversations = await rooms.call("list_conversations", later["id"])
    assert conversations["conversations"][0]["unread_count"] == 0


async def test_direct_rooms(rooms):
    alice, bob, carol = await rooms.user(), await rooms.user(), await rooms.user()
    # ten concurrent opens of the same pair, from both sides: one room, created once
    results = await asyncio.gather(*(
        rooms.call("open_direct", *((alice["id"], bob["id"]) if n % 2 else (bob["id"], alice["id"])))
        for n in range(10)))
    assert len({result["room"]["id"] for result in results}) == 1
    assert [result["created"] for result in results].count(True) == 1
    room = results[0]["room"]
    assert room["kind"] == "direct" and room["member_count"] == 2 and room["owner_id"] is None
    assert rooms.sql("SELECT count(*) FROM rooms WHERE kind = 'direct' AND direct_key LIKE %s",
                     f"%{alice['id']}%") == [(1,)]
    later = await rooms.call("open_direct", alice["id"], bob["id"])
    assert later == {"room": later["room"], "created": False} and later["room"]["id"] == room["id"]
    created = await rooms.events.wait_for("room_created", lambda p: p["room"]["id"] == room["id"])
    assert set(created[0]["member_ids"]) == {alice["id"], bob["id"]}
    # the rules of direct rooms
    for method, args in (("join_room", ()), ("leave_room", ()), ("delete_room", ()),
                         ("update_room", ()), ("add_member", (carol["id"],))):
        assert (await rooms.error(method, alice["id"], room["id"], *args)).code == "forbidden", method
    error = await rooms.error("open_direct", alice["id"], alice["id"])
    assert error.code == "validation_failed" and "other_user_id" in error.details
    error = await rooms.error("open_direct", alice["id"], uuid.uuid4().hex)
    assert error.code == "not_found" and "other_user_id" in error.details
    message = await rooms.post(bob, room, "hi alice")
    page = await rooms.call("list_messages", alice["id"], room["id"])
    assert page["messages"][0]["id"] == message["id"]


async def test_owner_leaving_passes_ownership_and_last_member_rules(rooms):
    owner, second, third = await rooms.user(), await rooms.user(), await rooms.user()
    room = await rooms.room(owner)
    await rooms.call("add_member", owner["id"], room["id"], second["id"])
    await rooms.call("add_member", owner["id"], room["id"], third["id"])  # joined after second
    assert await rooms.call("leave_room", owner["id"], room["id"]) is None
    now = await rooms.call("get_room", second["id"], room["id"])
    assert now["owner_id"] == second["id"] and now["member_count"] == 2
    left = await rooms.events.wait_for("member_left", lambda p: p["room_id"] == room["id"])
    assert left[0]["user"]["id"] == owner["id"]
    assert set(left[0]["member_ids"]) == {owner["id"], second["id"], third["id"]}
    assert (await rooms.error("get_room", owner["id"], room["id"])).code == "not_found"
    await rooms.call("leave_room", second["id"], room["id"])
    assert (await rooms.call("get_room", third["id"], room["id"]))["owner_id"] == third["id"]
    # the last member leaving a private room deletes it: nobody could reach it again
    await rooms.call("leave_room", third["id"], room["id"])
    await rooms.events.wait_for("room_deleted", lambda p: p["room_id"] == room["id"])
    assert rooms.sql("SELECT count(*) FROM rooms WHERE id = %s", room["id"]) == [(0,)]
    # a public room left empty stays, ownerless, and the next to join owns it
    public = await rooms.room(owner, kind="public")
    await rooms.call("leave_room", owner["id"], public["id"])
    abandoned = await rooms.call("get_room", second["id"], public["id"])
    assert abandoned["owner_id"] is None and abandoned["member_count"] == 0
    assert (await rooms.call("join_room", second["id"], public["id"]))["owner_id"] == second["id"]


async def test_delete_room_removes_everything(rooms):
    owner, member = await rooms.user(), await rooms.user()
    room = await rooms.room(owner, members=[member])
    for n in range(3):
        await rooms.post(member, room, f"m{n}")
    assert await rooms.call("delete_room", owner["id"], room["id"]) is None
    deleted = await rooms.events.wait_for("room_deleted", lambda p: p["room_id"] == room["id"])
    assert set(deleted[0]["member_ids"]) == {owner["id"], member["id"]}
    assert (await rooms.error("get_room", owner["id"], room["id"])).code == "not_found"
    assert rooms.sql("SELECT count(*) FROM messages WHERE room_id = %s", room["id"]) == [(0,)]
    assert rooms.sql("SELECT count(*) FROM memberships WHERE room_id = %s", room["id"]) == [(0,)]
    assert room["id"] not in await rooms.call("room_ids_for_user", member["id"])


async def test_list_rooms_public_and_joined_with_cursors(rooms):
    user, other = await rooms.user(), await rooms.user()
    tag = uuid.uuid4().hex[:6]
    names = [f"zz-{tag}-{letter}" for letter in "edcba"]
    created = {}
    for name in names:
        created[name] = await rooms.call("create_room", other["id"], name, "public")
    page = await rooms.call("list_rooms", user["id"], "public", q=f"ZZ-{tag}", limit=2)
    assert [room["name"] for room in page["rooms"]] == sorted(names)[:2] and page["next_cursor"]
    page2 = await rooms.call("list_rooms", user["id"], "public", q=f"zz-{tag}", limit=2,
                             cursor=page["next_cursor"])
    page3 = await rooms.call("list_rooms", user["id"], "public", q=f"zz-{tag}", limit=2,
                             cursor=page2["next_cursor"])
    assert [room["name"] for room in page2["rooms"] + page3["rooms"]] == sorted(names)[2:]
    assert page3["next_cursor"] is None
    substring = await rooms.call("list_rooms", user["id"], "public", q=f"{tag}-c")
    assert [room["name"] for room in substring["rooms"]] == [f"zz-{tag}-c"]
    literal = await rooms.call("list_rooms", user["id"], "public", q="%")
    assert all("%" in room["name"] for room in literal["rooms"])
    # joined: newest activity first
    for name in (names[0], names[2], names[4]):
        await rooms.call("join_room", user["id"], created[name]["id"])
    await rooms.post(user, created[names[2]], "bump")
    joined = await rooms.call("list_rooms", user["id"], "joined", limit=2)
    assert [room["name"] for room in joined["rooms"]] == [names[2], names[4]]
    rest = await rooms.call("list_rooms", user["id"], "joined", limit=2, cursor=joined["next_cursor"])
    assert [room["name"] for room in rest["rooms"]] == [names[0]] and rest["next_cursor"] is None
    for kwargs, field in (({"cursor": "garbage!"}, "cursor"), ({"cursor": page["next_cursor"][:-3]}, "cursor"),
                          ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"q": 5}, "q")):
        error = await rooms.error("list_rooms", user["id"], "public", **kwargs)
        assert error.code == "validation_failed" and field in error.details, kwargs
    # a public-listing cursor is not a joined-listing cursor
    error = await rooms.error("list_rooms", user["id"], "joined", cursor=page["next_cursor"])
    assert error.code == "validation_failed" and "cursor" in error.details
    error = await rooms.error("list_rooms", user["id"], "everything")
    assert error.code == "validation_failed" and "scope" in error.details


async def test_conversations_order_cursor_and_contents(rooms):
    me, friend = await rooms.user(), await rooms.user()
    quiet = await rooms.room(friend, members=[me], name="quiet")
    busy = await rooms.room(friend, members=[me], name="busy")
    mine = await rooms.room(me, name="mine")
    await rooms.post(friend, busy, "one")
    last = await rooms.post(friend, busy, "two")
    await rooms.call("set_muted", me["id"], quiet["id"], True)
    first = await rooms.call("list_conversations", me["id"], limit=2)
    assert [c["room"]["id"] for c in first["conversations"]] == [busy["id"], mine["id"]]
    busy_conversation = first["conversations"][0]
    assert busy_conversation["last_message"]["id"] == last["id"]
    assert busy_conversation["unread_count"] == 2 and busy_conversation["muted"] is False
    assert first["conversations"][1]["last_message"] is None
    second = await rooms.call("list_conversations", me["id"], limit=2, cursor=first["next_cursor"])
    assert [c["room"]["id"] for c in second["conversations"]] == [quiet["id"]]
    assert second["conversations"][0]["muted"] is True and second["next_cursor"] is None
    assert await rooms.call("set_muted", me["id"], quiet["id"], False) == {"room_id": quiet["id"], "muted": False}
    assert (await rooms.error("set_muted", me["id"], quiet["id"], "yes")).code == "validation_failed"
    # a tombstone can be the last message
    await rooms.call("delete_message", friend["id"], busy["id"], last["id"])
    again = await rooms.call("list_conversations", me["id"], limit=1)
    assert again["conversations"][0]["last_message"]["deleted"] is True
    assert again["conversations"][0]["unread_count"] == 1
    error = await rooms.error("list_conversations", me["id"], cursor="bm90IGEgY3Vyc29y")
    assert error.code == "validation_failed" and "cursor" in error.details


async def test_users_replica_follows_auth_events(rooms):
    owner = await rooms.user()
    # known to rooms only through the user_registered event (the auth stand-in never heard of it)
    newcomer = await rooms.users.create("eventonly", in_auth=False)

    async def open_direct():
        for _ in range(100):
            try:
                return await rooms.call("open_direct", owner["id"], newcomer["id"])
            except Exception as exc:
                if getattr(exc, "code", None) != "not_found":
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("user_registered never reached the rooms replica")

    direct = (await open_direct())["room"]
    redelivered = dict(newcomer, display_name="Renamed Person")
    await rooms.users.publish("user_updated", redelivered)
    await rooms.users.publish("user_updated", redelivered)  # redelivery is harmless

    async def display_name():
        members = await rooms.call("list_members", owner["id"], direct["id"])
        return next(m["user"]["display_name"] for m in members if m["user"]["id"] == newcomer["id"])

    for _ in range(100):
        if await display_name() == "Renamed Person":
            break
        await asyncio.sleep(0.1)
    assert await display_name() == "Renamed Person"
    group = await rooms.room(newcomer, members=[owner])
    await rooms.users.publish("user_deleted", newcomer)
    await rooms.users.publish("user_deleted", newcomer)
    left = await rooms.events.wait_for(
        "member_left", lambda p: p["user"]["id"] == newcomer["id"], count=2)
    assert {p["room_id"] for p in left} == {direct["id"], group["id"]}
    await asyncio.sleep(0.5)
    assert len(rooms.events.of("member_left", lambda p: p["user"]["id"] == newcomer["id"])) == 2
    assert await rooms.call("room_ids_for_user", newcomer["id"]) == []
    assert (await rooms.call("get_room", owner["id"], group["id"]))["owner_id"] == owner["id"]
    # a late user_registered redelivery does not resurrect the deleted user
    await rooms.users.publish("user_registered", newcomer)
    await asyncio.sleep(0.5)
    error = await rooms.error("add_member", owner["id"], group["id"], newcomer["id"])
    assert error.code == "not_found"
    # a user auth knows but whose event has not arrived is fetched on demand (auth.get_users)
    early = rooms.users.profile("early")
    rooms.users.known[early["id"]] = early
    rooms.users._save()
    result = await rooms.call("open_direct", owner["id"], early["id"])
    assert result["created"] is True and result["room"]["member_count"] == 2


async def test_ping_answers_for_readiness(rooms):
    assert await rooms.call("ping") == "pong"

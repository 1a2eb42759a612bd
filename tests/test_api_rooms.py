"""Public REST contract, rooms and messages: CRUD, join/leave, members, mute, direct rooms,
posting (idempotent by client_id), history paging, edit/delete, read state, conversations,
and the visibility rules (private 404, public-not-joined 403)."""
from __future__ import annotations

from helpers import new_user, unique


async def make_room(client, kind="public", **extra) -> dict:
    reply = await client.post("/api/v1/rooms", {"name": unique("room"), "kind": kind, **extra})
    assert reply.status == 201, reply
    return reply.body["room"]


async def test_room_crud_and_validation(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    name = unique("Lobby")
    created = await alice.post("/api/v1/rooms", {"name": f"  {name} ", "kind": "public",
                                                 "topic": "hello"})
    assert created.status == 201, created
    room = created.body["room"]
    assert room["name"] == name and room["kind"] == "public" and room["owner_id"] == alice.id
    assert room["member_count"] == 1 and room["last_seq"] == 0 and room["topic"] == "hello"
    assert set(room) >= {"id", "created_at", "last_activity_at"}

    clash = await bob.post("/api/v1/rooms", {"name": name.lower(), "kind": "public"})
    assert clash.status == 409 and clash.error["code"] == "room_exists", clash

    bad = await alice.post("/api/v1/rooms", {"name": "   ", "kind": "secret", "topic": 5,
                                             "member_ids": "bob"})
    assert bad.status == 422, bad
    assert set(bad.error["details"]) == {"name", "kind", "topic", "member_ids"}
    long_name = await alice.post("/api/v1/rooms", {"name": "n" * 65, "kind": "public"})
    assert long_name.status == 422 and "name" in long_name.error["details"]

    fetched = await bob.get(f"/api/v1/rooms/{room['id']}")
    assert fetched.status == 200 and fetched.body["room"]["id"] == room["id"]

    not_owner = await bob.patch(f"/api/v1/rooms/{room['id']}", {"topic": "mine now"})
    assert not_owner.status == 403 and not_owner.error["code"] == "forbidden"
    renamed = await alice.patch(f"/api/v1/rooms/{room['id']}", {"name": name + "x", "topic": "t2"})
    assert renamed.status == 200 and renamed.body["room"]["name"] == name + "x"
    assert renamed.body["room"]["topic"] == "t2"

    assert (await bob.delete(f"/api/v1/rooms/{room['id']}")).status == 403
    assert (await alice.delete(f"/api/v1/rooms/{room['id']}")).status == 204
    assert (await alice.get(f"/api/v1/rooms/{room['id']}")).status == 404


async def test_list_rooms_scopes_search_and_paging(suite, http):
    alice = await new_user(http, suite.url)
    stem = unique("list")
    rooms = [(await alice.post("/api/v1/rooms", {"name": f"{stem}-{i}", "kind": "public"})).body["room"]
             for i in range(3)]
    private = await make_room(alice, "private")

    seen, cursor = [], None
    while True:
        path = f"/api/v1/rooms?scope=public&q={stem}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await alice.get(path)
        assert page.status == 200, page
        assert len(page.body["rooms"]) <= 2
        seen += [room["id"] for room in page.body["rooms"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(room["id"] for room in rooms)

    joined = await alice.get("/api/v1/rooms?scope=joined&limit=100")
    joined_ids = {room["id"] for room in joined.body["rooms"]}
    assert private["id"] in joined_ids and rooms[0]["id"] in joined_ids
    public = await alice.get(f"/api/v1/rooms?scope=public&q={stem}")
    assert private["id"] not in {room["id"] for room in public.body["rooms"]}

    bad = await alice.get("/api/v1/rooms?scope=everything&limit=1000")
    assert bad.status == 422 and set(bad.error["details"]) == {"scope", "limit"}
    bad_cursor = await alice.get("/api/v1/rooms?scope=public&cursor=garbage")
    assert bad_cursor.status == 422 and "cursor" in bad_cursor.error["details"]


async def test_join_leave_members_mute_and_visibility(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    carol = await new_user(http, suite.url)
    public = await make_room(alice, "public")
    private = await make_room(alice, "private", member_ids=[bob.id])
    rid, pid = public["id"], private["id"]

    # A public room you have not joined: visible, but no posting or history (403).
    assert (await carol.get(f"/api/v1/rooms/{rid}")).status == 200
    for reply in (await carol.post(f"/api/v1/rooms/{rid}/messages", {"text": "hi"}),
                  await carol.get(f"/api/v1/rooms/{rid}/messages")):
        assert reply.status == 403 and reply.error["code"] == "forbidden", reply

    # A private room you are not in does not exist for you (404), whatever you try.
    for reply in (await carol.get(f"/api/v1/rooms/{pid}"),
                  await carol.get(f"/api/v1/rooms/{pid}/messages"),
                  await carol.get(f"/api/v1/rooms/{pid}/members"),
                  await carol.post(f"/api/v1/rooms/{pid}/messages", {"text": "hi"}),
                  await carol.post(f"/api/v1/rooms/{pid}/join")):
        assert reply.status == 404 and reply.error["code"] == "not_found", reply

    joined = await carol.post(f"/api/v1/rooms/{rid}/join")
    assert joined.status == 200 and joined.body["room"]["member_count"] == 2
    members = await carol.get(f"/api/v1/rooms/{rid}/members")
    assert members.status == 200, members
    by_id = {m["user"]["id"]: m for m in members.body["members"]}
    assert set(by_id) == {alice.id, carol.id}
    assert by_id[alice.id]["role"] == "owner" and by_id[carol.id]["role"] == "member"
    assert all(m["online"] is False for m in members.body["members"])  # nobody has a socket
    assert all("email" not in m["user"] for m in members.body["members"])
    assert {"joined_at", "last_read_seq"} <= set(by_id[carol.id])

    left = await carol.post(f"/api/v1/rooms/{rid}/leave")
    assert left.status == 204, left
    assert (await carol.get(f"/api/v1/rooms/{rid}/messages")).status == 403

    # Members of a private room may add others.
    added = await bob.post(f"/api/v1/rooms/{pid}/members", {"user_id": carol.id})
    assert added.status == 200 and added.body["room"]["member_count"] == 3, added
    assert (await carol.get(f"/api/v1/rooms/{pid}")).status == 200
    bad_add = await bob.post(f"/api/v1/rooms/{pid}/members", {"user_id": 7})
    assert bad_add.status == 422 and "user_id" in bad_add.error["details"]

    muted = await carol.put(f"/api/v1/rooms/{pid}/mute", {"muted": True})
    assert muted.status == 200 and muted.body == {"room_id": pid, "muted": True}, muted
    bad_mute = await carol.put(f"/api/v1/rooms/{pid}/mute", {"muted": "yes"})
    assert bad_mute.status == 422 and "muted" in bad_mute.error["details"]


async def test_members_online_flag_follows_the_cache(suite, http):
    import redis

    alice = await new_user(http, suite.url)
    room = await make_room(alice, "public")
    cache = redis.Redis.from_url(suite.isolation.redis_url)
    key = f"{suite.isolation.redis_prefix}user:{alice.id}:conns"
    cache.hset(key, "test-conn", "test-instance")
    try:
        members = await alice.get(f"/api/v1/rooms/{room['id']}/members")
        assert members.body["members"][0]["online"] is True
    finally:
        cache.delete(key)
    members = await alice.get(f"/api/v1/rooms/{room['id']}/members")
    assert members.body["members"][0]["online"] is False


async def test_direct_rooms_are_one_per_pair(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    first = await alice.post("/api/v1/rooms/direct", {"user_id": bob.id})
    assert first.status == 201 and first.body["created"] is True, first
    assert first.body["room"]["kind"] == "direct"
    again = await bob.post("/api/v1/rooms/direct", {"user_id": alice.id})
    assert again.status == 200 and again.body["created"] is False
    assert again.body["room"]["id"] == first.body["room"]["id"]
    nobody = await alice.post("/api/v1/rooms/direct", {"user_id": "nosuchuser"})
    assert nobody.status in (404, 422), nobody
    missing = await alice.post("/api/v1/rooms/direct", {})
    assert missing.status == 422 and set(missing.error["details"]) == {"user_id"}


async def test_post_is_idempotent_by_client_id(suite, http):
    alice = await new_user(http, suite.url)
    room = await make_room(alice)
    path = f"/api/v1/rooms/{room['id']}/messages"
    first = await alice.post(path, {"text": "hello", "client_id": "c-1"})
    assert first.status == 201, first
    message = first.body["message"]
    assert message["seq"] == 1 and message["text"] == "hello" and message["client_id"] == "c-1"
    assert message["author"]["id"] == alice.id and message["deleted"] is False
    assert message["room_id"] == room["id"] and message["edited_at"] is None

    repeat = await alice.post(path, {"text": "hello again?", "client_id": "c-1"})
    assert repeat.status == 200 and repeat.body["message"]["id"] == message["id"]
    assert repeat.body["message"]["text"] == "hello"

    generated = await alice.post(path, {"text": "no client id"})
    assert generated.status == 201 and generated.body["message"]["client_id"]
    assert generated.body["message"]["seq"] == 2

    bad = await alice.post(path, {"text": "   ", "client_id": ""})
    assert bad.status == 422 and set(bad.error["details"]) == {"text", "client_id"}
    too_long = await alice.post(path, {"text": "x" * 4001})
    assert too_long.status == 422 and "text" in too_long.error["details"]
    fits = await alice.post(path, {"text": "y" * 4000})
    assert fits.status == 201


async def test_history_paging(suite, http):
    alice = await new_user(http, suite.url)
    room = await make_room(alice)
    path = f"/api/v1/rooms/{room['id']}/messages"
    for i in range(1, 8):
        assert (await alice.post(path, {"text": f"m{i}", "client_id": f"h{i}"})).status == 201

    newest = await alice.get(path + "?limit=3")
    assert newest.status == 200, newest
    assert [m["seq"] for m in newest.body["messages"]] == [5, 6, 7]
    assert newest.body["has_more"] is True
    older = await alice.get(path + "?limit=3&before_seq=5")
    assert [m["seq"] for m in older.body["messages"]] == [2, 3, 4]
    oldest = await alice.get(path + "?limit=3&before_seq=2")
    assert [m["seq"] for m in oldest.body["messages"]] == [1] and oldest.body["has_more"] is False
    after = await alice.get(path + "?after_seq=5")
    assert [m["seq"] for m in after.body["messages"]] == [6, 7]

    bad = await alice.get(path + "?before_seq=-1&after_seq=x&limit=0")
    assert bad.status == 422 and set(bad.error["details"]) == {"before_seq", "after_seq", "limit"}


async def test_edit_and_delete_rules(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    room = await make_room(alice)
    assert (await bob.post(f"/api/v1/rooms/{room['id']}/join")).status == 200
    path = f"/api/v1/rooms/{room['id']}/messages"
    bobs = (await bob.post(path, {"text": "bob's"})).body["message"]
    alices = (await alice.post(path, {"text": "alice's"})).body["message"]

    edited = await bob.patch(f"{path}/{bobs['id']}", {"text": "bob's, edited"})
    assert edited.status == 200 and edited.body["message"]["text"] == "bob's, edited"
    assert edited.body["message"]["edited_at"] is not None
    assert (await alice.patch(f"{path}/{bobs['id']}", {"text": "nope"})).status == 403
    assert (await bob.delete(f"{path}/{alices['id']}")).status == 403
    empty_edit = await bob.patch(f"{path}/{bobs['id']}", {"text": ""})
    assert empty_edit.status == 422 and "text" in empty_edit.error["details"]

    # The owner may delete anyone's message; it keeps its id and seq, text becomes "".
    assert (await alice.delete(f"{path}/{bobs['id']}")).status == 204
    assert (await bob.delete(f"{path}/{alices['id']}")).status == 403
    history = await bob.get(path)
    deleted = next(m for m in history.body["messages"] if m["id"] == bobs["id"])
    assert deleted["deleted"] is True and deleted["text"] == "" and deleted["seq"] == bobs["seq"]
    assert (await alice.delete(f"{path}/nosuchmessage")).status == 404


async def test_read_state_and_conversations(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    quiet = await make_room(alice)
    room = await make_room(alice)
    rid = room["id"]
    assert (await bob.post(f"/api/v1/rooms/{rid}/join")).status == 200
    path = f"/api/v1/rooms/{rid}/messages"
    for i in range(3):
        await alice.post(path, {"text": f"a{i}"})
    own = await bob.post(path, {"text": "bob writes"})  # seq 4: bob has read up to here
    assert own.body["message"]["seq"] == 4
    await alice.post(path, {"text": "a3"})              # seq 5
    fifth_then_deleted = (await alice.post(path, {"text": "oops"})).body["message"]  # seq 6
    await alice.delete(f"{path}/{fifth_then_deleted['id']}")

    state = await bob.post(f"/api/v1/rooms/{rid}/read", {"seq": 2})  # backwards: ignored
    assert state.status == 200, state
    assert state.body == {"room_id": rid, "last_read_seq": 4, "unread_count": 1,
                          "mention_count": 0}
    bobs_view = await bob.get("/api/v1/conversations")
    mine = next(c for c in bobs_view.body["conversations"] if c["room"]["id"] == rid)
    assert mine["unread_count"] == 1 and mine["last_message"]["seq"] == 6
    ahead = await bob.post(f"/api/v1/rooms/{rid}/read", {"seq": 99})  # capped at last_seq
    assert ahead.body["last_read_seq"] == 6 and ahead.body["unread_count"] == 0
    bad = await bob.post(f"/api/v1/rooms/{rid}/read", {"seq": "5"})
    assert bad.status == 422 and "seq" in bad.error["details"]

    conversations = await alice.get("/api/v1/conversations?limit=10")
    assert conversations.status == 200, conversations
    items = conversations.body["conversations"]
    assert [c["room"]["id"] for c in items][:2] == [rid, quiet["id"]]  # newest activity first
    first = items[0]
    assert first["unread_count"] == 0  # alice's own post moved her read marker past bob's
    assert first["muted"] is False and first["last_message"]["seq"] == 6
    assert "next_cursor" in conversations.body
    page = await alice.get("/api/v1/conversations?limit=1")
    assert len(page.body["conversations"]) == 1 and page.body["next_cursor"]
    rest = await alice.get(f"/api/v1/conversations?limit=1&cursor={page.body['next_cursor']}")
    assert rest.body["conversations"][0]["room"]["id"] == quiet["id"]

"""The developer default (`make run`): one replica on a SQLite file. PostgreSQL has its own
post batch statement; this covers the portable path end to end. Own vhost, so this replica
never shares the rpc-rooms queue with the PostgreSQL replicas of the other tests."""
from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import pytest_asyncio

from parley_common import bus
from parley_common.rpc import AsyncRpcClient
from parley_common.testing import RUN_ID, Proc, queue_consumers, wait_until


@pytest_asyncio.fixture(scope="module")
async def sqlite_rooms(isolation):
    vhost = f"parley-t{RUN_ID}-sqlite"
    amqp_uri = isolation.servers.create_vhost(vhost)
    var_dir = isolation.workdir / "sqlite-var"
    env = isolation.env(AMQP_URI=amqp_uri, PARLEY_VAR_DIR=str(var_dir), LOG_SHIP="0",
                        RPC_TIMEOUT_SECONDS="2")
    proc = Proc("rooms-sqlite", "parley_rooms", env, isolation.workdir).start()
    client = AsyncRpcClient(amqp_uri, caller="rooms-sqlite-tests", timeout=15)
    try:
        wait_until(lambda: queue_consumers(amqp_uri, "rpc-rooms") >= 1, 60,
                   what="sqlite replica serving", proc=proc)
        await client.start()
        connection = await aio_pika.connect_robust(amqp_uri)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(bus.AUTH_EVENTS, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        yield client, exchange, var_dir
        await connection.close()
    finally:
        await client.close()
        proc.stop()
        isolation.servers.delete_vhost(vhost)


async def test_sqlite_replica_end_to_end(sqlite_rooms):
    client, auth_events, var_dir = sqlite_rooms
    people = [{"id": uuid.uuid4().hex, "username": f"lite{n}", "display_name": f"Lite {n}",
               "avatar_url": None, "created_at": "2026-11-22T10:00:00.000Z"} for n in range(2)]
    for person in people:
        await auth_events.publish(aio_pika.Message(json.dumps({"user": person}).encode(),
                                                   content_type="application/json"),
                                  routing_key="user_registered")
    alice, bob = people

    async def create(name):
        for _ in range(100):  # until the replica has taken in the events
            try:
                return await client.call("rooms", "create_room", alice["id"], name, "private",
                                         member_ids=[bob["id"]])
            except Exception as exc:
                if getattr(exc, "code", None) not in {"not_found", "unavailable"}:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("users never arrived")

    first, second = await create("first"), await create("second")
    assert (var_dir / "rooms.db").exists()
    posted = [await client.call("rooms", "post_message", bob["id"], first["id"], f"m{n}", f"c{n}")
              for n in range(3)]
    assert [reply["message"]["seq"] for reply in posted] == [1, 2, 3]
    repeat = await client.call("rooms", "post_message", bob["id"], first["id"], "m0", "c0")
    assert repeat["created"] is False and repeat["message"]["seq"] == 1
    batch = await client.call("rooms", "post_messages", [
        {"user_id": bob["id"], "room_id": first["id"], "text": "b1", "client_id": "b1"},
        {"user_id": bob["id"], "room_id": first["id"], "text": "m1", "client_id": "c1"},
        {"user_id": "stranger", "room_id": first["id"], "text": "no", "client_id": "s1"},
        {"user_id": bob["id"], "room_id": first["id"], "text": "b1", "client_id": "b1"},
    ])
    assert batch[0]["created"] is True and batch[0]["message"]["seq"] == 4
    assert batch[1] == {"message": posted[1]["message"], "created": False}
    assert batch[2]["error"]["code"] == "not_found"
    assert batch[3] == {"message": batch[0]["message"], "created": False}
    page = await client.call("rooms", "list_messages", alice["id"], first["id"], before_seq=3, limit=1)
    assert [m["seq"] for m in page["messages"]] == [2] and page["has_more"] is True
    read = await client.call("rooms", "mark_read", alice["id"], first["id"], 2)
    assert read == {"room_id": first["id"], "last_read_seq": 2, "unread_count": 2,
                    "mention_count": 0}
    await client.call("rooms", "post_message", alice["id"], second["id"], "newest", "x1")
    conversations = await client.call("rooms", "list_conversations", bob["id"], limit=1)
    assert conversations["conversations"][0]["room"]["id"] == second["id"]
    rest = await client.call("rooms", "list_conversations", bob["id"], limit=1,
                             cursor=conversations["next_cursor"])
    assert rest["conversations"][0]["room"]["id"] == first["id"] and rest["next_cursor"] is None
    assert rest["conversations"][0]["last_message"]["seq"] == 4
    # Message search on FTS5 (migration 0005's table and triggers), through the RPC.
    found = await client.call("rooms", "search_messages", alice["id"], "M1", limit=5)
    assert [r["message"]["seq"] for r in found["results"]] == [2] and found["next_cursor"] is None
    assert found["results"][0]["snippet"] == [{"text": "m1", "match": True}]
    assert (await client.call("rooms", "search_messages", alice["id"], "newest",
                              room_id=first["id"]))["results"] == []

    # Replies and reactions on the portable path.
    reply = await client.call("rooms", "post_message", bob["id"], first["id"], "re", "x2",
                              reply_to=posted[0]["message"]["id"])
    assert reply["message"]["reply_to"]["excerpt"] == "m0" and reply["message"]["seq"] == 5
    refused = await client.call("rooms", "post_messages", [
        {"user_id": bob["id"], "room_id": second["id"], "text": "no", "client_id": "x3",
         "reply_to": posted[0]["message"]["id"]}])
    assert refused[0]["error"]["code"] == "validation_failed"
    for _ in range(2):
        reacted = await client.call("rooms", "add_reaction", alice["id"], first["id"],
                                    reply["message"]["id"], "👍")
    assert reacted["reactions"] == [{"emoji": "👍", "count": 1, "me": True}]
    page = await client.call("rooms", "list_messages", bob["id"], first["id"], after_seq=4)
    assert page["messages"][0]["reactions"] == [{"emoji": "👍", "count": 1, "me": False}]
    assert page["messages"][0]["reply_to"]["id"] == posted[0]["message"]["id"]
    direct = await client.call("rooms", "open_direct", alice["id"], bob["id"])
    assert direct["created"] is True
    assert (await client.call("rooms", "open_direct", bob["id"], alice["id"]))["created"] is False
    await client.call("rooms", "delete_room", alice["id"], first["id"])
    assert (await client.call("rooms", "search_messages", bob["id"], "m1"))["results"] == []
    assert sorted(await client.call("rooms", "room_ids_for_user", bob["id"])) == sorted(
        [second["id"], direct["room"]["id"]])

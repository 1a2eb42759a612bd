"""Fixtures of the rooms tests: three real `python -m parley_rooms` replicas on one fresh
PostgreSQL database and the test run's own RabbitMQ vhost, an RPC client, a recorder of
rooms.events, and users created the way production creates them (auth.events)."""
from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import psycopg2
import pytest
import pytest_asyncio

from parley_common import bus
from parley_common.errors import ParleyError
from parley_common.rpc import AsyncRpcClient
from parley_common.testing import Proc, queue_consumers, wait_until

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def isolation(isolation):
    """This service's tests run their own rooms process: give them a vhost of their own, away
    from the session-wide suite's rooms, which would otherwise answer some of their calls."""
    with isolation.child("rooms-tests") as own:
        yield own


REPLICAS = 3


class Users:
    """Users "registered in auth": written where the auth stand-in answers get_users from,
    and announced with a user_registered event like auth does."""

    def __init__(self, path: Path, exchange):
        self.path = path
        self.exchange = exchange
        self.known: dict[str, dict] = {}

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.known))
        os.replace(tmp, self.path)

    def profile(self, name: str | None = None) -> dict:
        name = name or "u" + uuid.uuid4().hex[:10]
        return {"id": uuid.uuid4().hex, "username": name, "display_name": name.title(),
                "avatar_url": None, "created_at": "2026-11-22T10:00:00.000Z"}

    async def publish(self, event_type: str, user: dict) -> None:
        await self.exchange.publish(
            aio_pika.Message(json.dumps({"user": user}).encode(), content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=event_type)

    async def create(self, name: str | None = None, *, in_auth: bool = True) -> dict:
        user = self.profile(name)
        if in_auth:
            self.known[user["id"]] = user
            self._save()
        await self.publish("user_registered", user)
        return user


class Events:
    """Every rooms.events message seen by one exclusive queue bound with '#'."""

    def __init__(self):
        self.seen: list[tuple[str, dict]] = []

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.seen.append((message.routing_key, json.loads(message.body)))

    def of(self, event_type: str, predicate=lambda payload: True) -> list[dict]:
        return [payload for kind, payload in self.seen if kind == event_type and predicate(payload)]

    async def wait_for(self, event_type: str, predicate=lambda payload: True, timeout: float = 10,
                       count: int = 1) -> list[dict]:
        return await self._wait(lambda: self.of(event_type, predicate), event_type, timeout,
                                count)

    def posted(self, predicate=lambda item: True) -> list[dict]:
        """The posted messages of every messages_posted event, one ``{message, member_ids,
        event}`` each (``event``: the index of the event that carried it)."""
        return [item for index, (kind, payload) in enumerate(self.seen)
                if kind == "messages_posted"
                for item in ({"message": message, "event": index,
                              "member_ids": payload["member_ids"][message["room_id"]]}
                             for message in payload["messages"])
                if predicate(item)]

    async def wait_for_posted(self, predicate=lambda item: True, timeout: float = 10,
                              count: int = 1) -> list[dict]:
        return await self._wait(lambda: self.posted(predicate), "posted message", timeout, count)

    async def _wait(self, find, what: str, timeout: float, count: int) -> list[dict]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = find()
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {count} x {what} within {timeout}s; "
                             f"seen: {[kind for kind, _ in self.seen][-20:]}")


class Rooms:
    """What a test needs: the RPC client, users, events, and the database for checks."""

    def __init__(self, client: AsyncRpcClient, users: Users, events: Events, database_url: str,
                 procs: list[Proc]):
        self.client, self.users, self.events, self.procs = client, users, events, procs
        parts = urlsplit(database_url)
        self.dsn = f"postgresql://{parts.netloc}{parts.path}"

    async def call(self, method: str, *args, **kwargs):
        return await self.client.call("rooms", method, *args, timeout=15, **kwargs)

    async def error(self, method: str, *args, **kwargs) -> ParleyError:
        """The ParleyError a call raises (fails the test if it succeeds)."""
        try:
            result = await self.call(method, *args, **kwargs)
        except ParleyError as exc:
            return exc
        raise AssertionError(f"{method} succeeded unexpectedly: {result!r}")

    def sql(self, query: str, *params):
        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    async def user(self, name: str | None = None) -> dict:
        return await self.users.create(name)

    async def room(self, owner: dict, kind: str = "private", members=(), name=None) -> dict:
        name = name or "room-" + uuid.uuid4().hex[:8]
        return await self.call("create_room", owner["id"], name, kind,
                               member_ids=[member["id"] for member in members])

    async def post(self, author: dict, room: dict, text: str = "hello", client_id=None) -> dict:
        reply = await self.call("post_message", author["id"], room["id"], text,
                                client_id or uuid.uuid4().hex)
        return reply["message"]


@pytest.fixture(scope="session")
def rooms_database(isolation) -> str:
    return isolation.database_url("rooms")


@pytest.fixture(scope="session")
def rooms_procs(isolation, rooms_database):
    users_file = isolation.workdir / "standin-auth-users.json"
    users_file.write_text("{}")
    env = isolation.env(DATABASE_URL=rooms_database, RPC_TIMEOUT_SECONDS="3", LOG_SHIP="0",
                        STANDIN_USERS_FILE=str(users_file), OUTBOX_RELAY_SECONDS="0.5")
    standin_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))}
    standin = Proc("standin-auth", "standin_auth", standin_env, isolation.workdir).start()
    # The first replica migrates alone, so the others never race on an empty database.
    procs = [Proc("rooms-1", "parley_rooms", {**env, "INSTANCE_ID": "rooms-1"}, isolation.workdir).start()]
    wait_until(lambda: queue_consumers(isolation.amqp_uri, "rpc-rooms") >= 1, 60,
               what="rooms-1 consuming rpc-rooms", proc=procs[0])
    for index in range(2, REPLICAS + 1):
        procs.append(Proc(f"rooms-{index}", "parley_rooms", {**env, "INSTANCE_ID": f"rooms-{index}"},
                          isolation.workdir).start())
    wait_until(lambda: queue_consumers(isolation.amqp_uri, "rpc-rooms") >= REPLICAS, 60,
               what="all rooms replicas consuming rpc-rooms", proc=procs[-1])
    wait_until(lambda: queue_consumers(isolation.amqp_uri, "rpc-auth") >= 1, 60,
               what="auth stand-in consuming rpc-auth", proc=standin)
    yield {"procs": procs, "users_file": users_file, "standin": standin}
    for proc in [*procs, standin]:
        proc.stop()


@pytest_asyncio.fixture(scope="session")
async def rooms(isolation, rooms_procs, rooms_database):
    client = AsyncRpcClient(isolation.amqp_uri, caller="rooms-tests", timeout=15)
    await client.start()
    connection = await aio_pika.connect_robust(isolation.amqp_uri)
    channel = await connection.channel()
    auth_events = await channel.declare_exchange(bus.AUTH_EVENTS, aio_pika.ExchangeType.TOPIC,
                                                 durable=True)
    rooms_events = await channel.declare_exchange(bus.ROOMS_EVENTS, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
    events = Events()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(rooms_events, routing_key="#")
    await queue.consume(events.on_message, no_ack=True)
    harness = Rooms(client, Users(rooms_procs["users_file"], auth_events), events, rooms_database,
                    rooms_procs["procs"])
    harness.amqp_uri = isolation.amqp_uri
    yield harness
    await client.close()
    await connection.close()

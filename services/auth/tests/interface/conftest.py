"""Fixtures of the auth tests: the real `python -m parley_auth` process on the run's own
vhost and PostgreSQL database, an RPC client, an observer of auth.events, direct DB access."""
from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aio_pika
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from parley_common import bus
from parley_common.rpc import AsyncRpcClient
from parley_common.testing import Proc, queue_consumers, wait_until


@pytest.fixture(scope="session")
def isolation(isolation):
    """This service's tests run their own auth process: give them a vhost of their own, away
    from the session-wide suite's auth, which would otherwise answer some of their calls."""
    with isolation.child("auth-tests") as own:
        yield own


def write_private_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


class AuthProcess:
    """The one auth process of the run. ``restart(**env)`` swaps it for one with a changed
    configuration (same database, same queue), ``restart()`` goes back to the base one."""

    def __init__(self, isolation, base_env: dict):
        self.isolation = isolation
        self.base_env = base_env
        self.proc: Proc | None = None
        self.generation = 0

    def start(self, **extra: str) -> None:
        self.generation += 1
        self.proc = Proc(f"auth-{self.generation}", "parley_auth",
                         {**self.base_env, **extra}, self.isolation.workdir).start()
        wait_until(lambda: queue_consumers(self.isolation.amqp_uri, "rpc-auth") > 0, 60,
                   what="auth consuming rpc-auth", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            wait_until(lambda: queue_consumers(self.isolation.amqp_uri, "rpc-auth") == 0, 15,
                       what="old auth consumer gone")

    def restart(self, **extra: str) -> None:
        self.stop()
        self.start(**extra)


@pytest.fixture(scope="session")
def auth_keyfile(isolation) -> Path:
    path = isolation.workdir / "auth-jwt-ed25519.pem"
    write_private_key(path)
    return path


@pytest.fixture(scope="session")
def auth_database_url(isolation) -> str:
    return isolation.database_url("auth")


@pytest.fixture(scope="session")
def auth(isolation, auth_keyfile, auth_database_url):
    env = isolation.env(DATABASE_URL=auth_database_url, JWT_PRIVATE_KEY_FILE=str(auth_keyfile),
                        ARGON2_TIME_COST="1", ARGON2_MEMORY_COST="8192",
                        ARGON2_PARALLELISM="1", INSTANCE_ID="auth-test",
                        OUTBOX_RELAY_SECONDS="0.5",
                        # Bursts of registrations here test other things: let hashes queue
                        # rather than be shed on a busy machine (shedding: tests/security).
                        AUTH_HASH_WAIT_SECONDS="10")
    process = AuthProcess(isolation, env)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def auth_db(auth_database_url, auth):
    engine = create_engine(auth_database_url)
    yield engine
    engine.dispose()


@pytest_asyncio.fixture(scope="session")
async def rpc(isolation, auth):
    client = AsyncRpcClient(isolation.amqp_uri, caller="auth-tests", timeout=10)
    await client.start()
    yield client
    await client.close()


class EventLog:
    """Every message published on auth.events while the test session runs."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    async def wait_for(self, predicate, timeout: float = 5.0) -> tuple[str, dict]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if predicate(*event):
                    return event
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching event on auth.events; saw {self.events[-10:]}")
            await asyncio.sleep(0.05)

    def matching(self, predicate) -> list[tuple[str, dict]]:
        return [event for event in self.events if predicate(*event)]


@pytest_asyncio.fixture(scope="session")
async def auth_events(isolation, auth):
    connection = await aio_pika.connect_robust(isolation.amqp_uri)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(bus.AUTH_EVENTS, aio_pika.ExchangeType.TOPIC,
                                              durable=True)
    queue = await channel.declare_queue(f"auth-tests-{uuid.uuid4().hex}", exclusive=True,
                                        auto_delete=True)
    await queue.bind(exchange, routing_key="#")
    log = EventLog()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        log.events.append((message.routing_key, json.loads(message.body)))

    await queue.consume(on_message, no_ack=True)
    yield log
    await connection.close()


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


PASSWORD = "correct horse battery"


@pytest.fixture
def new_user(rpc):
    """Registers a fresh user: ``await new_user(display_name=...)`` -> (self user, password)."""

    async def register(**overrides):
        username = overrides.pop("username", unique())
        fields = {"email": f"{username}@example.com", "password": PASSWORD, **overrides}
        user = await rpc.call("auth", "register", username, fields.pop("email"),
                              fields.pop("password"), **fields)
        return user

    return register


@pytest.fixture
def logged_in(rpc, new_user):
    """``await logged_in()`` -> (user, login reply) for a fresh user."""

    async def make(**overrides):
        user = await new_user(**overrides)
        reply = await rpc.call("auth", "login", user["username"], PASSWORD, user_agent="pytest")
        return user, reply

    return make


@pytest.fixture
def fresh():
    """``fresh("prefix")`` -> a username nobody else in the run uses."""
    return unique


@pytest.fixture
def password():
    return PASSWORD

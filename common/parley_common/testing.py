"""pytest plugin: every test run gets its own RabbitMQ vhost, PostgreSQL databases and Redis
key prefix, and can start the real Parley processes against them.

Servers come from PARLEY_TEST_AMQP_URI / PARLEY_TEST_POSTGRES_URL / PARLEY_TEST_REDIS_URL,
else the local defaults; where those do not answer and a Docker engine does, testcontainers
starts them. Everything the run created is removed at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

RUN_ID = uuid.uuid4().hex[:8]
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with closing(socket.create_connection((parts.hostname, parts.port or default_port), 2)):
            return True
    except OSError:
        return False


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Servers:
    amqp_base: str
    postgres_admin: str
    redis_url: str
    rabbit_container: object = None
    containers: list = field(default_factory=list)

    # --- RabbitMQ vhosts -------------------------------------------------------------
    def _rabbitmqctl(self, *args: str) -> None:
        if self.rabbit_container is not None:
            code, out = self.rabbit_container.exec(["rabbitmqctl", *args])
            if code != 0:
                raise RuntimeError(out)
            return
        if shutil.which("rabbitmqctl") is None:
            raise RuntimeError("test isolation needs rabbitmqctl (or set PARLEY_TEST_AMQP_URI "
                               "to a broker whose rabbitmqctl is on PATH)")
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def create_vhost(self, name: str) -> str:
        user = urlsplit(self.amqp_base).username or "guest"
        self._rabbitmqctl("add_vhost", name)
        self._rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        parts = urlsplit(self.amqp_base)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, ""))

    def delete_vhost(self, name: str) -> None:
        try:
            self._rabbitmqctl("delete_vhost", name)
        except Exception:
            pass

    # --- PostgreSQL databases --------------------------------------------------------
    def _admin(self):
        import psycopg2

        connection = psycopg2.connect(self.postgres_admin)
        connection.autocommit = True
        return connection

    def create_database(self, name: str) -> str:
        with closing(self._admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(self.postgres_admin)
        return urlunsplit(("postgresql+psycopg2", parts.netloc, "/" + name, parts.query, ""))

    def drop_database(self, name: str) -> None:
        with closing(self._admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        for container in self.containers:
            container.stop()


def _start_servers() -> Servers:
    amqp = os.environ.get("PARLEY_TEST_AMQP_URI", LOCAL_AMQP)
    postgres = os.environ.get("PARLEY_TEST_POSTGRES_URL", LOCAL_POSTGRES)
    redis_url = os.environ.get("PARLEY_TEST_REDIS_URL", LOCAL_REDIS)
    servers = Servers(amqp, postgres, redis_url)
    missing = [name for name, url, port in (("rabbitmq", amqp, 5672), ("postgres", postgres, 5432),
                                            ("redis", redis_url, 6379)) if not _reachable(url, port)]
    if not missing:
        return servers
    try:  # testcontainers only where a server is missing and a Docker engine answers
        import docker

        docker.from_env().ping()
    except Exception:
        pytest.exit(f"test servers unreachable: {', '.join(missing)}; start them (see README) "
                    "or set PARLEY_TEST_*_URL", returncode=3)
    if "rabbitmq" in missing:
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3-alpine").start()
        servers.containers.append(container)
        servers.rabbit_container = container
        servers.amqp_base = (f"amqp://guest:guest@{container.get_container_host_ip()}:"
                             f"{container.get_exposed_port(5672)}/")
    if "postgres" in missing:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None).start()
        servers.containers.append(container)
        servers.postgres_admin = container.get_connection_url()
    if "redis" in missing:
        from testcontainers.redis import RedisContainer

        container = RedisContainer("redis:7-alpine").start()
        servers.containers.append(container)
        servers.redis_url = (f"redis://{container.get_container_host_ip()}:"
                             f"{container.get_exposed_port(6379)}/0")
    return servers


@dataclass
class Isolation:
    """What one test run owns: a vhost, a Redis prefix, and (lazily) databases."""
    servers: Servers
    amqp_uri: str
    vhost: str
    redis_url: str
    redis_prefix: str
    workdir: Path
    databases: list = field(default_factory=list)

    def database_url(self, label: str) -> str:
        name = f"parley_t{RUN_ID}_{label}_{len(self.databases)}"
        url = self.servers.create_database(name)
        self.databases.append(name)
        return url

    @contextmanager
    def child(self, label: str):
        """An isolation of its own inside this run (own vhost, Redis prefix and workdir), for
        tests that start their own copy of a service: in the run's shared vhost the suite's
        copy would compete for the same RPC queue. Databases and Redis keys are removed with
        this run's."""
        vhost = f"{self.vhost}-{label}"
        amqp_uri = self.servers.create_vhost(vhost)
        workdir = self.workdir / label
        workdir.mkdir(exist_ok=True)
        try:
            yield Isolation(self.servers, amqp_uri, vhost, self.redis_url,
                            f"{self.redis_prefix}{label}:", workdir, self.databases)
        finally:
            self.servers.delete_vhost(vhost)

    def env(self, **extra: str) -> dict:
        base = {
            "AMQP_URI": self.amqp_uri,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            "PARLEY_VAR_DIR": str(self.workdir / "var"),
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "JWT_"))}
        env.update(base)
        env.update(extra)
        return env


@contextmanager
def isolated(workdir: Path):
    """An Isolation for one run (tests or a benchmark); removes everything it made."""
    servers = _start_servers()
    vhost = f"parley-t{RUN_ID}"
    amqp_uri = servers.create_vhost(vhost)
    iso = Isolation(servers, amqp_uri, vhost, servers.redis_url, f"parley-t{RUN_ID}:", workdir)
    try:
        yield iso
    finally:
        servers.delete_vhost(vhost)
        for name in iso.databases:
            try:
                servers.drop_database(name)
            except Exception:
                pass
        try:
            import redis

            client = redis.Redis.from_url(iso.redis_url)
            keys = list(client.scan_iter(match=iso.redis_prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        except Exception:
            pass
        servers.stop()


@pytest.fixture(scope="session")
def isolation(tmp_path_factory) -> Isolation:
    with isolated(tmp_path_factory.mktemp("parley")) as iso:
        yield iso


# --- real processes ---------------------------------------------------------------------

class Proc:
    """One Parley process (``python -m <module>``), its output kept in a file."""

    def __init__(self, name: str, module: str, env: dict, logdir: Path, args: tuple = ()):
        self.name, self.module, self.env, self.args = name, module, env, args
        self.logfile = logdir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        handle = open(self.logfile, "ab")
        self.popen = subprocess.Popen([sys.executable, "-m", self.module, *self.args],
                                      env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if not self.alive():
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait(5)

    def output(self, tail: int = 4000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict]:
        records = []
        for line in self.logfile.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
        return records


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition",
               proc: Proc | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited while waiting for {what}:\n{proc.output()}")
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    detail = f"\n--- {proc.name} output ---\n{proc.output()}" if proc is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def queue_consumers(amqp_uri: str, queue: str) -> int:
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    except Exception:
        return 0
    try:
        channel = connection.channel()
        return channel.queue_declare(queue, passive=True).method.consumer_count
    except Exception:
        return 0
    finally:
        if connection.is_open:
            connection.close()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


@dataclass
class Suite:
    """The whole suite running as real processes for one test session."""
    isolation: Isolation
    procs: dict
    gateway_urls: list
    env: dict

    @property
    def url(self) -> str:
        return self.gateway_urls[0]

    def start_gateway(self, name: str, env: dict | None = None) -> tuple[Proc, str]:
        """Start one more gateway; ``env`` overrides variables (e.g. WS_SEND_QUEUE)."""
        port = free_port()
        proc = Proc(name, "parley_gateway",
                    {**self.env, "PORT": str(port), "INSTANCE_ID": name, **(env or {})},
                    self.isolation.workdir).start()
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(url + "/healthz"), 30, what=f"{name} /healthz", proc=proc)
        self.procs[name] = proc
        return proc, url


def start_suite(iso: Isolation, gateways: int = 2, extra_env: dict | None = None) -> Suite:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keyfile = iso.workdir / "jwt-ed25519.pem"
    keyfile.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    # Tests and benchmarks register many accounts from 127.0.0.1, often at once: no
    # per-address limit on registrations, and hashes queue rather than being shed on a busy
    # machine, unless extra_env says otherwise (tests/security checks both limits).
    env = iso.env(JWT_PRIVATE_KEY_FILE=str(keyfile), RPC_TIMEOUT_SECONDS="5",
                  **{"REGISTRATIONS_PER_ADDRESS": "0", "AUTH_HASH_WAIT_SECONDS": "4",
                     "SWEEP_INTERVAL_SECONDS": "2", **(extra_env or {})})
    procs: dict[str, Proc] = {}
    try:
        for name, module, queue in (("logger", "parley_logger", "logs.archive"),
                                    ("auth", "parley_auth", "rpc-auth"),
                                    ("rooms", "parley_rooms", "rpc-rooms")):
            db_env = {**env, "DATABASE_URL": iso.database_url(name), "INSTANCE_ID": name}
            procs[name] = Proc(name, module, db_env, iso.workdir).start()
        for name, queue in (("logger", "logs.archive"), ("auth", "rpc-auth"),
                            ("rooms", "rpc-rooms")):
            wait_until(lambda q=queue: queue_consumers(iso.amqp_uri, q) > 0, 60,
                       what=f"{name} consuming {queue}", proc=procs[name])
        procs["cleaner"] = Proc("cleaner", "parley_cleaner", {**env, "INSTANCE_ID": "cleaner"},
                                iso.workdir).start()
        suite = Suite(iso, procs, [], env)
        for index in range(gateways):
            _, url = suite.start_gateway(f"gateway-{index + 1}")
            suite.gateway_urls.append(url)
    except BaseException:
        # A start that fails half-way (e.g. a gateway losing its port to another process on a
        # shared machine) must not leave the processes it did start running for ever.
        for proc in procs.values():
            proc.stop(timeout=5)
        raise
    return suite


SUITE_ADMIN = "suite_admin"  # an administrator by PARLEY_ADMINS in the suite


@pytest.fixture(scope="session")
def suite(isolation) -> Suite:
    """auth, rooms, logger, cleaner and two gateways, started once per test session."""
    # Cheap password hashing keeps the many registrations of the API tests fast; the auth
    # service's own tests cover the production parameters and re-hashing.
    # Every test connects from 127.0.0.1, so the per-address login limit is raised here; the
    # throttling tests run their own gateway with tight limits.
    running = start_suite(isolation, extra_env={"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192",
                                                "ARGON2_PARALLELISM": "1",
                                                "LOGIN_FAILURES_PER_ADDRESS": "500",
                                                # the admin console's tests log in as this one
                                                "PARLEY_ADMINS": SUITE_ADMIN})
    yield running
    for proc in reversed(list(running.procs.values())):
        proc.stop()

"""The whole Parley suite as real processes on the chaos suite's private servers: two
gateways, two rooms replicas and two auth replicas on PostgreSQL, the logger and the cleaner.

Processes are parley_common.testing.Proc objects; ``kill9(name)`` and ``restart(name)`` are
the process faults, ``healthy()`` the recovery check (every process up and serving)."""
from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from parley_common.private_servers import PrivatePostgres, PrivateRabbit, PrivateRedis
from parley_common.testing import Proc, free_port, http_ok, queue_consumers, wait_until


# Processes in start order: (name, module, database label or None, rpc queue it serves)
PROCESSES = (
    ("logger", "parley_logger", "logs", "logs.archive"),
    ("auth-1", "parley_auth", "auth", "rpc-auth"),
    ("rooms-1", "parley_rooms", "rooms", "rpc-rooms"),
    ("auth-2", "parley_auth", "auth", "rpc-auth"),
    ("rooms-2", "parley_rooms", "rooms", "rpc-rooms"),
    ("cleaner", "parley_cleaner", None, None),
)
GATEWAYS = ("gateway-1", "gateway-2")
QUEUES = {"rpc-auth": 2, "rpc-rooms": 2, "logs.archive": 1}


@dataclass
class Stack:
    workdir: Path
    rabbit: PrivateRabbit
    redis: PrivateRedis
    postgres: PrivatePostgres
    procs: dict = field(default_factory=dict)
    gateway_urls: list = field(default_factory=list)
    databases: dict = field(default_factory=dict)

    @property
    def amqp_uri(self) -> str:
        return self.rabbit.url

    def env(self) -> dict:
        keyfile = self.workdir / "jwt-ed25519.pem"
        if not keyfile.exists():
            keyfile.write_bytes(Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "JWT_"))}
        env.update({
            "AMQP_URI": self.rabbit.url, "REDIS_URL": self.redis.url, "REDIS_PREFIX": "chaos:",
            "PARLEY_VAR_DIR": str(self.workdir / "var"), "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1", "JWT_PRIVATE_KEY_FILE": str(keyfile),
            "RPC_TIMEOUT_SECONDS": "5", "SWEEP_INTERVAL_SECONDS": "2",
            "OUTBOX_RELAY_SECONDS": "1", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192",
            "ARGON2_PARALLELISM": "1", "LOGIN_FAILURES_PER_ADDRESS": "100000",
            "WRITE_RATE_PER_MINUTE": "100000",
        })
        return env

    def start(self) -> "Stack":
        env = self.env()
        for label in ("logs", "auth", "rooms"):
            self.databases[label] = self.postgres.database(f"parley_{label}")
        for name, module, db, queue in PROCESSES:
            proc_env = {**env, "INSTANCE_ID": name}
            if db:
                proc_env["DATABASE_URL"] = self.databases[db]
            self.procs[name] = Proc(name, module, proc_env, self.workdir).start()
            if name in ("auth-1", "rooms-1"):  # the first replica migrates alone
                wait_until(lambda q=queue: queue_consumers(self.amqp_uri, q) > 0, 120,
                           what=f"{name} consuming {queue}", proc=self.procs[name])
        for name in GATEWAYS:
            port = free_port()
            self.procs[name] = Proc(name, "parley_gateway",
                                    {**env, "PORT": str(port), "INSTANCE_ID": name},
                                    self.workdir).start()
            self.gateway_urls.append(f"http://127.0.0.1:{port}")
        wait_until(self.healthy, 120, interval=0.5, what="the whole stack healthy")
        return self

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop(timeout=10)

    # --- process faults -----------------------------------------------------------------
    def kill9(self, name: str) -> None:
        self.procs[name].kill()

    def restart(self, name: str) -> None:
        """Start a stopped or killed process again, as its supervisor would."""
        self.procs[name].start()

    # --- health -------------------------------------------------------------------------
    def unhealthy(self) -> list[str]:
        """What is not yet healthy: dead processes, gateways not ready, queues unserved."""
        bad = [name for name, proc in self.procs.items() if not proc.alive()]
        for name, url in zip(GATEWAYS, self.gateway_urls):
            if not http_ok(url + "/readyz"):
                bad.append(f"{name} /readyz")
        for queue, wanted in QUEUES.items():
            if queue_consumers(self.amqp_uri, queue) < wanted:
                bad.append(f"{queue} consumers < {wanted}")
        return bad

    def healthy(self) -> bool:
        return not self.unhealthy()

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until every process is healthy; AssertionError naming what is not."""
        started = time.monotonic()
        bad: list[str] = []
        while time.monotonic() - started < timeout:
            bad = self.unhealthy()
            if not bad:
                return time.monotonic() - started
            time.sleep(0.5)
        dead = "".join(f"\n--- {name} ---\n{proc.output(1500)}"
                       for name, proc in self.procs.items() if not proc.alive())
        raise AssertionError(f"not healthy {timeout}s after the fault: {bad}{dead}")

    def readyz(self, url: str) -> tuple[int, dict, float]:
        """(status, body, seconds) of one /readyz call."""
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=15) as response:
                return response.status, json.loads(response.read() or b"{}"), \
                    time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}"), time.monotonic() - started

"""Private RabbitMQ, Redis and PostgreSQL instances for a benchmark, in a temp dir, on their
own ports, optionally pinned to CPU cores (taskset), so that "the whole server side on one
core" can be measured on a machine whose shared servers must not be touched.

    with private_servers(workdir, cores="0", base_port=15500) as servers:
        servers.amqp_uri, servers.redis_url, servers.postgres_admin, servers.pids()

Needs redis-server, rabbitmq-server (Debian's package, run directly from
/usr/lib/rabbitmq/bin with its own node name, config, cookie and Mnesia dir) and PostgreSQL 15's
initdb/pg_ctl (run as the ``postgres`` user when started by root). Everything is stopped and
deleted at the end.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBIT_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with closing(socket.create_connection(("127.0.0.1", port), 1)):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def _pinned(cores: str | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cores, *argv] if cores else argv


def pids_of_tree(root_pids: list[int]) -> list[int]:
    """The given processes and all their descendants (postgres backends, beam's children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(root_pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


@dataclass
class PrivateServers:
    workdir: Path
    cores: str | None
    base_port: int
    procs: list = field(default_factory=list)
    roots: dict = field(default_factory=dict)  # name -> pid whose process tree is that server

    @property
    def redis_port(self) -> int:
        return self.base_port

    @property
    def postgres_port(self) -> int:
        return self.base_port + 1

    @property
    def amqp_port(self) -> int:
        return self.base_port + 2

    @property
    def rabbit_dist_port(self) -> int:
        return self.base_port + 3

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def postgres_admin(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/postgres"

    @property
    def rabbit_node(self) -> str:
        return f"parleybench{self.base_port}@localhost"

    def rabbit_env(self) -> dict:
        base = self.workdir / "rabbitmq"
        conf = base / "rabbitmq.conf"
        env_file = base / "rabbitmq-env.conf"
        return {**os.environ, "HOME": str(base), "RABBITMQ_NODENAME": self.rabbit_node,
                "RABBITMQ_CONFIG_FILE": str(conf.with_suffix("")),
                "RABBITMQ_CONF_ENV_FILE": str(env_file),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_ENABLED_PLUGINS": "",
                "RABBITMQ_DIST_PORT": str(self.rabbit_dist_port),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                # One scheduler, no busy waiting: the node shares its core with the rest.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1 +A 4 +sbwt none +sbwtdcpu none +sbwtdio none -kernel inet_dist_use_interface {127,0,0,1}"}

    # --- start --------------------------------------------------------------------------
    def start(self) -> None:
        self._start_redis()
        self._start_postgres()
        self._start_rabbit()

    def _spawn(self, name: str, argv: list[str], **kwargs) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.out", "ab")
        proc = subprocess.Popen(_pinned(self.cores, argv), stdout=log, stderr=subprocess.STDOUT,
                                **kwargs)
        log.close()
        self.procs.append(proc)
        self.roots[name] = proc.pid
        return proc

    def _start_redis(self) -> None:
        self._spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(self.workdir)])
        _wait_port(self.redis_port, 20, "redis")

    def _start_postgres(self) -> None:
        data = self.workdir / "pgdata"
        data.mkdir()
        user = pwd.getpwnam("postgres") if os.getuid() == 0 else None
        if user is not None:
            os.chown(data, user.pw_uid, user.pw_gid)
            os.chmod(self.workdir, 0o755)

        def as_postgres():
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        subprocess.run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "--no-sync"], check=True, capture_output=True, preexec_fn=as_postgres)
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.postgres_port}\nlisten_addresses = '127.0.0.1'\n"
                       "unix_socket_directories = ''\nmax_connections = 200\n"
                       "shared_buffers = 128MB\n")
        # The postmaster itself (not pg_ctl) so its pid is the root of every backend.
        self._spawn("postgres", [str(PG_BIN / "postgres"), "-D", str(data)],
                    preexec_fn=as_postgres)
        _wait_port(self.postgres_port, 60, "postgres")

    def _start_rabbit(self) -> None:
        base = self.workdir / "rabbitmq"
        (base / "log").mkdir(parents=True)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\nloopback_users = none\n"
            "vm_memory_high_watermark.relative = 0.2\ndisk_free_limit.absolute = 50MB\n")
        (base / "rabbitmq-env.conf").write_text("")
        (base / "enabled_plugins").write_text("[].\n")
        cookie = base / ".erlang.cookie"
        cookie.write_text("PARLEYBENCH" + str(self.base_port))
        cookie.chmod(0o400)
        self._spawn("rabbitmq", [str(RABBIT_BIN / "rabbitmq-server")], env=self.rabbit_env())
        _wait_port(self.amqp_port, 120, "rabbitmq")

    # --- measuring ----------------------------------------------------------------------
    def pids(self) -> list[int]:
        return pids_of_tree(list(self.roots.values()))

    def rabbitmqctl(self, *args: str) -> None:
        subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-q", "-n", self.rabbit_node, *args],
                       check=True, capture_output=True, timeout=60, env=self.rabbit_env())

    # --- stop ---------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            self.rabbitmqctl("shutdown")
        except Exception:
            pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # beam's helpers (epmd is shared and stays; erl_child_setup dies with beam)


@contextmanager
def private_servers(workdir: Path, cores: str | None = "0", base_port: int = 15500):
    workdir.mkdir(parents=True, exist_ok=True)
    servers = PrivateServers(workdir, cores, base_port)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(workdir / "pgdata", ignore_errors=True)

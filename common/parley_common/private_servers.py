"""Private RabbitMQ, Redis and PostgreSQL servers in temp dirs on ports of their own, for the
chaos suite (tests/chaos: stop, restart, kill them) and the benchmarks (bench/fanout.py: pin
them to CPU cores and account their CPU), so neither ever touches the machine's shared servers.

    servers = PrivateServers(workdir, base_port=15470).start()
    servers.rabbit.url, servers.redis.url, servers.postgres.admin_url
    servers.redis.restart(); servers.rabbit.stop(); servers.rabbit.start()
    servers.pids()                         # every process of the three servers (CPU accounting)
    servers.remove()

Ports from base_port: Redis +0, PostgreSQL +1, AMQP +2, RabbitMQ's Erlang distribution +3.
With ``cores`` (a taskset list such as "0") every server process is pinned to those cores.

Needs redis-server, rabbitmq-server (Debian's package, run directly with its own node name,
config, cookie and Mnesia dir) and PostgreSQL 15's initdb/postgres (run as the ``postgres`` user
when started by root). PARLEY_PG_BIN (/usr/lib/postgresql/15/bin) and PARLEY_RABBITMQ_BIN
(/usr/lib/rabbitmq/bin) point elsewhere.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

PG_BIN = Path(os.environ.get("PARLEY_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBIT_BIN = Path(os.environ.get("PARLEY_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with closing(socket.create_connection((host, port), 0.5)):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, what: str, up: bool = True, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port) == up:
            return
        if proc is not None and up and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not {'open' if up else 'close'} port {port} in {timeout}s")


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


def cpu_ticks_of(pids: list[int], children: bool = True) -> int:
    """CPU clock ticks the live processes among ``pids`` used: utime + stime, and with
    ``children`` cutime + cstime too (a postmaster collects its ended backends' time)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(field) for field in fields[11:15 if children else 13])
    return total


class PrivateServer:
    """A server run in the foreground as our child (so its pid roots its process tree);
    stop() sends ``stop_signal`` and waits until the port is closed."""
    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, directory: Path, port: int, cores: str | None = None) -> None:
        self.dir, self.port, self.cores = directory, port, cores
        self.popen: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict]:
        raise NotImplementedError

    def _preexec(self) -> None:
        """Runs in the child before exec (PostgreSQL drops root there)."""

    def start(self, timeout: float = 120) -> "PrivateServer":
        args, env = self.command()
        if self.cores:
            args = ["taskset", "-c", self.cores, *args]
        with open(self.dir / "server.log", "ab") as out:
            self.popen = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          cwd=self.dir, start_new_session=True,
                                          preexec_fn=self._preexec)
        wait_port(self.port, timeout, self.name, proc=self.popen)
        return self

    def stop(self, timeout: float = 60) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        wait_port(self.port, 30, self.name, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL, no shutdown (a crash); start() brings it back."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def pids(self) -> list[int]:
        """This server's processes (empty while it is stopped)."""
        if self.popen is None or self.popen.poll() is not None:
            return []
        return pids_of_tree([self.popen.pid])


class PrivateRabbit(PrivateServer):
    """A RabbitMQ node of its own (node name, ports, Mnesia, cookie, no plugins)."""
    name = "rabbitmq"

    def __init__(self, directory: Path, port: int, node: str = "parley-private",
                 cores: str | None = None) -> None:
        super().__init__(directory, port, cores)
        self.node = f"{node}@localhost"
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "env.conf").write_text(f"NODENAME={self.node}\nERL_EPMD_ADDRESS=127.0.0.1\n")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
            "vm_memory_high_watermark.relative = 0.2\ndisk_free_limit.absolute = 50MB\n")
        cookie = directory / ".erlang.cookie"  # HOME is the directory: rabbitmqctl finds it
        if not cookie.exists():
            cookie.write_text(f"PARLEYPRIVATE{port}")
            cookie.chmod(0o400)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict:
        d = self.dir
        env = {**os.environ, "HOME": str(d), "RABBITMQ_NODENAME": self.node,
               "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
               "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
               "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.port + 1),
               "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
               "RABBITMQ_ENABLED_PLUGINS": "", "RABBITMQ_PID_FILE": str(d / "pid"),
               "ERL_EPMD_ADDRESS": "127.0.0.1"}
        if self.cores:
            # One scheduler, no busy waiting: the node shares its core with the rest.
            env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = (
                "+S 1:1 +A 4 +sbwt none +sbwtdcpu none +sbwtdio none "
                "-kernel inet_dist_use_interface {127,0,0,1}")
        return env

    def command(self):
        return [str(RABBIT_BIN / "rabbitmq-server")], self.env()

    def rabbitmqctl(self, *args: str) -> None:
        subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args],
                       check=True, capture_output=True, timeout=60, env=self.env())


class PrivateRedis(PrivateServer):
    """redis-server without persistence: a restart empties it, like the cache in production."""
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self):
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir)], dict(os.environ)


class PrivatePostgres(PrivateServer):
    """A PostgreSQL cluster of its own: initdb in a temp dir of its own (the postgres user must
    reach it; pytest's are 0700), the postmaster run directly (not pg_ctl) so its pid roots
    every backend. stop() is a fast shutdown (SIGINT)."""
    name = "postgres"
    stop_signal = signal.SIGINT

    def __init__(self, port: int, cores: str | None = None) -> None:
        directory = Path(tempfile.mkdtemp(prefix="parley-private-pg-"))
        directory.chmod(0o755)
        super().__init__(directory, port, cores)
        self.data = directory / "data"
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(directory, self._user.pw_uid, self._user.pw_gid)
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                        "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True, timeout=120, preexec_fn=self._preexec)

    def _preexec(self) -> None:
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        """Creates database ``name``; its SQLAlchemy URL."""
        import psycopg2

        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        with closing(connection), connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def command(self):
        return [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "max_connections=200",
                "-c", "shared_buffers=128MB", *self._statement_stats()], dict(os.environ)

    @staticmethod
    def _statement_stats() -> list[str]:
        """PARLEY_PG_STATEMENT_STATS=1 loads pg_stat_statements (where the database's CPU goes,
        bench/fanout.py --pg-statements); off by default: it costs a little per statement."""
        if os.environ.get("PARLEY_PG_STATEMENT_STATS") != "1":
            return []
        return ["-c", "shared_preload_libraries=pg_stat_statements",
                "-c", "pg_stat_statements.track=all", "-c", "pg_stat_statements.track_planning=on"]

    def reset_statement_stats(self) -> None:
        """Empties pg_stat_statements (loaded with PARLEY_PG_STATEMENT_STATS=1), creating the
        extension in the postgres database first: its view there shows every database."""
        self._admin_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self._admin_query("SELECT pg_stat_statements_reset()")

    def top_statements(self, top: int = 10) -> list[dict]:
        """The top statements since the reset, by execution + planning time (ms)."""
        rows = self._admin_query(f"""
            SELECT d.datname, s.calls, round(s.total_exec_time::numeric, 1),
                   round(s.total_plan_time::numeric, 1), s.rows,
                   left(regexp_replace(s.query, '\\s+', ' ', 'g'), 100)
              FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT {int(top)}""")
        return [{"database": database, "calls": calls, "exec_ms": float(exec_ms),
                 "plan_ms": float(plan_ms), "rows": count, "query": query}
                for database, calls, exec_ms, plan_ms, count, query in rows]

    def _admin_query(self, sql: str) -> list[tuple]:
        import psycopg2

        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        with closing(connection), connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateServers:
    """The three servers on consecutive ports from ``base_port`` (see the module's doc)."""

    def __init__(self, workdir: Path, base_port: int, cores: str | None = None,
                 node: str = "parley-private") -> None:
        self.redis = PrivateRedis(workdir / "redis", base_port, cores)
        self.postgres = PrivatePostgres(base_port + 1, cores)
        self.rabbit = PrivateRabbit(workdir / "rabbit", base_port + 2, node, cores)
        self.started: list[PrivateServer] = []

    def start(self) -> "PrivateServers":
        for server in (self.postgres, self.redis, self.rabbit):
            server.start()
            self.started.append(server)
        return self

    def pids(self) -> dict[str, list[int]]:
        """Each server's processes by name (rabbitmq, redis, postgres)."""
        return {server.name: server.pids() for server in self.started}

    def remove(self) -> None:
        """Stops every server (also after a failed start) and deletes PostgreSQL's data."""
        for server in reversed(self.started):
            try:
                server.stop()
            except Exception:
                pass  # already down; the others still get stopped
        shutil.rmtree(self.postgres.dir, ignore_errors=True)

    def __enter__(self) -> "PrivateServers":
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc) -> None:
        self.remove()

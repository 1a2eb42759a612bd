"""Private RabbitMQ, Redis and PostgreSQL servers for the chaos suite, in a temp dir on ports
of their own, so the faults (stop, restart, kill) never touch the machine's shared servers.

    rabbit = PrivateRabbit(workdir / "rabbit", port=15472).start()
    rabbit.stop(); rabbit.start()          # an outage; durable queues survive it
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

PG_BIN = Path(os.environ.get("PARLEY_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBIT_SERVER = os.environ.get("PARLEY_CHAOS_RABBITMQ_SERVER",
                               "/usr/lib/rabbitmq/bin/rabbitmq-server")


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


class _Server:
    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()


class _Foreground(_Server):
    """A server run in the foreground as our child; stop() = SIGTERM."""
    name = "server"
    port = 0

    def __init__(self) -> None:
        self.popen: subprocess.Popen | None = None

    def command(self) -> tuple[list[str], dict]:
        raise NotImplementedError

    def start(self, timeout: float = 90) -> "_Foreground":
        args, env = self.command()
        with open(self.dir / "server.log", "ab") as out:
            self.popen = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          cwd=self.dir, start_new_session=True)
        wait_port(self.port, timeout, self.name, proc=self.popen)
        return self

    def stop(self, timeout: float = 60) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        wait_port(self.port, 30, self.name, up=False)


class PrivateRabbit(_Foreground):
    """A RabbitMQ node of its own (node name, ports, mnesia, cookie, no plugins)."""
    name = "rabbitmq"

    def __init__(self, directory: Path, port: int, node: str = "parley-chaos") -> None:
        super().__init__()
        self.dir, self.port, self.node = directory, port, f"{node}@localhost"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "env.conf").write_text(f"NODENAME={self.node}\nERL_EPMD_ADDRESS=127.0.0.1\n")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def command(self):
        d = self.dir
        env = {**os.environ, "HOME": str(d), "RABBITMQ_NODENAME": self.node,
               "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
               "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
               "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.port + 1),
               "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
               "RABBITMQ_PID_FILE": str(d / "pid")}
        return [RABBIT_SERVER], env


class PrivateRedis(_Foreground):
    """redis-server without persistence: a restart empties it, like the cache in production."""
    name = "redis"

    def __init__(self, directory: Path, port: int) -> None:
        super().__init__()
        self.dir, self.port = directory, port
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self):
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir)], dict(os.environ)


class PrivatePostgres(_Server):
    """A PostgreSQL cluster of its own (initdb in a temp dir, run as the postgres user)."""
    name = "postgres"

    def __init__(self, port: int) -> None:
        # Its own temp dir: the postgres user must be able to reach it (pytest's are 0700).
        directory = Path(tempfile.mkdtemp(prefix="parley-chaos-pg-"))
        directory.chmod(0o755)
        self.dir, self.port = directory, port
        self.data = directory / "data"
        self._as_postgres = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        if self._as_postgres:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run([*self._as_postgres, str(PG_BIN / "initdb"), "-D", str(self.data),
                        "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True, timeout=120)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        with closing(connection), connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self._as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.data),
                        "-l", str(self.dir / "server.log"), *args],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> "PrivatePostgres":
        self._ctl("-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                              "-c fsync=off -c synchronous_commit=off -c max_connections=200",
                  "start")
        wait_port(self.port, 60, self.name)
        return self

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)

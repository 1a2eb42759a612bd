"""`make run` without a local RabbitMQ or Redis: start the missing one as a Docker container.

Only when a Docker engine answers and the URL points at this machine. The containers are
named (``parley-dev-rabbitmq``, ``parley-dev-redis``) and reused by later runs (started
again if stopped); their images are the ones `make images` builds or tags
(``parley/rabbitmq:3.10``, ``parley/redis:7``; ``deploy/images.sh rabbitmq redis`` makes them
when missing). Stop them with ``docker stop parley-dev-rabbitmq parley-dev-redis``.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
READY_SECONDS = 90


@dataclass(frozen=True)
class Dependency:
    name: str            # RabbitMQ, Redis
    image_env: str       # variable overriding the image, as in docker-compose.yml
    image: str
    container: str
    container_port: int
    images_arg: str      # deploy/images.sh argument that builds the image

    def run_args(self, url: str) -> list[str]:
        parts = urlsplit(url)
        if self.name == "RabbitMQ":
            # The URL's own user (guest:guest by default), allowed from outside the container's
            # loopback: this broker is published on 127.0.0.1 only, for development.
            user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
            script = ('printf "loopback_users = none\\ndefault_user = %s\\ndefault_pass = %s\\n" '
                      '"$PARLEY_DEV_USER" "$PARLEY_DEV_PASS" > /tmp/parley-dev.conf '
                      '&& export RABBITMQ_CONFIG_FILE=/tmp/parley-dev.conf '
                      '&& if command -v docker-entrypoint.sh >/dev/null; then exec docker-entrypoint.sh rabbitmq-server; fi '
                      '&& exec rabbitmq-server')
            return ["-e", f"PARLEY_DEV_USER={user}", "-e", f"PARLEY_DEV_PASS={password}",
                    "--entrypoint", "sh", self.image_name(), "-c", script]
        command = [self.image_name(), "redis-server", "--save", "", "--appendonly", "no"]
        if parts.password:
            command += ["--requirepass", unquote(parts.password)]
        return command

    def image_name(self) -> str:
        return os.environ.get(self.image_env) or self.image


RABBITMQ = Dependency("RabbitMQ", "PARLEY_RABBITMQ_IMAGE", "parley/rabbitmq:3.10", "parley-dev-rabbitmq",
                      5672, "rabbitmq")
REDIS = Dependency("Redis", "PARLEY_REDIS_IMAGE", "parley/redis:7", "parley-dev-redis", 6379, "redis")


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=15).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def answers(dependency: Dependency, url: str) -> bool:
    """RabbitMQ opens its port before it accepts clients: a real AMQP login for it."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or dependency.container_port
    if dependency is RABBITMQ:
        import pika
        try:
            params = pika.URLParameters(url)
            params.connection_attempts, params.socket_timeout = 1, 3
            pika.BlockingConnection(params).close()
            return True
        except Exception:
            return False
    try:
        socket.create_connection((host, port), 3).close()
        return True
    except OSError:
        return False


def start(dependency: Dependency, url: str) -> str | None:
    """Start (or restart) the container; None when it answers, else why not."""
    image = dependency.image_name()
    if docker("image", "inspect", image).returncode != 0:
        build = subprocess.run([str(ROOT / "deploy" / "images.sh"), dependency.images_arg],
                               capture_output=True, text=True)
        if build.returncode != 0:
            return f"building {image} failed: {build.stdout[-500:]}{build.stderr[-500:]}"
    existing = docker("ps", "-a", "--filter", f"name=^{dependency.container}$", "--format", "{{.ID}}").stdout.strip()
    if existing:
        result = docker("start", dependency.container)
    else:
        port = urlsplit(url).port or dependency.container_port
        result = docker("run", "-d", "--name", dependency.container, "--restart", "unless-stopped",
                        "-p", f"127.0.0.1:{port}:{dependency.container_port}",
                        *dependency.run_args(url))
    if result.returncode != 0:
        return result.stderr.strip()
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if answers(dependency, url):
            return None
        time.sleep(1)
    return f"it did not answer within {READY_SECONDS} s (docker logs {dependency.container})"

"""`make run`: check the broker and cache, migrate, then start every process with honcho.

A broker or cache that does not answer on this machine is started as a Docker container when
a Docker engine answers (scripts/local_containers.py); otherwise it says how to start it.

Runs inside the project's virtualenv. Ctrl-C reaches honcho, which stops every process.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from parley_common import config

import local_containers  # scripts/ is on sys.path: this script's own directory

ROOT = Path(__file__).resolve().parent.parent
MIGRATING = ("parley_auth", "parley_rooms", "parley_logger")
HOW_TO_START = {
    "RabbitMQ": "start it with `rabbitmq-server -detached` (or start a Docker engine: `make run` then starts one)",
    "Redis": "start it with `redis-server --daemonize yes` (or start a Docker engine: `make run` then starts one)",
}


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 3).close()
        return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--migrate-only", action="store_true")
    args = parser.parse_args()
    os.chdir(ROOT)
    env = dict(os.environ)
    env.setdefault("PARLEY_VAR_DIR", str(ROOT / "var"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    # make run uses SQLite under var/: DATABASE_URL is per process, never shared.
    env.pop("DATABASE_URL", None)

    docker_answers = None
    for name, url, port in (("RabbitMQ", config.amqp_uri(), 5672), ("Redis", config.redis_url(), 6379)):
        if reachable(url, port):
            continue
        where = f"{urlsplit(url).hostname}:{urlsplit(url).port or port}"
        if local_containers.is_local(url):
            if docker_answers is None:
                docker_answers = local_containers.engine_answers()
            if docker_answers:
                dependency = local_containers.RABBITMQ if name == "RabbitMQ" else local_containers.REDIS
                problem = local_containers.start(dependency, url)
                if problem is None:
                    print(f"parley: {name} was not running at {where}: started the Docker container "
                          f"{dependency.container} ({dependency.image_name()}; `docker stop {dependency.container}` stops it)",
                          flush=True)
                    continue
                print(f"parley: {name} is not reachable at {where} and starting it in Docker failed: {problem}",
                      file=sys.stderr)
                return 1
        print(f"parley: {name} is not reachable at {where}; "
              f"{HOW_TO_START[name]}, or point {'AMQP_URI' if name == 'RabbitMQ' else 'REDIS_URL'} at one.",
              file=sys.stderr)
        return 1

    for module in MIGRATING:
        result = subprocess.run([sys.executable, "-m", module, "migrate"], env={**env, "LOG_SHIP": "0"},
                                stdout=subprocess.DEVNULL)
        if result.returncode != 0:
            print(f"parley: migrating {module} failed (exit {result.returncode})", file=sys.stderr)
            return result.returncode
    if args.migrate_only:
        print("parley: datastores under var/ are migrated")
        return 0

    port = env.get("PORT", "8080")
    print(f"parley: starting auth, rooms, gateway, logger and cleaner — web client at http://localhost:{port}  (Ctrl-C stops all)",
          flush=True)
    # honcho hands PORT, PORT+100, ... to the Procfile's lines in order; the gateway is first.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    os.execvpe(os.path.join(bin_dir, "honcho"), ["honcho", "start", "-f", "Procfile", "-p", port], env)


if __name__ == "__main__":
    sys.exit(main())

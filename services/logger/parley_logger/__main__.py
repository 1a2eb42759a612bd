"""``python -m parley_logger [run|migrate|healthcheck]`` (default: run; run migrates first)."""
from __future__ import annotations

import argparse
import logging
import sys

from parley_common import bus, config, db
from parley_common.logs import configure_logging, get_logger
from parley_common.backoff import Backoff
from parley_common.worker import PikaWorker, StopFlag, heartbeat_file, heartbeat_fresh
from sqlalchemy import text

from .consumers import ArchiveConsumer, ErrorAlertConsumer
from .rpc import QueryConsumer

SERVICE = "logger"
MIGRATIONS = "parley_logger:migrations"


def migrate_with_retry(url: str, stop: StopFlag, log) -> bool:
    """Migrate, waiting (with back-off) for a database that is still starting."""
    backoff = Backoff(1.0, 10.0)
    while not stop.is_set():
        try:
            db.migrate(url, MIGRATIONS)
            return True
        except Exception as exc:  # noqa: BLE001 - unreachable DB, or a replica racing us
            delay = backoff.next()
            log.warning("migrate_failed", error=f"{type(exc).__name__}: {exc}"[:500],
                        retry_in=round(delay, 2))
            stop.sleep(delay)
    return False


def run() -> int:
    stop = StopFlag().install()
    log = get_logger(SERVICE)
    url = config.database_url(SERVICE)
    if not migrate_with_retry(url, stop, log):
        return 0
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    worker = PikaWorker(
        [ArchiveConsumer(sessions), ErrorAlertConsumer(), QueryConsumer(sessions)],
        declare=bus.declare_log_topology_pika, stop=stop,
        heartbeat_path=heartbeat_file(SERVICE), name=SERVICE)
    try:
        return worker.run()
    finally:
        engine.dispose()


def migrate() -> int:
    db.migrate(config.database_url(SERVICE), MIGRATIONS)
    get_logger(SERVICE).info("migrated")
    return 0


def healthcheck() -> int:
    """0 when this container's worker loop is alive and its database answers."""
    if not heartbeat_fresh(heartbeat_file(SERVICE)):
        print("unhealthy: worker heartbeat is missing or stale", file=sys.stderr)
        return 1
    engine = db.make_engine(config.database_url(SERVICE), pool_size=1)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        print(f"unhealthy: database: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley_logger",
                                     description="Parley log archive worker")
    parser.add_argument("command", nargs="?", default="run",
                        choices=("run", "migrate", "healthcheck"))
    args = parser.parse_args(argv)
    if args.command == "healthcheck":
        return healthcheck()
    configure_logging(SERVICE)
    # alembic >= 1.16 announces each plugin at INFO on every start: noise in the archive.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return run() if args.command == "run" else migrate()


if __name__ == "__main__":
    sys.exit(main())

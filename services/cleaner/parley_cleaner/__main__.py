"""``python -m parley_cleaner [run|healthcheck] [--once]`` (default: run).

``run`` sweeps every SWEEP_INTERVAL_SECONDS until SIGTERM/SIGINT; ``run --once`` (or just
``--once``) does a single sweep and exits (0 also when another cleaner held the lock).
"""
from __future__ import annotations

import argparse
import sys
import time

import redis

from parley_common import bus, config
from parley_common.logs import configure_logging, get_logger
from parley_common.backoff import Backoff
from parley_common.worker import (BROKER_ERRORS, Publisher, StopFlag, heartbeat_file,
                                  heartbeat_fresh)

from .sweeper import Sweeper

SERVICE = "cleaner"


def make_redis() -> redis.Redis:
    # Timeouts keep a hung Redis from stalling a stop for longer than a few seconds.
    return redis.Redis.from_url(config.redis_url(), decode_responses=True,
                                socket_timeout=5, socket_connect_timeout=5,
                                health_check_interval=30)


def make_sweeper(redis_client: redis.Redis, publisher: Publisher) -> Sweeper:
    interval = config.env_float("SWEEP_INTERVAL_SECONDS", 10.0)
    # Long enough for any sweep; short enough that a crashed holder blocks only briefly.
    lock_ttl = config.env_float("CLEANER_LOCK_TTL_SECONDS", max(30.0, 3 * interval))
    return Sweeper(redis_client, publisher, prefix=config.redis_prefix(),
                   instance_id=config.instance_id(), lock_ttl_ms=int(lock_ttl * 1000))


def sweep_once(sweeper: Sweeper, log) -> bool:
    """One sweep with its summary line; False when it failed (Redis or broker trouble)."""
    started = time.monotonic()
    try:
        result = sweeper.sweep()
    except (redis.RedisError, *BROKER_ERRORS) as exc:
        log.warning("sweep_failed", error=f"{type(exc).__name__}: {exc}")
        return False
    except Exception:  # noqa: BLE001 - a bug must not end the loop; the next sweep retries
        log.exception("sweep_crashed")
        return False
    finally:
        sweeper.publisher.close()  # offline events are rare: no idle connection between sweeps
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if result is None:
        log.debug("sweep_skipped", reason="another cleaner holds cleaner:lock")
    elif result.did_something():
        log.info("sweep_done", elapsed_ms=elapsed_ms, **result.as_dict())
    else:
        log.debug("sweep_done", elapsed_ms=elapsed_ms, **result.as_dict())
    return True


def run(once: bool) -> int:
    stop = StopFlag().install()
    log = get_logger(SERVICE)
    sweeper = make_sweeper(make_redis(), Publisher(declare=bus.declare_event_exchanges_pika))
    if once:
        return 0 if sweep_once(sweeper, log) else 1
    interval = config.env_float("SWEEP_INTERVAL_SECONDS", 10.0)
    beat = heartbeat_file(SERVICE)
    backoff = Backoff(1.0, interval)
    log.info("cleaner_started", interval_s=interval, prefix=config.redis_prefix())
    while not stop.is_set():
        if sweep_once(sweeper, log):
            backoff.reset()
            wait = interval
            try:
                beat.write_text(str(int(time.time())))
            except OSError:
                pass
        else:
            wait = backoff.next()
        stop.sleep(wait)
    log.info("cleaner_stopped")
    return 0


def healthcheck() -> int:
    """0 when this container's sweep loop is alive and Redis answers."""
    interval = config.env_float("SWEEP_INTERVAL_SECONDS", 10.0)
    if not heartbeat_fresh(heartbeat_file(SERVICE), max_age=3 * interval + 15):
        print("unhealthy: no successful sweep recently", file=sys.stderr)
        return 1
    try:
        make_redis().ping()
    except redis.RedisError as exc:
        print(f"unhealthy: redis: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley_cleaner",
                                     description="Parley Redis cache cleaner")
    parser.add_argument("command", nargs="?", default="run", choices=("run", "healthcheck"))
    parser.add_argument("--once", action="store_true", help="one sweep, then exit")
    args = parser.parse_args(argv)
    if args.command == "healthcheck":
        return healthcheck()
    configure_logging(SERVICE)
    return run(args.once)


if __name__ == "__main__":
    sys.exit(main())

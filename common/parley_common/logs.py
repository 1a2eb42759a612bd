"""structlog set-up: JSON records on stdout, and a copy of each record shipped to the
``parley.logs`` topic exchange (routing key ``<service>.<level>``) for the logger to archive.

Shipping never blocks the caller: records go to a bounded in-memory queue drained by one
background thread with its own pika connection. When the broker is away the thread retries
with back-off; when the queue is full the newest records are counted and dropped rather than
stalling the service (stdout still has them).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import logging
import queue
import sys
import threading
import time
from typing import Any

import structlog
import structlog.tracebacks

from . import bus, config
from .backoff import Backoff

def redacted(secret: str | None) -> str | None:
    """A short, stable label for a value that must never be logged in clear (a session id is
    a bearer of the session): the same session gives the same label, so logs still correlate."""
    if secret is None:
        return None
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# Libraries whose INFO chatter is noise (and pika's would echo the shipper's own traffic).
_QUIET_LOGGERS = ("pika", "aiormq", "aio_pika", "kombu", "amqp", "asyncio", "urllib3",
                  "alembic.runtime.migration", "alembic.runtime.plugins", "aiohttp.access")


class LogShipper:
    """A structlog processor that copies each event dict to the log exchange."""

    def __init__(self, amqp_uri: str, service: str, max_queue: int = 10_000):
        self.amqp_uri = amqp_uri
        self.service = service
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> dict:
        level = event_dict.get("level", method_name)
        try:
            body = json.dumps(event_dict, default=str).encode()
            self._queue.put_nowait((bus.log_routing_key(self.service, level), body,
                                    _LEVELS.get(level, 20) >= 30))
        except queue.Full:
            self.dropped += 1
        return event_dict

    def flush(self, timeout: float = 3.0) -> bool:
        """Wait (bounded) until every queued record is published; used at exit."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        import pika  # imported here so a process that never ships need not load it

        pending = None
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                params = pika.URLParameters(self.amqp_uri)
                params.connection_attempts = 1
                params.heartbeat = 30
                connection = pika.BlockingConnection(params)
                channel = connection.channel()
                bus.declare_log_topology_pika(channel)
                backoff.reset()
                while True:
                    if pending is None:
                        try:
                            pending = self._queue.get(timeout=1.0)
                        except queue.Empty:
                            connection.process_data_events(0)  # keep heartbeats flowing
                            continue
                    key, body, persistent = pending
                    channel.basic_publish(
                        bus.LOG_EXCHANGE, key, body,
                        pika.BasicProperties(content_type="application/json",
                                             delivery_mode=bus.PERSISTENT if persistent else bus.TRANSIENT))
                    pending = None
                    self._queue.task_done()
            except Exception:  # broker down or connection lost: retry, keep the record
                time.sleep(backoff.next())


class _StdlibBridge(logging.Handler):
    """Routes records of libraries that use stdlib logging through structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "_from_structlog", False):
            return
        log = structlog.get_logger(record.name)
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info:
            fields["exc_info"] = record.exc_info
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        log.log(record.levelno, message, **fields)


_shipper: LogShipper | None = None


def configure_logging(service: str, *, level: str | None = None, ship: bool | None = None,
                      amqp_uri: str | None = None, instance: str | None = None) -> LogShipper | None:
    """Configure structlog (and stdlib logging) for one process. Call once at start-up."""
    global _shipper
    level_name = (level or config.env("LOG_LEVEL", "info")).lower()
    level_no = _LEVELS.get(level_name, 20)
    ship = config.env_bool("LOG_SHIP", True) if ship is None else ship
    instance = instance or config.instance_id()

    def add_origin(_logger: Any, _method: str, event_dict: dict) -> dict:
        event_dict.setdefault("service", service)
        event_dict.setdefault("instance", instance)
        return event_dict

    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        add_origin,
        # Structured tracebacks without local variables: locals can hold passwords or tokens.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
    ]
    if ship:
        if _shipper is None:
            _shipper = LogShipper(amqp_uri or config.amqp_uri(), service)
            atexit.register(_shipper.flush)
        processors.append(_shipper)
    processors.append(structlog.processors.JSONRenderer(default=str))

    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [_StdlibBridge()]
    root.setLevel(level_no)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level_no, logging.WARNING))
    return _shipper


def get_logger(name: str | None = None, **initial: Any):
    return structlog.get_logger(name, **initial)

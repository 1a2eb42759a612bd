"""What every nameko service of Parley shares: a database dependency, a structlog
dependency, and the process entry point (``run`` | ``migrate`` | ``healthcheck``).

Import :mod:`parley_common.green` before this module in a service's ``__main__``.
"""
from __future__ import annotations

import functools
import gc
import inspect
import logging
import sys
from typing import Any, Callable

import kombu.exceptions
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcConsumer
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from . import config, db
from .errors import ParleyError, Unavailable
from .logs import configure_logging, get_logger


# What a publish or ack looks like when the broker has gone away (kombu gives up after its
# retry policy with OperationalError; py-amqp and sockets raise ConnectionError/OSError).
BROKER_GONE = (kombu.exceptions.OperationalError, ConnectionError, OSError)


class OutageTolerantRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer, except that a reply the broker cannot take does not kill the
    service. In nameko an exception from handle_result ends the worker thread with an error,
    and the container (the whole process) dies with it: a RabbitMQ outage during one call took
    the service down for good. The reply is lost either way (the caller's reply queue went with
    the broker; the caller times out and retries, idempotently), the unacked request is
    redelivered, and nameko's queue consumer reconnects by itself. Subclasses change
    :meth:`answer`, not handle_result."""

    def handle_result(self, message, result, exc_info):
        try:
            return self.answer(message, result, exc_info)
        except BROKER_GONE as exc:
            get_logger("rpc").warning("rpc_reply_lost", error=repr(exc),
                                      routing_key=message.delivery_info.get("routing_key"))
            return result, exc_info

    def answer(self, message, result, exc_info):
        return RpcConsumer.handle_result(self, message, result, exc_info)


class OutageTolerantRpc(Rpc):
    rpc_consumer = OutageTolerantRpcConsumer()


def keeping_signature(wrapper: Callable, method: Callable) -> Callable:
    """``wrapper`` (made with functools.wraps) checked by nameko against ``method``'s own
    parameters: a call with wrong arguments stays a clean error, not a TypeError inside."""
    wrapper.__signature__ = inspect.signature(method)
    return wrapper


def database_outage_unavailable(method: Callable) -> Callable:
    """A database that went away (connection refused, dropped, restarted) answers 503
    `unavailable`, which the caller retries, instead of a 500."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DBAPIError as exc:
            if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                raise
            log = getattr(self, "log", None) or get_logger(self.name)
            log.error("database_unavailable", error=str(exc.orig)[:200])
            raise Unavailable(f"The {self.name} database is not answering.",
                              retry_after=2) from None

    return keeping_signature(wrapper, method)


def rpc(fn=None, *, entrypoint=None, **options):
    """``@rpc`` or ``@rpc(...)``: nameko's, except that our domain errors are answers, not
    faults (nameko logs them as "expected"), and a database outage is 503
    (:func:`database_outage_unavailable`). (nameko drops keyword options when the decorator
    is given the function directly, so a functools.partial would silently lose
    expected_exceptions.) The entrypoint is :class:`parley_common.lean_rpc.LeanRpc` (replies
    JSON-encoded once, on reused producers, without confirms), unless ``entrypoint`` names
    another subclass of :class:`OutageTolerantRpc` (the same one for every method of a
    service)."""
    from .lean_rpc import LeanRpc  # it builds on OutageTolerantRpc, defined above

    options.setdefault("expected_exceptions", (ParleyError,))
    decorator = (entrypoint or LeanRpc).decorator(**options)
    if fn is None:
        return lambda method: decorator(database_outage_unavailable(method))
    return decorator(database_outage_unavailable(fn))


def call_with_timeout(method: Callable[..., Any], *args, seconds: float, what: str) -> Any:
    """An RpcProxy call that gives up after ``seconds``: ``Unavailable`` naming ``what``
    (nameko's proxies have no timeout of their own). The eventlet part of service code."""
    import eventlet
    from nameko.exceptions import RemoteError, UnknownService

    try:
        with eventlet.Timeout(seconds):
            return method(*args)
    except eventlet.Timeout:
        raise Unavailable(f"The {what} service did not answer in time.", retry_after=2) from None
    except (UnknownService, RemoteError) as exc:
        get_logger("rpc").warning("rpc_call_failed", service=what, error=type(exc).__name__)
        raise Unavailable(f"The {what} service is not available.", retry_after=2) from None


def off_the_hub(function: Callable[..., Any], *args) -> Any:
    """``function(*args)`` in a native thread (eventlet's tpool), the calling greenthread
    waiting: for CPU-heavy pure code that releases the GIL (Pillow decoding an image), which
    would otherwise stall every other call of the process while it runs."""
    from eventlet import tpool

    return tpool.execute(function, *args)


class _ExpectedErrorsQuietly(logging.Filter):
    """nameko logs expected errors as warnings with a traceback; one info line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("(expected)"):
            record.levelno, record.levelname, record.exc_info = logging.INFO, "INFO", None
        return True


class Database(DependencyProvider):
    """Gives each worker its own SQLAlchemy session; closed (rolled back if still open) when
    the worker ends, so a failed call never leaks a transaction. The pool is as large as the
    worker count: every concurrent worker holds at most one connection, so none waits for
    another's."""

    def __init__(self, service: str):
        self.service = service
        self.engine = None
        self.sessions = None
        self._open: dict = {}

    def setup(self):
        self.engine = db.make_engine(config.database_url(self.service), pool_size=self.pool_size)
        self.sessions = db.make_sessionmaker(self.engine)

    @property
    def pool_size(self) -> int:
        return self.container.config.get("max_workers", 10) + 2

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

    def get_dependency(self, worker_ctx) -> Session:
        session = self.sessions()
        self._open[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx):
        session = self._open.pop(worker_ctx, None)
        if session is not None:
            session.close()


class Logger(DependencyProvider):
    """A structlog logger bound to the method being served."""

    def get_dependency(self, worker_ctx):
        return get_logger(worker_ctx.service_name).bind(
            method=worker_ctx.entrypoint.method_name, call_id=worker_ctx.call_id)


def nameko_config() -> dict:
    return {
        "AMQP_URI": config.amqp_uri(),
        "serializer": "json",
        # max_workers bounds both concurrency and the consumer prefetch.
        "max_workers": config.env_int("MAX_WORKERS", 10),
        "HEARTBEAT": 30,
    }


def healthcheck(service: str) -> int:
    """Exit status 0 when the broker and this service's database answer."""
    import kombu
    from sqlalchemy import text

    try:
        with kombu.Connection(config.amqp_uri(), connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        engine = db.make_engine(config.database_url(service), pool_size=1)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        print(f"{service} unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


def freeze_start_up_objects() -> None:
    """Everything alive before the service runs (modules, models, configuration: ~100,000
    objects in rooms) leaves the collector's reach, as the gateway does after its start-up:
    a full collection over them took ~35 ms, paid by whichever call was in flight (a post
    batch, and every post waiting behind it)."""
    gc.collect()
    gc.freeze()


def main(service_cls: type, migrations: str | None, argv: list[str] | None = None,
         before_run: Callable[[], None] | None = None) -> int:
    """Entry point of a nameko service process."""
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "run"
    service = service_cls.name
    if command == "healthcheck":
        return healthcheck(service)
    if command not in {"run", "migrate"}:
        print(f"usage: python -m parley_{service} [run|migrate|healthcheck]", file=sys.stderr)
        return 2
    configure_logging(service)
    logging.getLogger("nameko.containers").addFilter(_ExpectedErrorsQuietly())
    log = get_logger(service)
    if migrations:
        db.migrate(config.database_url(service), migrations)
        log.info("migrated", database=db.is_sqlite(config.database_url(service)) and "sqlite" or "postgresql")
    if command == "migrate":
        return 0
    if before_run is not None:
        before_run()
    from nameko.cli.run import run

    log.info("service_starting", amqp=config.amqp_uri().rsplit("@", 1)[-1])
    freeze_start_up_objects()
    run([service_cls], nameko_config())
    log.info("service_stopped")
    return 0

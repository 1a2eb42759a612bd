"""SQLAlchemy engines and Alembic migrations, the same way in every service."""
from __future__ import annotations

import select
import sys
import zlib
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True,
                **options) -> Engine:
    """``pre_ping``: a pooled connection is checked before each checkout, without a round trip
    (see _drop_if_closed_by_server); ``False`` skips even that, and a connection that died
    meanwhile fails one call (SQLAlchemy then drops the whole pool on that disconnect).
    ``options`` go to SQLAlchemy's create_engine for server databases (e.g. isolation_level)."""
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # WAL: readers never block the writer
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, **options)
    if pre_ping:
        event.listen(engine, "checkout", _drop_if_closed_by_server)
    return engine


def _drop_if_closed_by_server(dbapi_connection, _record, _proxy) -> None:
    """The pre-ping of a pooled connection, without SQLAlchemy's round trip (`SELECT 1`, as
    long as a small query; a third of a one-query RPC). A connection idle in the pool has
    nothing to read unless the server has gone: a restart or a terminated backend sends its
    FATAL notice and closes, which makes the socket readable. Such a connection is dropped and
    the pool hands out another (SQLAlchemy retries a checkout that raises DisconnectionError).
    A server that vanished without closing (no FIN) is caught by neither check."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return
    try:
        readable, _, _ = _os_select()([fileno()], [], [], 0)
    except Exception as error:  # closed on our side already (psycopg2: InterfaceError)
        raise exc.DisconnectionError(str(error)) from None
    if readable:
        raise exc.DisconnectionError("the server closed the connection while it was pooled")


_select_function = None


def _os_select():
    """The operating system's ``select.select``, also in an eventlet process: eventlet's green
    select arms a hub timer and listeners and switches to the hub even for a zero timeout,
    which made this check ~8% of the rooms process's CPU per get_room (py-spy, GIL samples).
    A zero-timeout poll never blocks, so the plain call is safe on the hub."""
    global _select_function
    if _select_function is None:
        patcher = sys.modules.get("eventlet.patcher")  # loaded only if eventlet is in use
        _select_function = patcher.original("select").select if patcher is not None \
            else select.select
    return _select_function


def like_escape(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (use with ``escape="\\"``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def autocommit_reads(session: Session) -> Iterator[None]:
    """The statements of the block run in autocommit, on PostgreSQL: a call that only reads
    then makes one round trip per statement, without psycopg2's BEGIN before the first and the
    ROLLBACK that ends the call (four round trips for a two-query read). Under READ COMMITTED
    every statement takes a snapshot of its own anyway, so the reads see exactly what they saw
    in a transaction. The flag is psycopg2's, set and cleared on the client (SQLAlchemy's
    AUTOCOMMIT isolation level would cost a SET round trip when the connection goes back to
    the pool); the caller still ends the session's transaction after the block, which then
    sends nothing. Nothing changes inside a transaction already begun (an operation calling a
    read) or on SQLite."""
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        yield
        return
    dbapi_connection = session.connection().connection.dbapi_connection
    dbapi_connection.autocommit = True
    try:
        yield
    finally:
        if not dbapi_connection.closed:
            dbapi_connection.autocommit = False


@contextmanager
def session_scope(factory: sessionmaker) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(url: str, script_location: str) -> None:
    """Upgrade the database at ``url`` to the newest revision of ``script_location``.

    On PostgreSQL an advisory lock makes concurrent starts of several replicas safe: one
    migrates, the others wait and then find nothing to do.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                lock_key = zlib.crc32(script_location.encode())
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def run_alembic_env(target_metadata) -> None:
    """The body of every service's ``migrations/env.py``."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:  # invoked from the alembic CLI: make our own connection
        engine = make_engine(context.config.get_main_option("sqlalchemy.url"), pool_size=1)
        with engine.begin() as connection:
            _configure_and_run(context, connection, target_metadata)
        engine.dispose()
        return
    _configure_and_run(context, connection, target_metadata)


def _configure_and_run(context, connection, target_metadata) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()

"""parley_common.db's pre-ping without a round trip: a pooled connection whose backend the
server ended (a restart, a terminated backend) is dropped at checkout and replaced, so no
call fails on it; a healthy pooled connection is kept (no reconnect per checkout)."""
from __future__ import annotations

import subprocess
import sys
import time

import psycopg2
from sqlalchemy import text

from parley_common import db


def backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar()


def terminate(url: str, pid: int) -> None:
    admin = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()


def test_a_connection_the_server_ended_is_replaced_at_checkout(isolation):
    url = isolation.database_url("db_pool")
    engine = db.make_engine(url, pool_size=1)
    try:
        first = backend_pid(engine)
        assert backend_pid(engine) == first  # pooled and reused while healthy
        terminate(url, first)
        time.sleep(0.3)  # the FATAL notice and the close reach our socket
        replacement = backend_pid(engine)  # no OperationalError: dropped at checkout
        assert replacement != first
        assert backend_pid(engine) == replacement
    finally:
        engine.dispose()


def test_without_pre_ping_the_dead_connection_fails_one_call(isolation):
    url = isolation.database_url("db_pool_no_ping")
    engine = db.make_engine(url, pool_size=1, pre_ping=False)
    try:
        terminate(url, backend_pid(engine))
        time.sleep(0.3)
        try:
            backend_pid(engine)
        except Exception as error:  # what the check above spares the callers
            assert "terminat" in str(error) or "closed" in str(error), error
        else:
            raise AssertionError("a terminated backend answered")
        backend_pid(engine)  # SQLAlchemy dropped the pool on that disconnect
    finally:
        engine.dispose()


def test_autocommit_reads_send_no_begin_and_leave_the_pool_as_it_was(isolation):
    """A read in db.autocommit_reads runs outside any transaction (psycopg2 sent no BEGIN, so
    ending the session sends no ROLLBACK); the connection leaves autocommit after the block,
    and a read inside a transaction already begun stays in it."""
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS

    engine = db.make_engine(isolation.database_url("db_autocommit_reads"), pool_size=1)
    sessions = db.make_sessionmaker(engine)

    def status(session) -> int:
        return session.connection().connection.dbapi_connection.get_transaction_status()

    try:
        session = sessions()
        with db.autocommit_reads(session):
            assert session.execute(text("SELECT 1")).scalar() == 1
            assert status(session) == TRANSACTION_STATUS_IDLE
        assert session.connection().connection.dbapi_connection.autocommit is False
        session.close()

        session = sessions()  # the same pooled connection, in transactions again
        session.execute(text("SELECT 1"))
        assert status(session) == TRANSACTION_STATUS_INTRANS
        with db.autocommit_reads(session):  # begun already: stays in that transaction
            session.execute(text("SELECT 2"))
            assert status(session) == TRANSACTION_STATUS_INTRANS
        session.close()
    finally:
        engine.dispose()


def test_the_check_polls_with_the_os_select_under_eventlet():
    """In a nameko process (eventlet's monkey patching) the zero-timeout poll is the plain
    system call, not eventlet's green select, which goes through the hub on every checkout."""
    probe = ("import parley_common.green, select, types\n"
             "from parley_common import db\n"
             "assert select.select is not db._os_select(), 'select is not patched here'\n"
             "assert isinstance(db._os_select(), types.BuiltinFunctionType)\n")
    subprocess.run([sys.executable, "-c", probe], check=True)

"""A database that refuses connections (restart, failover) makes auth answer `unavailable`
(503, retry), never `internal_error`; it answers again as soon as the database does."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from parley_common.errors import Unavailable


def set_connections_allowed(maintenance, database: str, allowed: bool) -> None:
    with maintenance.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:  # and end the ones auth holds in its pool
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"),
                               {"name": database})


async def test_a_database_outage_answers_unavailable(rpc, new_user, auth_db):
    me = await new_user()
    url = make_url(auth_db.url)
    maintenance = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        set_connections_allowed(maintenance, url.database, False)
        with pytest.raises(Unavailable) as refused:
            await rpc.call("auth", "get_me", me["id"])
        assert "database" in refused.value.args[1]
    finally:
        set_connections_allowed(maintenance, url.database, True)
        maintenance.dispose()
        auth_db.dispose()  # its pooled connections were ended too
    assert await rpc.call("auth", "get_me", me["id"]) == me

"""Each service's Alembic history builds exactly the schema its models describe, on SQLite
(`make run`) and on PostgreSQL (containers): a model change without a migration fails here."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from parley_auth.models import Base as AuthBase
from parley_common import db
from parley_logger.models import Base as LoggerBase
from parley_rooms.models import metadata as rooms_metadata
from parley_rooms.models import outside_metadata as rooms_outside_metadata

# Structures a service keeps outside its metadata on purpose (rooms' full-text search).
OUTSIDE_METADATA = {"rooms": rooms_outside_metadata}

SCHEMAS = {
    "auth": ("parley_auth:migrations", AuthBase.metadata),
    "rooms": ("parley_rooms:migrations", rooms_metadata),
    "logger": ("parley_logger:migrations", LoggerBase.metadata),
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("service", sorted(SCHEMAS))
def test_migrations_match_models(isolation, tmp_path, service, backend):
    location, metadata = SCHEMAS[service]
    url = (f"sqlite:///{tmp_path / service}.db" if backend == "sqlite"
           else isolation.database_url(f"migrations_{service}"))
    db.migrate(url, location)
    db.migrate(url, location)  # a second start finds nothing to do
    engine = db.make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            outside = OUTSIDE_METADATA.get(service)
            opts = {"include_name": lambda name, type_, parents: not outside(name, type_, parents)} \
                if outside else {}
            drift = compare_metadata(MigrationContext.configure(connection, opts=opts), metadata)
    finally:
        engine.dispose()
    assert drift == [], f"{service} models and migrations differ on {backend}: {drift}"

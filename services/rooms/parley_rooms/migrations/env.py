from parley_common.db import run_alembic_env

from parley_rooms.models import metadata

run_alembic_env(metadata)

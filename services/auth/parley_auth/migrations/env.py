from parley_common.db import run_alembic_env

from parley_auth.models import Base

run_alembic_env(Base.metadata)

from parley_common.db import run_alembic_env

from parley_logger.models import Base

run_alembic_env(Base.metadata)

"""``python -m parley_auth``: migrate (SQLite and PostgreSQL, twice) and healthcheck."""
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect


def run_auth(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parley_auth", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def assert_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        assert {"users", "sessions", "alembic_version"} <= set(inspector.get_table_names())
        unique = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("users")}
        assert {("username_lower",), ("email_lower",)} <= unique
        assert {"id", "user_id", "created_at", "expires_at", "revoked_at", "user_agent",
                "refresh_hash", "refresh_generation", "refresh_previous", "last_used_at"} == \
            {c["name"] for c in inspector.get_columns("sessions")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_run_and_rerun(isolation, tmp_path, backend):
    url = (f"sqlite:///{tmp_path / 'auth.db'}" if backend == "sqlite"
           else isolation.database_url("authmigrate"))
    env = isolation.env(DATABASE_URL=url, LOG_SHIP="0")
    for _ in range(2):  # the second run finds nothing to do
        result = run_auth(env, "migrate")
        assert result.returncode == 0, result.stdout + result.stderr
    assert '"event": "migrated"' in result.stdout
    assert_schema(url)


def test_healthcheck(isolation, tmp_path, auth_database_url, auth):
    ok = run_auth(isolation.env(DATABASE_URL=auth_database_url), "healthcheck")
    assert ok.returncode == 0, ok.stderr
    broken = run_auth(isolation.env(DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/x"),
                      "healthcheck")
    assert broken.returncode == 1 and "unhealthy" in broken.stderr
    assert run_auth(isolation.env(), "bogus").returncode == 2

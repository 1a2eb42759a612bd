import os
import stat
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect

from parley_auth.keys import Keyring, key_id


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


def test_signing_key_is_created_once_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("JWT_PRIVATE_KEY_FILE", raising=False)
    monkeypatch.delenv("JWT_KEY_ID", raising=False)
    monkeypatch.delenv("JWT_EXTRA_PUBLIC_KEYS_DIR", raising=False)
    monkeypatch.setenv("PARLEY_VAR_DIR", str(tmp_path / "var"))
    first = Keyring.from_env()
    path = tmp_path / "var" / "keys" / "jwt-ed25519.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = Keyring.from_env()
    assert first.kid == second.kid == key_id(first.private_key.public_key())
    assert list(second.public_keys()) == [first.kid]


def test_configured_key_file_must_exist_and_be_ed25519(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        Keyring.from_env()
    wrong = tmp_path / "ec.pem"
    wrong.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(wrong))
    with pytest.raises(SystemExit):
        Keyring.from_env()

"""The JWT signing key (parley_auth.keys) in-process: made once with owner-only rights when
none is configured, and a configured one must exist and be Ed25519."""
import os
import stat

import pytest

from parley_auth.keys import Keyring, key_id


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

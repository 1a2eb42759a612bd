"""The Ed25519 signing key and the public keys the gateway should accept."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from parley_common import config


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex chars of sha256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def _create_key_file(path: Path) -> None:
    """Write a fresh key readable by its owner only; a concurrent creator wins harmlessly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(Ed25519PrivateKey.generate()))


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path}: JWT signing key must be an Ed25519 key (PKCS8 PEM)")
    return key


def _load_extra_public_keys(directory: str | None) -> dict[str, str]:
    """``<kid>.pem`` public keys of retired signing keys that are still accepted."""
    if not directory:
        return {}
    extra = {}
    for path in sorted(Path(directory).glob("*.pem")):
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise SystemExit(f"{path}: extra JWT public keys must be Ed25519")
        extra[path.stem] = public_pem(key)
    return extra


@dataclass
class Keyring:
    private_key: Ed25519PrivateKey
    kid: str
    extra_public: dict[str, str] = field(default_factory=dict)

    def public_keys(self) -> dict[str, str]:
        return {**self.extra_public, self.kid: public_pem(self.private_key.public_key())}

    @classmethod
    def from_env(cls) -> "Keyring":
        configured = config.env("JWT_PRIVATE_KEY_FILE")
        if configured:
            path = Path(configured)  # an operator-provided key must exist: never invent one
        else:
            path = config.var_dir() / "keys" / "jwt-ed25519.pem"
            if not path.exists():
                _create_key_file(path)
        private_key = _load_private_key(path)
        kid = config.env("JWT_KEY_ID") or key_id(private_key.public_key())
        return cls(private_key, kid, _load_extra_public_keys(config.env("JWT_EXTRA_PUBLIC_KEYS_DIR")))

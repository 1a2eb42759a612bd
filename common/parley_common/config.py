"""Configuration from the environment (12-factor), with developer-machine defaults."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_PREFIX = "parley:"


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def secret(name: str, default: str | None = None) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    path = env(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return env(name, default)


def with_password(url: str, secret_name: str) -> str:
    """``url`` with the password from secret ``secret_name`` (or NAME_FILE) spliced in."""
    password = secret(secret_name)
    if not password:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def amqp_uri() -> str:
    """AMQP_URI, with AMQP_PASSWORD(_FILE) spliced in (the broker password as a secret)."""
    return with_password(env("AMQP_URI", DEFAULT_AMQP_URI), "AMQP_PASSWORD")


def redis_url() -> str:
    """REDIS_URL, with REDIS_PASSWORD(_FILE) spliced in (the cache password as a secret)."""
    return with_password(env("REDIS_URL", DEFAULT_REDIS_URL), "REDIS_PASSWORD")


def redis_prefix() -> str:
    return env("REDIS_PREFIX", DEFAULT_REDIS_PREFIX)


def instance_id() -> str:
    return env("INSTANCE_ID") or f"{socket.gethostname()}-{os.getpid()}"


def var_dir() -> Path:
    path = Path(env("PARLEY_VAR_DIR", "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(service: str) -> str:
    """DATABASE_URL, with DATABASE_PASSWORD(_FILE) spliced in; SQLite under var/ by default."""
    url = env("DATABASE_URL")
    if not url:
        return f"sqlite:///{(var_dir() / f'{service}.db').as_posix()}"
    return with_password(url, "DATABASE_PASSWORD")

"""Secrets reach the connection URLs from files (Docker secrets), as the containers use them."""
from parley_common import config


def secret_in_file(monkeypatch, tmp_path, variable: str, content: str) -> None:
    """Writes ``content`` to a file and points ``variable`` (…_FILE) at it."""
    secret = tmp_path / variable.lower()
    secret.write_text(content)
    monkeypatch.setenv(variable, str(secret))


def test_redis_password_file_is_spliced_into_redis_url(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    secret_in_file(monkeypatch, tmp_path, "REDIS_PASSWORD_FILE", "s3cret/with:odd@chars\n")
    # URL-quoted, trailing newline of the file dropped, host/port/db kept.
    assert config.redis_url() == "redis://:s3cret%2Fwith%3Aodd%40chars@cache:6379/0"


def test_redis_url_unchanged_without_a_password(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD_FILE", raising=False)
    assert config.redis_url() == "redis://127.0.0.1:6379/3"


def test_amqp_user_from_uri_password_from_file(monkeypatch, tmp_path):
    monkeypatch.setenv("AMQP_URI", "amqp://parley-rooms@rabbitmq:5672/")
    secret_in_file(monkeypatch, tmp_path, "AMQP_PASSWORD_FILE", "abc123")
    assert config.amqp_uri() == "amqp://parley-rooms:abc123@rabbitmq:5672/"

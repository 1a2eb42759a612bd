"""Secrets reach the connection URLs from files (Docker secrets), as the containers use them."""
from parley_common import config


def test_redis_password_file_is_spliced_into_redis_url(monkeypatch, tmp_path):
    secret = tmp_path / "redis_password"
    secret.write_text("s3cret/with:odd@chars\n")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(secret))
    # URL-quoted, trailing newline of the file dropped, host/port/db kept.
    assert config.redis_url() == "redis://:s3cret%2Fwith%3Aodd%40chars@cache:6379/0"


def test_redis_url_unchanged_without_a_password(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD_FILE", raising=False)
    assert config.redis_url() == "redis://127.0.0.1:6379/3"


def test_amqp_user_from_uri_password_from_file(monkeypatch, tmp_path):
    secret = tmp_path / "amqp_rooms_password"
    secret.write_text("abc123")
    monkeypatch.setenv("AMQP_URI", "amqp://parley-rooms@rabbitmq:5672/")
    monkeypatch.setenv("AMQP_PASSWORD_FILE", str(secret))
    assert config.amqp_uri() == "amqp://parley-rooms:abc123@rabbitmq:5672/"

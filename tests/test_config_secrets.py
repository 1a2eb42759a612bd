"""Secrets reach the connection URLs from files (Docker secrets), as the containers use them."""
import pytest

from parley_common import config


@pytest.mark.parametrize("url_var, url, secret_var, password, read, expected", [
    # URL-quoted, the file's trailing newline dropped, host/port/db kept.
    ("REDIS_URL", "redis://cache:6379/0", "REDIS_PASSWORD", "s3cret/with:odd@chars\n", config.redis_url,
     "redis://:s3cret%2Fwith%3Aodd%40chars@cache:6379/0"),
    # The broker user comes from the URI (one per service), its password from the file.
    ("AMQP_URI", "amqp://parley-rooms@rabbitmq:5672/", "AMQP_PASSWORD", "abc123", config.amqp_uri,
     "amqp://parley-rooms:abc123@rabbitmq:5672/"),
])
def test_password_file_is_spliced_into_the_url(monkeypatch, tmp_path, url_var, url, secret_var,
                                               password, read, expected):
    secret = tmp_path / "secret"
    secret.write_text(password)
    monkeypatch.setenv(url_var, url)
    monkeypatch.setenv(f"{secret_var}_FILE", str(secret))
    assert read() == expected


def test_redis_url_unchanged_without_a_password(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD_FILE", raising=False)
    assert config.redis_url() == "redis://127.0.0.1:6379/3"

"""Public REST contract, accounts: register, login, logout, login throttling."""
from __future__ import annotations

import json

import pytest

from helpers import (PASSWORD, Client, fake_address, login, new_user, register,
                     start_extra_gateway, unique)


async def test_register_returns_self_user_without_secrets(suite, http):
    name = unique()
    reply = await Client(http, suite.url).post("/api/v1/auth/register", {
        "username": name, "email": f"{name}@Example.com", "password": PASSWORD,
        "display_name": "  Ada Lovelace "})
    assert reply.status == 201, reply
    user = reply.body["user"]
    assert user["username"] == name and user["email"].lower() == f"{name}@example.com"
    assert user["display_name"] == "Ada Lovelace"
    assert {"id", "avatar_url", "created_at"} <= set(user)
    assert user["created_at"].endswith("Z")
    text = json.dumps(reply.body).lower()
    assert "password" not in text and "hash" not in text and "argon" not in text


async def test_register_reports_every_bad_field_as_422(suite, http):
    client = Client(http, suite.url)
    reply = await client.post("/api/v1/auth/register", {
        "username": "a!", "email": "not-an-address", "password": "short", "display_name": "x" * 65})
    assert reply.status == 422, reply
    assert reply.error["code"] == "validation_failed"
    assert set(reply.error["details"]) == {"username", "email", "password", "display_name"}
    assert all(isinstance(v, str) and v for v in reply.error["details"].values())

    missing = await client.post("/api/v1/auth/register", {})
    assert missing.status == 422
    assert set(missing.error["details"]) == {"username", "email", "password"}

    wrong_types = await client.post("/api/v1/auth/register",
                                    {"username": 5, "email": ["x"], "password": None})
    assert wrong_types.status == 422
    assert set(wrong_types.error["details"]) == {"username", "email", "password"}

    for username in ("ab", "x" * 33, "has space", "ünïcode"):
        reply = await client.post("/api/v1/auth/register", {
            "username": username, "email": f"{unique()}@example.com", "password": PASSWORD})
        assert reply.status == 422 and "username" in reply.error["details"], (username, reply)
    long_email = "a" * 250 + "@example.com"
    reply = await client.post("/api/v1/auth/register", {
        "username": unique(), "email": long_email, "password": PASSWORD})
    assert reply.status == 422 and "email" in reply.error["details"]
    reply = await client.post("/api/v1/auth/register", {
        "username": unique(), "email": f"{unique()}@example.com", "password": "p" * 129})
    assert reply.status == 422 and "password" in reply.error["details"]


async def test_register_duplicates_conflict_case_insensitively(suite, http):
    name = unique("Dup")
    await register(http, suite.url, name)
    client = Client(http, suite.url)
    taken = await client.post("/api/v1/auth/register", {
        "username": name.upper(), "email": f"{unique()}@example.com", "password": PASSWORD})
    assert taken.status == 409 and taken.error["code"] == "username_taken", taken
    email_taken = await client.post("/api/v1/auth/register", {
        "username": unique(), "email": f"{name.upper()}@EXAMPLE.com", "password": PASSWORD})
    assert email_taken.status == 409 and email_taken.error["code"] == "email_taken", email_taken


async def test_login_by_username_or_email_and_uniform_failure(suite, http):
    name = unique()
    user = await register(http, suite.url, name)
    by_name = await login(http, suite.url, name.upper())
    assert set(by_name) == {"access_token", "token_type", "expires_in", "user"}
    assert by_name["token_type"] == "Bearer" and by_name["expires_in"] > 0
    assert by_name["user"]["id"] == user["id"]
    by_email = await login(http, suite.url, f"{name}@example.com")
    assert by_email["user"]["id"] == user["id"]

    client = Client(http, suite.url)
    wrong_password = await client.post("/api/v1/auth/login",
                                       {"username": name, "password": "wrong password"})
    unknown_user = await client.post("/api/v1/auth/login",
                                     {"username": unique("ghost"), "password": "wrong password"})
    assert wrong_password.status == unknown_user.status == 401
    assert wrong_password.body == unknown_user.body
    assert wrong_password.error["code"] == "invalid_credentials"

    missing = await client.post("/api/v1/auth/login", {"username": name})
    assert missing.status == 422 and set(missing.error["details"]) == {"password"}


async def test_token_works_on_both_gateways_and_logout_kills_it_everywhere(suite, http):
    alice = await new_user(http, suite.gateway_urls[0])
    other_gateway = alice.at(suite.gateway_urls[1])
    assert (await other_gateway.get("/api/v1/users/me")).status == 200

    reply = await alice.post("/api/v1/auth/logout")
    assert reply.status == 204, reply
    for client in (alice, other_gateway):
        refused = await client.get("/api/v1/users/me")
        assert refused.status == 401, refused
        assert refused.error["code"] == "unauthenticated"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Logging in again gives a new, working session.
    fresh = await login(http, suite.url, alice.user["username"])
    assert (await alice.get("/api/v1/users/me", token=fresh["access_token"])).status == 200


async def test_bad_tokens_are_401(suite, http):
    client = Client(http, suite.url)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer not.a.jwt"},
                    {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}):
        reply = await client.get("/api/v1/users/me", headers=headers)
        assert reply.status == 401 and reply.error["code"] == "unauthenticated", (headers, reply)
    alice = await new_user(http, suite.url)
    header, payload, signature = alice.token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    reply = await client.get("/api/v1/users/me", token=tampered)
    assert reply.status == 401


@pytest.fixture(scope="module")
def proxied_gateway(suite):
    """A gateway behind a (pretend) trusted proxy: failed logins count against the address in
    X-Forwarded-For, so these tests never use up the limit of the suite's own 127.0.0.1."""
    proc, url = start_extra_gateway(suite, "gateway-proxied", TRUSTED_PROXIES="127.0.0.0/8",
                                    LOGIN_FAILURES_PER_ADDRESS="3", WRITE_RATE_PER_MINUTE="4")
    yield url
    proc.stop()


async def attempt(client: Client, username: str, password: str, address: str):
    return await client.post("/api/v1/auth/login", {"username": username, "password": password},
                             # The trusted proxy appends the address it saw; earlier hops are ignored.
                             headers={"X-Forwarded-For": f"203.0.113.9, {address}"})


async def test_failed_logins_are_throttled_per_account_and_success_resets(
        suite, http, proxied_gateway):
    name = unique()
    await register(http, suite.url, name)
    client = Client(http, proxied_gateway)
    # A new address per attempt: only the account's counter can trip.
    for _ in range(4):
        assert (await attempt(client, name, "bad password", fake_address())).status == 401
    assert (await attempt(client, name, PASSWORD, fake_address())).status == 200  # resets
    for _ in range(5):  # the default limit: 5 failures per account per window
        assert (await attempt(client, name, "bad password", fake_address())).status == 401
    limited = await attempt(client, name.upper(), PASSWORD, fake_address())
    assert limited.status == 429, limited
    assert limited.error["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # Every gateway shares the counters (the suite's own, not behind the proxy, too).
    other = Client(http, suite.gateway_urls[1])
    assert (await other.post("/api/v1/auth/login",
                             {"username": name, "password": PASSWORD})).status == 429
    # Other accounts are not affected.
    assert (await attempt(client, (await register(http, suite.url))["username"], PASSWORD,
                          fake_address())).status == 200


async def test_failed_logins_are_throttled_per_address(suite, http, proxied_gateway):
    name = unique()
    await register(http, suite.url, name)
    client = Client(http, proxied_gateway)
    address = fake_address()
    for _ in range(3):  # three different unknown accounts, one address
        reply = await attempt(client, unique("ghost"), "bad password", address)
        assert reply.status == 401, reply
    limited = await attempt(client, name, PASSWORD, address)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0, limited
    assert (await attempt(client, name, PASSWORD, fake_address())).status == 200


async def test_rest_writes_are_rate_limited_per_user(suite, http, proxied_gateway):
    alice = (await new_user(http, suite.url)).at(proxied_gateway)
    for n in range(4):
        reply = await alice.patch("/api/v1/users/me", {"display_name": f"Alice {n}"})
        assert reply.status == 200, reply
    limited = await alice.patch("/api/v1/users/me", {"display_name": "one too many"})
    assert limited.status == 429 and limited.error["code"] == "rate_limited", limited
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert (await alice.get("/api/v1/users/me")).status == 200  # reads are not limited

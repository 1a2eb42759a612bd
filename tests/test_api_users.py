"""Public REST contract, users: me (GET/PATCH/DELETE), search, get by id."""
from __future__ import annotations

import json


from helpers import Client, new_user, unique


def assert_public(user: dict) -> None:
    assert set(user) >= {"id", "username", "display_name", "avatar_url", "created_at"}
    assert "email" not in user
    assert "password" not in json.dumps(user).lower() and "hash" not in json.dumps(user).lower()


async def test_me_and_patch(suite, http):
    alice = await new_user(http, suite.url)
    me = await alice.get("/api/v1/users/me")
    assert me.status == 200 and me.body["user"]["id"] == alice.id
    assert me.body["user"]["email"].endswith("@example.com")

    patched = await alice.patch("/api/v1/users/me", {"display_name": "Alice A.",
                                                     "avatar_url": ""})
    assert patched.status == 200, patched
    assert patched.body["user"]["display_name"] == "Alice A."
    assert patched.body["user"]["avatar_url"] is None  # pictures: tests/test_api_avatars.py
    # Absent fields stay as they were.
    again = await alice.patch("/api/v1/users/me", {"avatar_url": ""})
    assert again.status == 200 and again.body["user"]["display_name"] == "Alice A."

    bad = await alice.patch("/api/v1/users/me", {"display_name": "x" * 65,
                                                 "avatar_url": "javascript:alert(1)"})
    assert bad.status == 422 and set(bad.error["details"]) == {"display_name", "avatar_url"}
    wrong_type = await alice.patch("/api/v1/users/me", {"display_name": 42})
    assert wrong_type.status == 422 and "display_name" in wrong_type.error["details"]


async def test_search_and_get_show_public_profiles_only(suite, http):
    stem = unique("srch")
    alice = await new_user(http, suite.url, f"{stem}_alice")
    bob = await new_user(http, suite.url, f"{stem}_bob")
    found = await alice.get(f"/api/v1/users?q={stem}&limit=10")
    assert found.status == 200, found
    ids = [user["id"] for user in found.body["users"]]
    assert bob.id in ids and alice.id not in ids  # never yourself
    for user in found.body["users"]:
        assert_public(user)
    limited = await alice.get(f"/api/v1/users?q={stem[:3]}&limit=1")
    assert limited.status == 200 and len(limited.body["users"]) <= 1

    one = await alice.get(f"/api/v1/users/{bob.id}")
    assert one.status == 200 and one.body["user"]["username"] == bob.user["username"]
    assert_public(one.body["user"])
    missing = await alice.get("/api/v1/users/doesnotexist")
    assert missing.status == 404 and missing.error["code"] == "not_found"

    for query in ("limit=0", "limit=101", "limit=abc", "q=" + "x" * 65):
        bad = await alice.get(f"/api/v1/users?{query}")
        assert bad.status == 422, (query, bad)
    both = await alice.get("/api/v1/users?limit=-1&q=" + "x" * 65)
    assert set(both.error["details"]) == {"limit", "q"}


async def test_delete_me_ends_every_session(suite, http):
    alice = await new_user(http, suite.url)
    second_session = await new_user(http, suite.url)  # someone else, unaffected
    for body in (None, {}, {"password": "not my password"}):  # asks for the password again
        refused = await (alice.delete("/api/v1/users/me") if body is None
                         else alice.request("DELETE", "/api/v1/users/me", body))
        assert refused.status in (415, 422), refused
    assert (await alice.get("/api/v1/users/me")).status == 200
    reply = await alice.request("DELETE", "/api/v1/users/me", {"password": alice.password})
    assert reply.status == 204, reply
    for base in suite.gateway_urls:
        assert (await alice.at(base).get("/api/v1/users/me")).status == 401
    gone = await second_session.get(f"/api/v1/users/{alice.id}")
    assert gone.status == 404
    relogin = await Client(http, suite.url).post(
        "/api/v1/auth/login", {"username": alice.user["username"], "password": alice.password})
    assert relogin.status == 401

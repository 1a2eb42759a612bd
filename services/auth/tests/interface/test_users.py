import uuid

import pytest

from parley_common.errors import NotFound, ValidationFailed

PUBLIC_KEYS = {"id", "username", "display_name", "avatar_url", "created_at"}


def assert_public(user: dict) -> None:
    assert set(user) == PUBLIC_KEYS
    assert "@" not in repr(user) and "argon2" not in repr(user)


async def test_get_me_has_email_get_user_does_not(rpc, new_user):
    me = await new_user()
    other = await new_user(display_name="Other")
    assert await rpc.call("auth", "get_me", me["id"]) == me
    seen = await rpc.call("auth", "get_user", me["id"], other["id"])
    assert_public(seen)
    assert seen == {k: v for k, v in other.items() if k not in ("email", "is_admin")}
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_user", me["id"], uuid.uuid4().hex)
    with pytest.raises(NotFound):
        await rpc.call("auth", "get_me", uuid.uuid4().hex)


async def test_get_users_in_batch(rpc, new_user):
    users = [await new_user() for _ in range(3)]
    ids = [u["id"] for u in users]
    found = await rpc.call("auth", "get_users", ids + [uuid.uuid4().hex, ids[0]])
    assert set(found) == set(ids)
    for user in users:
        assert_public(found[user["id"]])
        assert found[user["id"]]["username"] == user["username"]
    assert await rpc.call("auth", "get_users", []) == {}


@pytest.mark.parametrize("value", ["abc", None, [1, 2], [uuid.uuid4().hex] * 501, {"a": 1}])
async def test_get_users_validates(rpc, value):
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "get_users", value)
    assert set(caught.value.details) == {"user_ids"}


async def test_update_me(rpc, new_user, auth_events):
    user = await new_user()
    updated = await rpc.call("auth", "update_me", user["id"], display_name="  New Name ",
                             avatar_url="")
    assert updated == {**user, "display_name": "New Name"}
    _, body = await auth_events.wait_for(
        lambda key, body: key == "user_updated" and body["user"]["id"] == user["id"])
    assert body["user"] == {k: v for k, v in updated.items() if k not in ("email", "is_admin")}

    # None leaves a field alone; "" clears the avatar; a blank name falls back to the username
    assert await rpc.call("auth", "update_me", user["id"]) == updated
    cleared = await rpc.call("auth", "update_me", user["id"], avatar_url="")
    assert cleared["avatar_url"] is None and cleared["display_name"] == "New Name"
    reset = await rpc.call("auth", "update_me", user["id"], display_name="   ")
    assert reset["display_name"] == user["username"]
    assert await rpc.call("auth", "get_me", user["id"]) == reset


async def test_update_me_validates_every_field(rpc, new_user):
    user = await new_user()
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "update_me", user["id"], display_name="n" * 65,
                       avatar_url="file:///etc/passwd")
    assert set(caught.value.details) == {"display_name", "avatar_url"}
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "update_me", user["id"], display_name=["x"], avatar_url=3)
    assert set(caught.value.details) == {"display_name", "avatar_url"}
    assert await rpc.call("auth", "get_me", user["id"]) == user


async def test_search_by_prefix_excluding_caller_and_deleted(rpc, new_user, password):
    tag = uuid.uuid4().hex[:8]
    prefix = f"s{tag}"
    caller = await new_user(username=f"{prefix}_me")
    alice = await new_user(username=f"{prefix}_alice")
    bob = await new_user(username=f"{prefix}_Bob")
    by_display = await new_user(username=f"z{tag}", display_name=f"{prefix.upper()} Display")
    gone = await new_user(username=f"{prefix}_gone")
    wildcard = await new_user(username=f"{prefix}x_wild")  # "_" in q must not be a wildcard
    await new_user(username=f"t{tag}_other")
    await rpc.call("auth", "delete_me", gone["id"], password)

    found = await rpc.call("auth", "search_users", caller["id"], prefix.upper(), 10)
    assert [u["id"] for u in found] == [alice["id"], bob["id"], wildcard["id"], by_display["id"]]
    for user in found:
        assert_public(user)

    found = await rpc.call("auth", "search_users", caller["id"], f"{prefix}_", 10)
    assert [u["id"] for u in found] == [alice["id"], bob["id"]]
    found = await rpc.call("auth", "search_users", caller["id"], prefix, 2)
    assert [u["id"] for u in found] == [alice["id"], bob["id"]]
    found = await rpc.call("auth", "search_users", alice["id"], f"{prefix}_m", 5)
    assert [u["id"] for u in found] == [caller["id"]]
    assert await rpc.call("auth", "search_users", caller["id"], f"{prefix}%", 5) == []


@pytest.mark.parametrize("q,limit,fields", [
    ("a", 0, {"limit"}), ("a", 101, {"limit"}), ("a", "10", {"limit"}), ("a", True, {"limit"}),
    ("a", 2.5, {"limit"}), (None, 10, {"q"}), (5, 10, {"q"}), ("q" * 65, 10, {"q"}),
    ([], None, {"q", "limit"}),
])
async def test_search_validates(rpc, q, limit, fields):
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "search_users", uuid.uuid4().hex, q, limit)
    assert set(caught.value.details) == fields

import pytest
from sqlalchemy import text

from parley_common.errors import InvalidCredentials, NotFound, ValidationFailed
from parley_common.timeutil import iso

PUBLIC_KEYS = {"id", "username", "display_name", "avatar_url", "created_at"}


async def test_new_session_is_active(rpc, logged_in):
    _, reply = await logged_in()
    assert await rpc.call("auth", "session_active", reply["session_id"]) is True
    assert await rpc.call("auth", "session_active", "no-such-session") is False


async def test_logout_revokes_and_announces(rpc, logged_in, auth_events, auth_db):
    user, reply = await logged_in()
    _, other = await logged_in()
    sid = reply["session_id"]
    assert await rpc.call("auth", "logout", user["id"], sid) is None
    assert await rpc.call("auth", "session_active", sid) is False
    assert await rpc.call("auth", "session_active", other["session_id"]) is True
    _, body = await auth_events.wait_for(
        lambda key, body: key == "session_revoked" and body["session_id"] == sid)
    with auth_db.connect() as connection:
        expires_at, revoked_at = connection.execute(
            text("SELECT expires_at, revoked_at FROM sessions WHERE id = :id"), {"id": sid}).one()
    assert body == {"session_id": sid, "user_id": user["id"], "expires_at": iso(expires_at)}
    assert revoked_at is not None

    # a second logout is fine, keeps the first revocation time and repeats the event
    assert await rpc.call("auth", "logout", user["id"], sid) is None
    with auth_db.connect() as connection:
        assert connection.execute(text("SELECT revoked_at FROM sessions WHERE id = :id"),
                                  {"id": sid}).scalar_one() == revoked_at
    await auth_events.wait_for(lambda key, body: len(auth_events.matching(
        lambda k, b: k == "session_revoked" and b["session_id"] == sid)) >= 2)


async def test_logout_of_someone_elses_session_is_not_found(rpc, logged_in):
    _, reply = await logged_in()
    intruder, _ = await logged_in()
    with pytest.raises(NotFound):
        await rpc.call("auth", "logout", intruder["id"], reply["session_id"])
    assert await rpc.call("auth", "session_active", reply["session_id"]) is True


async def test_expired_session_is_not_active(rpc, logged_in, auth_db):
    _, reply = await logged_in()
    with auth_db.begin() as connection:
        connection.execute(text("UPDATE sessions SET expires_at = now() - interval '1 second' "
                                "WHERE id = :id"), {"id": reply["session_id"]})
    assert await rpc.call("auth", "session_active", reply["session_id"]) is False


async def test_delete_me_revokes_every_session_and_announces(rpc, logged_in, password,
                                                             auth_events, auth_db):
    user, first = await logged_in()
    second = await rpc.call("auth", "login", user["email"], password)
    assert await rpc.call("auth", "delete_me", user["id"]) is None

    for reply in (first, second):
        assert await rpc.call("auth", "session_active", reply["session_id"]) is False
        await auth_events.wait_for(lambda key, body, sid=reply["session_id"]:
                                   key == "session_revoked" and body["session_id"] == sid
                                   and body["user_id"] == user["id"])
    _, body = await auth_events.wait_for(
        lambda key, body: key == "user_deleted" and body["user"]["id"] == user["id"])
    assert set(body["user"]) == PUBLIC_KEYS
    with auth_db.connect() as connection:
        open_sessions = connection.execute(
            text("SELECT count(*) FROM sessions WHERE user_id = :id AND revoked_at IS NULL"),
            {"id": user["id"]}).scalar_one()
    assert open_sessions == 0

    with pytest.raises(InvalidCredentials):
        await rpc.call("auth", "login", user["username"], password)
    for method, args in (("get_me", (user["id"],)), ("get_user", (first["user"]["id"], user["id"])),
                         ("update_me", (user["id"],))):
        with pytest.raises(NotFound):
            await rpc.call("auth", method, *args)
    assert await rpc.call("auth", "get_users", [user["id"]]) == {}
    # the name stays reserved: a deleted account's username and email cannot be re-registered
    with pytest.raises(Exception) as caught:
        await rpc.call("auth", "register", user["username"], f"x{user['email']}", password)
    assert caught.value.code == "username_taken"
    with pytest.raises(Exception) as caught:
        await rpc.call("auth", "register", "x" + user["username"], user["email"], password)
    assert caught.value.code == "email_taken"
    # repeating the call (a redelivery) is harmless
    assert await rpc.call("auth", "delete_me", user["id"]) is None


@pytest.mark.parametrize("method,args", [
    ("session_active", (None,)), ("session_active", (42,)), ("session_active", ("",)),
    ("logout", (None, "sid")), ("logout", ("uid", ["sid"])),
    ("get_me", (1,)), ("delete_me", ({},)), ("update_me", (None,)),
])
async def test_session_methods_reject_wrong_types(rpc, method, args):
    with pytest.raises(ValidationFailed):
        await rpc.call("auth", method, *args)


async def test_domain_errors_are_logged_as_expected_not_as_errors(rpc, auth):
    with pytest.raises(InvalidCredentials):
        await rpc.call("auth", "login", "nobody-at-all", "some password")

    def expected_record():
        return [r for r in auth.proc.log_records()
                if "(expected)" in str(r.get("event")) and "auth.login" in str(r.get("event"))]

    from parley_common.testing import wait_until
    record = wait_until(expected_record, 5, what="an (expected) log record")[-1]
    assert record["level"] == "info" and "exception" not in record
    assert not [r for r in auth.proc.log_records() if r.get("level") in ("error", "critical")]


async def test_ping_answers_for_readiness(rpc):
    assert await rpc.call("auth", "ping") == "pong"

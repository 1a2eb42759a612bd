import asyncio
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from sqlalchemy import text

from parley_common.errors import InvalidCredentials, NotFound, Unauthenticated, ValidationFailed
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
        last_used_at, revoked_at = connection.execute(
            text("SELECT last_used_at, revoked_at FROM sessions WHERE id = :id"),
            {"id": sid}).one()
    # Remembered for as long as the session's newest access token lives, and no longer.
    token_end = last_used_at + timedelta(seconds=reply["expires_in"])
    assert body == {"session_id": sid, "user_id": user["id"], "expires_at": iso(token_end)}
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
    assert await rpc.call("auth", "delete_me", user["id"], password) is None

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
    assert await rpc.call("auth", "delete_me", user["id"], password) is None


@pytest.mark.parametrize("method,args", [
    ("session_active", (None,)), ("session_active", (42,)), ("session_active", ("",)),
    ("logout", (None, "sid")), ("logout", ("uid", ["sid"])),
    ("revoke_session", ("uid", None)), ("revoke_other_sessions", (7, "sid")),
    ("list_sessions", (None,)), ("change_password", ("uid", 7, "a", "b")),
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


# --- refresh -----------------------------------------------------------------------------

def claims(reply: dict) -> dict:
    return jwt.decode(reply["access_token"], options={"verify_signature": False})


def session_row(auth_db, sid: str):
    with auth_db.connect() as connection:
        return connection.execute(text("SELECT created_at, expires_at FROM sessions WHERE id = :id"),
                                  {"id": sid}).one()


async def test_rotation_slides_the_session_and_issues_new_credentials(rpc, logged_in, auth_db):
    user, reply = await logged_in()
    sid = reply["session_id"]
    _, before = session_row(auth_db, sid)
    await asyncio.sleep(1.1)  # token times are whole seconds
    fresh = await rpc.call("auth", "rotate_refresh", reply["refresh_token"])
    assert set(fresh) == {"access_token", "token_type", "expires_in", "user", "session_id",
                          "refresh_token", "refresh_expires_in"}
    assert fresh["session_id"] == sid and fresh["user"]["id"] == user["id"]
    assert fresh["access_token"] != reply["access_token"] and fresh["expires_in"] > 0
    assert fresh["refresh_token"] != reply["refresh_token"]
    old, new = claims(reply), claims(fresh)
    assert new["sub"] == user["id"] and new["sid"] == sid and new["exp"] > old["exp"]
    assert new["exp"] - new["iat"] == fresh["expires_in"] == 900  # the token stays short
    _, after = session_row(auth_db, sid)
    assert after > before  # the session (idle timeout) slid forward
    assert await rpc.call("auth", "session_active", sid) is True
    with auth_db.connect() as connection:  # only hashes are stored
        stored = connection.execute(text("SELECT refresh_hash, refresh_previous FROM sessions "
                                         "WHERE id = :id"), {"id": sid}).one()
    assert fresh["refresh_token"] not in str(stored) and reply["refresh_token"] not in str(stored)


async def test_reuse_ends_the_session_but_a_guess_does_not(rpc, logged_in, auth_events):
    user, reply = await logged_in()
    sid = reply["session_id"]
    second = await rpc.call("auth", "rotate_refresh", reply["refresh_token"])
    for guess in (f"{sid}.1.forged", f"{sid}.0.forged", f"{sid}.2.forged", "nonsense", None, 7):
        with pytest.raises(Unauthenticated):
            await rpc.call("auth", "rotate_refresh", guess)
    assert await rpc.call("auth", "session_active", sid) is True  # guesses end nothing
    with pytest.raises(Unauthenticated, match="already used"):
        await rpc.call("auth", "rotate_refresh", reply["refresh_token"])
    assert await rpc.call("auth", "session_active", sid) is False
    await auth_events.wait_for(lambda key, body: key == "session_revoked"
                               and body["session_id"] == sid)
    with pytest.raises(Unauthenticated):
        await rpc.call("auth", "rotate_refresh", second["refresh_token"])


async def test_two_uses_at_once_of_one_credential_end_the_session(rpc, logged_in):
    user, reply = await logged_in()
    results = await asyncio.gather(
        *(rpc.call("auth", "rotate_refresh", reply["refresh_token"]) for _ in range(2)),
        return_exceptions=True)
    assert sum(isinstance(r, Unauthenticated) for r in results) >= 1, results
    assert await rpc.call("auth", "session_active", reply["session_id"]) is False


async def test_rotation_ends_with_the_session(rpc, logged_in, auth_db, password):
    user, reply = await logged_in()
    await rpc.call("auth", "logout", user["id"], reply["session_id"])
    with pytest.raises(Unauthenticated):  # logged out
        await rpc.call("auth", "rotate_refresh", reply["refresh_token"])

    user, reply = await logged_in()
    with auth_db.begin() as connection:  # lapsed: unused for longer than REFRESH_TTL_SECONDS
        connection.execute(text("UPDATE sessions SET expires_at = now() - interval '1 second' "
                                "WHERE id = :id"), {"id": reply["session_id"]})
    with pytest.raises(Unauthenticated):
        await rpc.call("auth", "rotate_refresh", reply["refresh_token"])

    user, reply = await logged_in()
    await rpc.call("auth", "delete_me", user["id"], password)
    with pytest.raises(Unauthenticated):  # account deleted
        await rpc.call("auth", "rotate_refresh", reply["refresh_token"])


async def test_rotation_never_goes_past_the_session_maximum_age(rpc, logged_in, auth_db):
    user, reply = await logged_in()
    sid = reply["session_id"]
    with auth_db.begin() as connection:  # logged in 30 days minus 100 s ago (the default cap)
        connection.execute(text("UPDATE sessions SET created_at = now() - interval '30 days' "
                                "+ interval '100 seconds' WHERE id = :id"), {"id": sid})
    created_at, _ = session_row(auth_db, sid)
    capped = await rpc.call("auth", "rotate_refresh", reply["refresh_token"])
    assert claims(capped)["exp"] == int(created_at.timestamp()) + 30 * 24 * 3600
    assert 0 < capped["expires_in"] <= 100 and 0 < capped["refresh_expires_in"] <= 100
    with auth_db.begin() as connection:
        connection.execute(text("UPDATE sessions SET created_at = now() - interval '31 days' "
                                "WHERE id = :id"), {"id": sid})
    with pytest.raises(Unauthenticated):
        await rpc.call("auth", "rotate_refresh", capped["refresh_token"])


async def test_logout_announces_the_expiry_a_refresh_moved(rpc, logged_in, auth_events):
    user, reply = await logged_in()
    sid = reply["session_id"]
    await asyncio.sleep(1.1)
    fresh = await rpc.call("auth", "rotate_refresh", reply["refresh_token"])
    await rpc.call("auth", "logout", user["id"], sid)
    _, body = await auth_events.wait_for(
        lambda key, body: key == "session_revoked" and body["session_id"] == sid)
    # The gateways keep the session refused at least until its newest token has expired.
    assert body["expires_at"] >= iso(datetime.fromtimestamp(claims(fresh)["exp"], timezone.utc))

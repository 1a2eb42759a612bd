"""Administrators in auth: the first account is one, the role is granted and taken back
(never the last administrator's), deactivation ends sessions and refuses logins, and every
change is one audit entry (a repeat writes none)."""
import uuid

import pytest
from sqlalchemy import text

from parley_common.errors import Conflict, Forbidden, NotFound, ParleyError, Unauthenticated


@pytest.fixture
async def first_admin(rpc, new_user, auth_db):
    """The run's first account: the administrator nobody had to name."""
    await new_user()  # makes sure there is a first account
    with auth_db.connect() as connection:
        first_id, is_admin = connection.execute(text(
            "SELECT id, is_admin FROM users ORDER BY created_at, id LIMIT 1")).one()
    assert is_admin, "the first account registered must be an administrator"
    return first_id


def audit_rows(auth_db, action: str, target_id: str) -> list:
    with auth_db.connect() as connection:
        return connection.execute(text(
            "SELECT actor_id, target_label FROM audit_log WHERE action = :a AND target_id = :t"),
            {"a": action, "t": target_id}).all()


async def test_only_the_first_account_is_made_an_administrator(rpc, new_user, first_admin):
    later = await new_user()
    assert later["is_admin"] is False
    assert await rpc.call("auth", "is_admin", first_admin) is True
    assert await rpc.call("auth", "is_admin", later["id"]) is False
    assert await rpc.call("auth", "is_admin", uuid.uuid4().hex) is False


async def test_non_admins_are_refused_every_admin_method(rpc, new_user, auth_db):
    user, other = await new_user(), await new_user()
    calls = [("admin_list_users", ()), ("admin_set_active", (other["id"], False)),
             ("admin_set_role", (other["id"], True)), ("admin_audit", ())]
    for method, args in calls:
        with pytest.raises(Forbidden):
            await rpc.call("auth", method, user["id"], *args)
    assert await rpc.call("auth", "get_me", other["id"]) == other  # untouched
    assert audit_rows(auth_db, "user_deactivated", other["id"]) == []


async def test_the_last_administrator_keeps_the_role(rpc, new_user, first_admin, auth_db):
    with pytest.raises(Conflict) as refused:
        await rpc.call("auth", "admin_set_role", first_admin, first_admin, False)
    assert "last administrator" in refused.value.message
    helper = await new_user()
    granted = await rpc.call("auth", "admin_set_role", first_admin, helper["id"], True)
    assert granted["is_admin"] is True
    # Now there are two: one may step down, and then the other is the last again.
    await rpc.call("auth", "admin_set_role", helper["id"], helper["id"], False)
    assert audit_rows(auth_db, "admin_granted", helper["id"]) == [(first_admin, helper["username"])]
    assert audit_rows(auth_db, "admin_revoked", helper["id"]) == [(helper["id"], helper["username"])]
    with pytest.raises(Forbidden):
        await rpc.call("auth", "admin_list_users", helper["id"])


async def test_deactivation_revokes_sessions_refuses_login_and_refresh(
        rpc, logged_in, first_admin, auth_events, auth_db, password):
    user, session = await logged_in()
    changed = await rpc.call("auth", "admin_set_active", first_admin, user["id"], False)
    assert changed["deactivated"] is True
    await auth_events.wait_for(lambda kind, payload: kind == "session_revoked"
                               and payload["session_id"] == session["session_id"])
    assert await rpc.call("auth", "session_active", session["session_id"]) is False
    with pytest.raises(ParleyError) as refused:
        await rpc.call("auth", "login", user["username"], password)
    assert refused.value.code == "account_deactivated" and refused.value.status == 403
    with pytest.raises(Unauthenticated):
        await rpc.call("auth", "rotate_refresh", session["refresh_token"])
    again = await rpc.call("auth", "admin_set_active", first_admin, user["id"], False)
    assert again["deactivated"] is True
    assert len(audit_rows(auth_db, "user_deactivated", user["id"])) == 1

    await rpc.call("auth", "admin_set_active", first_admin, user["id"], True)
    assert (await rpc.call("auth", "login", user["username"], password))["access_token"]
    assert len(audit_rows(auth_db, "user_reactivated", user["id"])) == 1
    with pytest.raises(NotFound):
        await rpc.call("auth", "admin_set_active", first_admin, uuid.uuid4().hex, False)

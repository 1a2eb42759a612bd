"""Administrators: who is one, what they see of accounts, and the account actions they take
(deactivate / reactivate, grant / take back the role), each recorded in the audit log in the
transaction of the change. Functions on the service's SQLAlchemy session; the service commits
and announces (service.py's admin_* methods).

Who is an administrator: an account whose ``is_admin`` is set (the first account ever
registered gets it; an administrator grants it), or whose username ``PARLEY_ADMINS`` names
(comma- or space-separated; the operator's word, so the API cannot take it back). Only
accounts neither deleted nor deactivated act as administrators.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session as DbSession

from parley_common import audit, config
from parley_common.db import like_escape
from parley_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from parley_common.limits import MAX_QUERY
from parley_common.text import storable
from parley_common.timeutil import iso, utcnow

from . import validation as v
from .models import Session, User, audit_log

ADMINS_VARIABLE = "PARLEY_ADMINS"
STATUSES = ("active", "deactivated")


def configured_admins() -> frozenset[str]:
    """Lower-case usernames named by PARLEY_ADMINS (read at each call: cheap, and a test or an
    operator changing it needs no restart of anything but this process's environment)."""
    raw = config.env(ADMINS_VARIABLE, "") or ""
    return frozenset(name.lower() for name in re.split(r"[\s,]+", raw) if name)


def is_admin(user: User) -> bool:
    return bool(user.is_admin) or user.username_lower in configured_admins()


def _admin_clause():
    named = configured_admins()
    return or_(User.is_admin.is_(True), User.username_lower.in_(named)) if named \
        else User.is_admin.is_(True)


def _usable():
    """Accounts that may act: neither deleted nor deactivated."""
    return (User.deleted_at.is_(None), User.deactivated_at.is_(None))


def is_first_account(db: DbSession) -> bool:
    return db.scalar(select(User.id).limit(1)) is None


def acting_admin(db: DbSession, actor_id: Any) -> User | None:
    """The actor if they are a usable administrator, else None."""
    actor_id = v.require_id("user_id", actor_id)
    user = db.get(User, actor_id)
    if user is None or user.deleted_at is not None or user.deactivated_at is not None \
            or not is_admin(user):
        return None
    return user


def require_admin(db: DbSession, actor_id: Any) -> User:
    actor = acting_admin(db, actor_id)
    if actor is None:
        raise Forbidden("Only administrators may do this.")
    return actor


def admin_user(user: User) -> dict:
    """An account as administrators see it."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "avatar_url": user.avatar_url, "created_at": iso(user.created_at),
            "email": user.email, "is_admin": is_admin(user),
            "admin_source": ("config" if user.username_lower in configured_admins()
                             else "granted" if user.is_admin else None),
            "deactivated": user.deactivated_at is not None,
            "deactivated_at": iso(user.deactivated_at)}


def list_users(db: DbSession, q: Any, status: Any, role: Any, limit: Any, cursor: Any) -> dict:
    errors: v.Errors = {}
    if q is not None and (not isinstance(q, str) or not storable(q) or len(q) > MAX_QUERY):
        errors["q"] = f"q must be a string of at most {MAX_QUERY} characters."
    if status is not None and status not in STATUSES:
        errors["status"] = "status must be 'active' or 'deactivated'."
    if role is not None and role != "admin":
        errors["role"] = "role must be 'admin'."
    limit = v.limit(limit, errors)
    if cursor is not None and (not isinstance(cursor, str) or not cursor or len(cursor) > 64
                               or not storable(cursor)):
        errors["cursor"] = "is not a cursor this listing handed out"
    v.raise_if(errors)
    statement = select(User).where(User.deleted_at.is_(None))
    text = (q or "").strip().lower()
    if text:
        pattern = f"%{like_escape(text)}%"
        statement = statement.where(or_(User.username_lower.like(pattern, escape="\\"),
                                        func.lower(User.display_name).like(pattern, escape="\\"),
                                        User.email_lower.like(pattern, escape="\\")))
    if status == "active":
        statement = statement.where(User.deactivated_at.is_(None))
    elif status == "deactivated":
        statement = statement.where(User.deactivated_at.is_not(None))
    if role == "admin":
        statement = statement.where(_admin_clause())
    if cursor is not None:
        statement = statement.where(User.username_lower > cursor)
    users = db.scalars(statement.order_by(User.username_lower).limit(limit + 1)).all()
    page = users[:limit]
    # Rendered before the rollback, which expires every object (a query each otherwise).
    result = {"users": [admin_user(user) for user in page],
              "next_cursor": page[-1].username_lower if len(users) > limit else None}
    db.rollback()
    return result


def _target(db: DbSession, target_id: Any) -> User:
    target_id = v.require_id("target_id", target_id)
    user = db.get(User, target_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("No such user.")
    return user


def _record(db: DbSession, actor: User, action: str, target: User) -> None:
    audit.record(db, audit_log, actor_id=actor.id, actor_username=actor.username, action=action,
                 target_type="user", target_id=target.id, target_label=target.username)


def set_active(db: DbSession, actor: User, target_id: Any, active: Any) -> tuple[User, list[Session]]:
    """Stage (de)activation and its audit entry; the live sessions a deactivation ends (the
    caller revokes and announces them in the same commit). A repeat changes nothing."""
    if not isinstance(active, bool):
        raise ValidationFailed(details={"active": "must be true or false"})
    target = _target(db, target_id)
    if not active and target.id == actor.id:
        raise Conflict("You cannot deactivate your own account.")
    if active == (target.deactivated_at is None):
        return target, []
    if active:
        target.deactivated_at = None
        _record(db, actor, "user_reactivated", target)
        return target, []
    now = utcnow()
    target.deactivated_at = now
    target.updated_at = now
    _record(db, actor, "user_deactivated", target)
    sessions = db.scalars(select(Session).where(Session.user_id == target.id,
                                                Session.revoked_at.is_(None),
                                                Session.expires_at > now)).all()
    return target, list(sessions)


def set_role(db: DbSession, actor: User, target_id: Any, admin: Any) -> User:
    """Grant or take back the role (staged with its audit entry). Never the last usable
    administrator's, nor one PARLEY_ADMINS names."""
    if not isinstance(admin, bool):
        raise ValidationFailed(details={"admin": "must be true or false"})
    target = _target(db, target_id)
    if admin:
        if target.is_admin:
            return target
        if target.deactivated_at is not None:
            raise Conflict("Reactivate this account before making it an administrator.")
        target.is_admin = True
        _record(db, actor, "admin_granted", target)
        return target
    if target.username_lower in configured_admins():
        raise Conflict(f"This account is an administrator because {ADMINS_VARIABLE} names it; "
                       "the operator must change that setting.")
    if not target.is_admin:
        return target
    # Locks the administrators' rows (PostgreSQL): two admins taking the role from each other
    # at once cannot both pass the count.
    admins = db.scalars(select(User.id).where(_admin_clause(), *_usable())
                        .with_for_update()).all()
    if [admin_id for admin_id in admins if admin_id != target.id] == []:
        raise Conflict("This is the last administrator; make someone else one first.")
    target.is_admin = False
    _record(db, actor, "admin_revoked", target)
    return target


"""The auth nameko service: registration, login, sessions, profiles, user search."""
from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

import jwt
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from parley_common import audit, config, outbox
from parley_common.db import autocommit_reads, like_escape
from parley_common.errors import (Conflict, Forbidden, InvalidCredentials, NotFound, TooLarge,
                                  Unauthenticated, UnsupportedMediaType, ValidationFailed)
from parley_common.ids import new_id
from parley_common.limits import AVATAR_MEDIA_TYPES, MAX_AVATAR_BYTES, MAX_QUERY
from parley_common.logs import redacted
from parley_common.nameko_support import Database, Logger, off_the_hub, rpc
from parley_common.timeutil import aware, iso, utcnow
from parley_common.text import PROBLEM, storable
from parley_common.users import avatar_url as avatar_address, public_user

from . import admin, avatars, models
from . import validation as v
from .keys import Keyring
from .models import AvatarImage, Session, User
from .passwords import Passwords

REFRESH_HISTORY = 16  # used refresh credentials remembered per session (to detect their reuse)
# Pictures decoded at once by this process: one may take ~100 MB while it is (3072x3072 at 4
# bytes a pixel, and its copies). threading is green here (__main__ patches it before this
# import): a waiting worker yields; the gateway's RPC timeout bounds the wait.
AVATAR_DECODES = threading.BoundedSemaphore(2)


def self_user(user: User) -> dict[str, Any]:
    """``user``: a User or a row of SELF_USER."""
    return {**public_user(user), "email": user.email, "is_admin": admin.is_admin(user)}


# What self_user needs of a user who is not deleted, as a plain row (built once: a reused
# statement keeps its memoized cache key). get_me reads it instead of loading the ORM entity:
# py-spy put a quarter of auth's samples per get_me in Session.get's identity-map load.
SELF_USER = (select(User.id, User.username, User.username_lower, User.display_name,
                    User.avatar_url, User.created_at, User.email, User.is_admin)
             .where(User.id == bindparam("user_id"), User.deleted_at.is_(None)))


class Crypto(DependencyProvider):
    """Signing keys and the password hasher, loaded once per process (a bad key stops the
    process at start-up instead of failing every login)."""

    def setup(self):
        self.keyring = Keyring.from_env()
        self.passwords = Passwords()
        self.token_ttl = config.env_int("ACCESS_TOKEN_TTL_SECONDS", 900)
        # No refresh carries a session past this long after its login.
        self.session_max = config.env_int("SESSION_MAX_SECONDS", 30 * 24 * 3600)
        # A session unused (no refresh) this long ends; each refresh pushes it forward.
        self.refresh_ttl = config.env_int("REFRESH_TTL_SECONDS", 14 * 24 * 3600)

    def get_dependency(self, worker_ctx):
        return self


class AuthService:
    name = "auth"

    db = Database("auth")
    log = Logger()
    crypto = Crypto()
    dispatch = EventDispatcher()  # exchange "auth.events", routing key = event type

    # --- events: committed with their change in the outbox, published after the commit ------
    @cached_property
    def _outbox(self) -> outbox.Outbox:
        """One per worker (nameko makes a service instance per worker)."""
        return outbox.Outbox(models.outbox, self.db)

    def _publish(self, events: list[outbox.Event]) -> None:
        for event_type, payload in events:
            self.dispatch(event_type, payload)  # nameko waits for the broker's confirm

    def _emit(self, events: list[outbox.Event]) -> None:
        outbox.publish_committed(self._outbox, events, self._publish, self.log)

    @timer(interval=outbox.RELAY_SECONDS)
    def relay_outbox(self):
        outbox.relay_tick(self._outbox, self._publish, self.log)

    # --- registration ----------------------------------------------------------------
    @rpc
    def register(self, username, email, password, display_name=None, avatar_url=None,
                 request_id=None):
        """``request_id``, picked by the caller per request, makes a redelivered or retried call
        answer with the user the first one made (instead of "username taken")."""
        errors: v.Errors = {}
        username = v.username(username, errors)
        email = v.email(email, errors)
        password = v.password(password, username, errors)
        display = v.display_name(display_name, errors) if display_name is not None else ""
        avatar = v.avatar_url(avatar_url, errors) if avatar_url is not None else ""
        if request_id is not None:
            request_id = v.identifier("request_id", request_id, errors)
        v.raise_if(errors)

        made = self._registered_by(request_id, username.lower())
        if made is not None:
            self.log.info("registration_replayed", user_id=made.id)
            return self_user(made)
        # The unique constraints decide; this check only spares a hash in the common case.
        made = self._twin_or_conflict(request_id, username.lower(), email.lower())
        if made is not None:  # a twin of this request committed since the look-up above
            return self_user(made)
        now = utcnow()
        user = User(id=new_id(), username=username, username_lower=username.lower(),
                    email=email, email_lower=email.lower(), display_name=display or username,
                    avatar_url=avatar or None, password_hash=self.crypto.passwords.hash(password),
                    created_at=now, updated_at=now, registration_key=request_id,
                    is_admin=admin.is_first_account(self.db))  # someone must be in charge
        self.db.add(user)
        events = [("user_registered", {"user": public_user(user)})]
        try:
            self._outbox.commit(events)  # a taken name fails when the commit flushes the user
        except IntegrityError:
            self.db.rollback()  # lost a race with a concurrent registration (or a twin request)
            made = self._twin_or_conflict(request_id, username.lower(), email.lower())
            if made is not None:
                return self_user(made)
            self.log.info("registration_race_lost")
            raise Conflict("That user already exists.")
        self.log.info("user_registered", user_id=user.id)
        self._emit(events)
        return self_user(user)

    def _registered_by(self, request_id: str | None, username_lower: str) -> User | None:
        if request_id is None:
            return None
        return self.db.scalar(select(User).where(User.registration_key == request_id,
                                                 User.username_lower == username_lower,
                                                 User.deleted_at.is_(None)))

    def _twin_or_conflict(self, request_id: str | None, username_lower: str,
                          email_lower: str) -> User | None:
        """The user a twin of this request made meanwhile, else Conflict when the name or the
        address belongs to someone; None while both are free."""
        try:
            self._raise_if_taken(username_lower, email_lower)
        except Conflict:
            made = self._registered_by(request_id, username_lower)
            if made is None:
                raise
            return made
        return None

    def _raise_if_taken(self, username_lower: str, email_lower: str) -> None:
        if self.db.scalar(select(User.id).where(User.username_lower == username_lower)):
            raise Conflict("That username is already taken.",
                           {"username": "That username is already taken."}, code="username_taken")
        if self.db.scalar(select(User.id).where(User.email_lower == email_lower)):
            raise Conflict("That email address is already registered.",
                           {"email": "That email address is already registered."},
                           code="email_taken")

    # --- login, sessions, tokens -----------------------------------------------------
    @rpc
    def login_account(self, login):
        """The account id a login (username or e-mail, any case, padded) names, or None: the
        gateway counts login attempts per account with it. No hash, one indexed lookup."""
        if not isinstance(login, str):
            return None
        user = self._user_by_login(login.strip().lower())
        return user.id if user is not None else None

    def _user_by_login(self, key: str) -> User | None:
        if not key or len(key) > v.MAX_EMAIL or not storable(key):
            return None
        column = User.email_lower if "@" in key else User.username_lower
        return self.db.scalar(select(User).where(column == key, User.deleted_at.is_(None)))

    @rpc
    def login(self, login, password, user_agent=None):
        errors: v.Errors = {}
        if not isinstance(login, str):
            errors["login"] = "Username or email is required and must be a string."
        if not isinstance(password, str):
            errors["password"] = "Password is required and must be a string."
        if user_agent is not None and not isinstance(user_agent, str):
            errors["user_agent"] = "User agent must be a string."
        v.raise_if(errors)

        key = login.strip().lower()
        if not key or not password or len(password) > v.MAX_PASSWORD or len(key) > v.MAX_EMAIL \
                or not storable(key) or not storable(password):
            raise InvalidCredentials()  # no account can match: not worth a hash
        if user_agent is not None and not storable(user_agent):
            user_agent = None  # informational only; not worth refusing a login over
        user = self._user_by_login(key)
        passwords = self.crypto.passwords
        # Unknown user: verify against a dummy hash so both failures take the same time.
        if not passwords.verify(user.password_hash if user else None, password):
            self.log.info("login_failed")
            raise InvalidCredentials()
        if user.deactivated_at is not None:  # said only to whoever knows the password
            self.log.info("login_refused_deactivated", user_id=user.id)
            raise Forbidden("This account has been deactivated by an administrator.",
                            code="account_deactivated")
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash(password)
            self.log.info("password_rehashed", user_id=user.id)

        issued = int(time.time())
        created = datetime.fromtimestamp(issued, timezone.utc)
        session = Session(id=new_id(), user_id=user.id, created_at=created, last_used_at=created,
                          expires_at=self._session_expiry(issued, issued),
                          user_agent=(user_agent or "")[:v.MAX_USER_AGENT] or None)
        refresh_token, session.refresh_hash = _new_refresh(session.id, 1)
        session.refresh_generation = 1
        self.db.add(session)
        self.db.commit()
        self.log.info("logged_in", user_id=user.id, session=redacted(session.id))
        return self._session_reply(user, session.id, issued, session.expires_at, refresh_token)

    def _session_expiry(self, created: int, now: int) -> datetime:
        """Idle timeout from now, never past the session's maximum age."""
        return datetime.fromtimestamp(min(now + self.crypto.refresh_ttl,
                                          created + self.crypto.session_max), timezone.utc)

    @rpc
    def rotate_refresh(self, refresh_token):
        """A refresh credential for a new access token and the next refresh credential. One
        that was already used (its hash is among the session's last REFRESH_HISTORY) ends the
        whole session: someone holds a copy. Anything else that does not match is merely
        refused, so knowing a session id is not enough to end a session."""
        parsed = _parse_refresh(refresh_token)
        if parsed is None:
            raise Unauthenticated("The refresh credential is invalid; log in again.")
        session_id, generation = parsed
        found = self.db.execute(
            select(Session, User).join(User, User.id == Session.user_id)
            .where(Session.id == session_id)).first()
        if found is None:
            raise Unauthenticated("The refresh credential is invalid; log in again.")
        session, user = found
        now = utcnow()
        if session.revoked_at is not None or aware(session.expires_at) <= now \
                or user.deleted_at is not None or user.deactivated_at is not None:
            raise Unauthenticated("This session has ended; log in again.")
        digest = _digest(refresh_token)
        used = (session.refresh_previous or "").split()
        if digest in used:
            self._reused(session)
        if generation != session.refresh_generation \
                or not secrets.compare_digest(digest, session.refresh_hash or ""):
            raise Unauthenticated("The refresh credential is invalid; log in again.")
        issued = int(time.time())
        created = int(aware(session.created_at).timestamp())
        if created + self.crypto.session_max <= issued:
            raise Unauthenticated("This session has reached its maximum age; log in again.")
        next_token, next_hash = _new_refresh(session_id, generation + 1)
        expires_at = self._session_expiry(created, issued)
        # Conditional on the generation: of two uses of one credential, only one rotates it.
        moved = self.db.execute(
            update(Session).where(Session.id == session_id, Session.revoked_at.is_(None),
                                  Session.refresh_generation == generation)
            .values(refresh_generation=generation + 1, refresh_hash=next_hash,
                    refresh_previous=" ".join([digest, *used][:REFRESH_HISTORY]),
                    last_used_at=now, expires_at=expires_at)).rowcount
        if moved != 1:
            self.db.rollback()
            self._reused(self.db.get(Session, session_id))
        self.db.commit()
        self.log.info("refresh_rotated", user_id=user.id, session=redacted(session_id))
        return self._session_reply(user, session_id, issued, expires_at, next_token)

    def _reused(self, session: Session | None):
        self._revoke([session], "refresh_reuse")
        raise Unauthenticated("This refresh credential was already used: the session has been "
                              "ended for safety; log in again.")

    def _session_reply(self, user: User, session_id: str, issued: int, expires_at: datetime,
                       refresh_token: str) -> dict:
        """Login's and rotation's answer: an access token that never outlives the session, and
        the refresh credential."""
        session_end = int(expires_at.timestamp())
        reply = self._token_reply(user, session_id, issued,
                                  min(issued + self.crypto.token_ttl, session_end))
        return {**reply, "refresh_token": refresh_token,
                "refresh_expires_in": session_end - issued}

    def _revoke(self, sessions: list, reason: str) -> None:
        """End these sessions now and announce it (gateways drop their tokens and sockets)."""
        now = utcnow()
        ended = [session for session in sessions if session is not None]
        for session in ended:
            if session.revoked_at is None:
                session.revoked_at = now
        events = [self._session_revoked(session) for session in ended]
        if events:
            self._outbox.commit(events)
            self.log.info("sessions_revoked", reason=reason, count=len(events))
            self._emit(events)

    @rpc
    def list_sessions(self, user_id, current_session_id=None):
        user_id = v.require_id("user_id", user_id)
        sessions = self.db.scalars(
            select(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None),
                                  Session.expires_at > utcnow())
            .order_by(Session.created_at.desc())).all()
        return [{"id": session.id, "user_agent": session.user_agent,
                 "created_at": iso(session.created_at),
                 "last_used_at": iso(session.last_used_at or session.created_at),
                 "expires_at": iso(session.expires_at),
                 "current": session.id == current_session_id} for session in sessions]

    @rpc
    def revoke_session(self, user_id, session_id):
        """End one of the caller's own sessions (404 for anyone else's)."""
        self._revoke([self._own_session(user_id, session_id)], "revoked_by_owner")
        return None

    def _own_session(self, user_id, session_id) -> Session:
        """The caller's session (validated ids), or NotFound (also for anyone else's)."""
        errors: v.Errors = {}
        user_id = v.identifier("user_id", user_id, errors)
        session_id = v.identifier("session_id", session_id, errors)
        v.raise_if(errors)
        session = self.db.get(Session, session_id)
        if session is None or session.user_id != user_id:
            raise NotFound("No such session.")
        return session

    @rpc
    def revoke_other_sessions(self, user_id, keep_session_id):
        errors: v.Errors = {}
        user_id = v.identifier("user_id", user_id, errors)
        keep_session_id = v.identifier("keep_session_id", keep_session_id, errors)
        v.raise_if(errors)
        others = self.db.scalars(
            select(Session).where(Session.user_id == user_id, Session.id != keep_session_id,
                                  Session.revoked_at.is_(None),
                                  Session.expires_at > utcnow())).all()
        self._revoke(list(others), "revoked_by_owner")
        return len(others)

    def _check_password(self, user: User, password, field: str = "password") -> None:
        if not isinstance(password, str) or not password or len(password) > v.MAX_PASSWORD \
                or not storable(password) \
                or not self.crypto.passwords.verify(user.password_hash, password):
            raise ValidationFailed("The password is not right.",
                                   {field: "This is not your current password."})

    @rpc
    def change_password(self, user_id, session_id, old_password, new_password):
        """Needs the current password; every other session of the account ends."""
        errors: v.Errors = {}
        user_id = v.identifier("user_id", user_id, errors)
        session_id = v.identifier("session_id", session_id, errors)
        v.raise_if(errors)
        user = self._active_user(user_id)
        self._check_password(user, old_password, "old_password")
        new = v.password(new_password, user.username, errors)
        if "password" in errors:
            errors["new_password"] = errors.pop("password")
        v.raise_if(errors)
        user.password_hash = self.crypto.passwords.hash(new)
        user.updated_at = utcnow()
        others = self.db.scalars(
            select(Session).where(Session.user_id == user_id, Session.id != session_id,
                                  Session.revoked_at.is_(None))).all()
        self.db.flush()
        self._revoke(list(others), "password_changed")
        self.db.commit()
        self.log.info("password_changed", user_id=user_id, sessions_ended=len(others))
        return None

    def _token_reply(self, user: User, session_id: str, issued: int, expires: int) -> dict:
        keyring = self.crypto.keyring
        token = jwt.encode({"sub": user.id, "sid": session_id, "iat": issued, "exp": expires,
                            "jti": new_id()},
                           keyring.private_key, algorithm="EdDSA", headers={"kid": keyring.kid})
        return {"access_token": token, "token_type": "Bearer", "expires_in": expires - issued,
                "user": self_user(user), "session_id": session_id}

    @rpc
    def logout(self, user_id, session_id):
        session = self._own_session(user_id, session_id)
        newly = session.revoked_at is None
        if newly:
            self.db.execute(update(Session).where(Session.id == session_id,
                                                  Session.revoked_at.is_(None))
                            .values(revoked_at=utcnow()))
            # Holding the row now: read the expiry a racing refresh may have moved, so the
            # event keeps its tokens refused for as long as the newest of them lives.
            self.db.refresh(session)
        # Sent on a repeated logout too: consumers are idempotent.
        events = [self._session_revoked(session)]
        self._outbox.commit(events)
        if newly:
            self.log.info("logged_out", user_id=user_id, session=redacted(session_id))
        self._emit(events)
        return None

    @rpc
    def session_active(self, session_id):
        session_id = v.require_id("session_id", session_id)
        with autocommit_reads(self.db):
            found = self.db.scalar(
                select(Session.id).join(User, User.id == Session.user_id)
                .where(Session.id == session_id, Session.revoked_at.is_(None),
                       Session.expires_at > utcnow(), User.deleted_at.is_(None),
                       User.deactivated_at.is_(None)))
        return found is not None

    @rpc
    def revoked_sessions(self):
        """Sessions revoked while a token of theirs may still be valid, as
        ``[{session_id, expires_at}]``: the gateways rebuild their revocation cache from this
        when Redis has lost it (a restart without persistence)."""
        # A verifier accepts a token a few seconds past its expiry (clock leeway): a
        # revocation is listed for a minute past its tokens' end, the gateways keep what
        # their own leeway needs.
        since = utcnow() - timedelta(minutes=1)
        sessions = self.db.scalars(
            select(Session).where(Session.revoked_at.is_not(None), Session.expires_at > since)
        ).all()
        ends = ((session.id, self._tokens_end(session)) for session in sessions)
        return [{"session_id": session_id, "expires_at": iso(end)}
                for session_id, end in ends if end > since]

    def _tokens_end(self, session: Session) -> datetime:
        """When the newest access token of a session lapses: tokens are issued at its last
        use (login or refresh) and never outlive the session. A revocation must be remembered
        until then, and no longer."""
        last_issued = aware(session.last_used_at or session.created_at)
        return min(aware(session.expires_at),
                   last_issued + timedelta(seconds=self.crypto.token_ttl))

    def _session_revoked(self, session: Session) -> outbox.Event:
        return "session_revoked", {"session_id": session.id, "user_id": session.user_id,
                                   "expires_at": iso(self._tokens_end(session))}

    @rpc
    def ping(self):
        """Readiness probe of the gateway: answers as soon as a worker is free."""
        return "pong"

    @rpc
    def public_keys(self):
        return self.crypto.keyring.public_keys()

    # --- the caller's own account ----------------------------------------------------
    def _active_user(self, user_id: str) -> User:
        user = self.db.get(User, user_id)
        if user is None or user.deleted_at is not None:
            raise NotFound("No such user.")
        return user

    @rpc
    def get_me(self, user_id):
        user_id = v.require_id("user_id", user_id)
        with autocommit_reads(self.db):  # one query: no BEGIN/ROLLBACK round trips
            user = self.db.execute(SELF_USER, {"user_id": user_id}).first()
        if user is None:
            raise NotFound("No such user.")
        return self_user(user)

    @rpc
    def update_me(self, user_id, display_name=None, avatar_url=None):
        """``avatar_url`` may only clear the avatar ("") or repeat the current address: the
        picture itself comes through set_avatar."""
        errors: v.Errors = {}
        user_id = v.require_id("user_id", user_id)
        display = v.display_name(display_name, errors) if display_name is not None else None
        user = self._active_user(user_id)
        avatar = v.avatar_url(avatar_url, errors, user.avatar_url) \
            if avatar_url is not None else None
        v.raise_if(errors)
        changed = False
        if display is not None:
            display = display or user.username  # blank means "back to the username"
            changed |= display != user.display_name
            user.display_name = display
        if avatar == "":
            changed |= self._drop_avatar(user)
        if changed:
            self._profile_changed(user)
        return self_user(user)

    def _profile_changed(self, user: User) -> None:
        """Commit a change of the public profile with its user_updated event, and publish it."""
        user.updated_at = utcnow()
        events = [("user_updated", {"user": public_user(user)})]
        self._outbox.commit(events)
        self._emit(events)

    def _drop_avatar(self, user: User) -> bool:
        """Remove the user's picture (the caller commits); whether there was one."""
        removed = self.db.execute(delete(AvatarImage).where(AvatarImage.user_id == user.id))
        had = user.avatar_url is not None or removed.rowcount > 0
        user.avatar_url = None
        return had

    # --- avatars (parley_auth/avatars.py) ----------------------------------------------
    @rpc
    def set_avatar(self, user_id, media_type, image_base64):
        """A new avatar from an uploaded picture (base64 of its bytes, ``media_type`` one of
        image/png, image/jpeg, image/webp): re-encoded to a 128 x 128 WebP without metadata.
        The profile's avatar_url names the picture's version; the same picture again changes
        nothing (no event)."""
        user_id = v.require_id("user_id", user_id)
        data = _image_bytes(media_type, image_base64)
        self._active_user(user_id)  # before the work: the account may be gone
        self.db.rollback()  # no transaction held while decoding
        try:
            with AVATAR_DECODES:  # CPU work in a native thread: other calls go on meanwhile
                avatar = off_the_hub(avatars.normalize, data, media_type)
        except avatars.AvatarRejected as exc:
            raise ValidationFailed(str(exc), {"image": str(exc)}) from None
        url = avatar_address(user_id, avatar.version)
        for attempt in (1, 2):  # the second after losing a race to store a first avatar
            user = self._active_user(user_id)
            if user.avatar_url == url:
                self.db.rollback()
                return self_user(user)
            stored = self.db.get(AvatarImage, user_id)
            if stored is None:
                stored = AvatarImage(user_id=user_id)
                self.db.add(stored)
            stored.version, stored.media_type, stored.image = \
                avatar.version, avatar.media_type, avatar.data
            stored.updated_at = utcnow()
            user.avatar_url = url
            try:
                self._profile_changed(user)
                break
            except IntegrityError:
                self.db.rollback()
                if attempt == 2:
                    raise
        self.log.info("avatar_set", user_id=user_id, version=avatar.version,
                      bytes_in=len(data), bytes_stored=len(avatar.data))
        return self_user(user)

    @rpc
    def delete_avatar(self, user_id):
        """No avatar any more (initials instead); a repeat changes nothing."""
        user = self._active_user(v.require_id("user_id", user_id))
        if self._drop_avatar(user):
            self._profile_changed(user)
        else:
            self.db.rollback()
        return self_user(user)

    @rpc
    def get_avatar(self, user_id):
        """The current avatar of an account: ``{version, media_type, image_base64}``;
        NotFound when it has none (or is gone)."""
        if not isinstance(user_id, str) or not user_id or len(user_id) > v.MAX_ID:
            raise NotFound("No such avatar.")
        with autocommit_reads(self.db):
            stored = self.db.scalar(
                select(AvatarImage).join(User, User.id == AvatarImage.user_id)
                .where(AvatarImage.user_id == user_id, User.deleted_at.is_(None)))
            if stored is None:
                raise NotFound("No such avatar.")
            return {"version": stored.version, "media_type": stored.media_type,
                    "image_base64": base64.b64encode(stored.image).decode("ascii")}

    @rpc
    def delete_me(self, user_id, password=None):
        """Asks for the password again (a stolen token alone cannot delete an account); a
        repeat of a delete that happened (redelivery) needs none."""
        user_id = v.require_id("user_id", user_id)
        user = self.db.get(User, user_id)
        if user is None:
            raise NotFound("No such user.")
        newly = user.deleted_at is None
        if newly:
            self._check_password(user, password)
            now = utcnow()
            user.deleted_at = now
            self._drop_avatar(user)
            self.db.execute(update(Session).where(Session.user_id == user_id,
                                                  Session.revoked_at.is_(None))
                            .values(revoked_at=now))
        # A repeat (redelivery) re-sends the events of the deletion: harmless. Only sessions
        # that still matter are announced.
        revoked = self.db.scalars(
            select(Session).where(Session.user_id == user_id,
                                  Session.revoked_at >= user.deleted_at,
                                  Session.expires_at > utcnow())).all()
        events = [*map(self._session_revoked, revoked), ("user_deleted", {"user": public_user(user)})]
        self._outbox.commit(events)
        if newly:
            self.log.info("user_deleted", user_id=user_id)
        self._emit(events)
        return None

    # --- other users -----------------------------------------------------------------
    @rpc
    def get_user(self, user_id, target_id):
        errors: v.Errors = {}
        v.identifier("user_id", user_id, errors)
        if not isinstance(target_id, str):
            errors["target_id"] = "target_id must be an id string."
        v.raise_if(errors)
        return public_user(self._active_user(target_id))

    @rpc
    def get_users(self, user_ids):
        errors: v.Errors = {}
        user_ids = v.id_list("user_ids", user_ids, errors)
        v.raise_if(errors)
        if not user_ids:
            return {}
        with autocommit_reads(self.db):
            users = self.db.scalars(select(User).where(User.id.in_(set(user_ids)),
                                                       User.deleted_at.is_(None))).all()
        return {user.id: public_user(user) for user in users}

    @rpc
    def search_users(self, user_id, q, limit=20):
        errors: v.Errors = {}
        user_id = v.identifier("user_id", user_id, errors)
        if not isinstance(q, str):
            errors["q"] = "q must be a string."
        elif not storable(q):
            errors["q"] = f"q {PROBLEM}."
        elif len(q.strip()) > MAX_QUERY:
            errors["q"] = f"q must be at most {MAX_QUERY} characters."
        limit = v.limit(limit, errors)
        v.raise_if(errors)
        prefix = like_escape(q.strip().lower()) + "%"
        users = self.db.scalars(
            select(User)
            .where(User.id != user_id, User.deleted_at.is_(None),
                   or_(User.username_lower.like(prefix, escape="\\"),
                       func.lower(User.display_name).like(prefix, escape="\\")))
            .order_by(User.username_lower, User.id)
            .limit(limit)).all()
        return [public_user(user) for user in users]

    # --- administrators (parley_auth/admin.py; every action in the audit log) ---------
    @rpc
    def is_admin(self, user_id):
        """Whether this account may act as an administrator now (rooms and the gateway ask)."""
        return admin.acting_admin(self.db, user_id) is not None

    @rpc
    def admin_list_users(self, user_id, q=None, status=None, role=None, limit=50, cursor=None):
        admin.require_admin(self.db, user_id)
        return admin.list_users(self.db, q, status, role, limit, cursor)

    @rpc
    def admin_set_active(self, user_id, target_id, active):
        """Deactivate (every session ends at once: session_revoked per session, so sockets
        close with 4001) or reactivate an account. Repeats change nothing."""
        actor = admin.require_admin(self.db, user_id)
        target, sessions = admin.set_active(self.db, actor, target_id, active)
        self._revoke(sessions, "deactivated")  # commits the change and its audit entry too
        self.db.commit()
        self.log.info("account_active_set", user_id=user_id, target_id=target.id, active=active,
                      sessions_ended=len(sessions))
        return admin.admin_user(target)

    @rpc
    def admin_set_role(self, user_id, target_id, admin_role):
        actor = admin.require_admin(self.db, user_id)
        target = admin.set_role(self.db, actor, target_id, admin_role)
        self.db.commit()
        self.log.info("admin_role_set", user_id=user_id, target_id=target.id, admin=admin_role)
        return admin.admin_user(target)

    @rpc
    def admin_audit(self, user_id, cursor=None, limit=50):
        """auth's audit entries, newest first, older than ``cursor`` (an entry's cursor)."""
        admin.require_admin(self.db, user_id)
        return audit.entries(self.db, models.audit_log, cursor, limit)


def _image_bytes(media_type, image_base64) -> bytes:
    """The uploaded bytes, or the error the gateway would have given (it checks first)."""
    if media_type not in AVATAR_MEDIA_TYPES:
        raise UnsupportedMediaType("The picture must be a PNG, JPEG or WebP image.",
                                   {"accepted": list(AVATAR_MEDIA_TYPES)})
    if not isinstance(image_base64, str):
        raise ValidationFailed(details={"image": "The picture must be sent as base64."})
    # base64 takes 4 characters per 3 bytes: a much longer text is refused before decoding.
    too_large = TooLarge(f"The picture must be at most {MAX_AVATAR_BYTES} bytes.",
                         {"max_bytes": MAX_AVATAR_BYTES})
    if len(image_base64) > (MAX_AVATAR_BYTES + 2) // 3 * 4:
        raise too_large
    try:
        data = base64.b64decode(image_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(details={"image": "The picture must be sent as base64."}) from None
    if len(data) > MAX_AVATAR_BYTES:
        raise too_large
    return data


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh(session_id: str, generation: int) -> tuple[str, str]:
    """A fresh refresh credential of a session, and the hash the session keeps of it."""
    token = f"{session_id}.{generation}.{secrets.token_urlsafe(32)}"
    return token, _digest(token)


def _parse_refresh(token) -> tuple[str, int] | None:
    if not isinstance(token, str) or len(token) > 200 or not storable(token):
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or len(parts[1]) > 9:
        return None
    return parts[0], int(parts[1])

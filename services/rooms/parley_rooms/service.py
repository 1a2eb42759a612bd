"""The nameko service "rooms": RPC methods of docs/internals.md, auth.events handlers, and
rooms.events published after each commit (through the outbox, relayed if a publisher died)."""
from __future__ import annotations

import functools
import inspect

import eventlet
from nameko.events import event_handler
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import RpcProxy
from nameko.timer import timer
from sqlalchemy.exc import DBAPIError, OperationalError

from parley_common import config, db, nameko_support, outbox
from parley_common.errors import ParleyError, Unavailable, ValidationFailed
from parley_common.nameko_support import Database, Logger

from . import validation as v
from .amqp import LeanEventDispatcher, LeanRpc
from .models import outbox as outbox_rows
from .store import AUTOCOMMIT_ENGINE, PRIVATE, PUBLIC, NewPost, Store

RPC_TIMEOUT_SECONDS = config.env_float("RPC_TIMEOUT_SECONDS", 5.0)

# parley_common's @rpc on our leaner entrypoint (replies published once-encoded, on reused
# producers, without confirms; see amqp.py and the README's "Throughput").
rpc = functools.partial(nameko_support.rpc, entrypoint=LeanRpc)


class RoomsDatabase(Database):
    """Database("rooms"), plus a second pool for post_message, the hot path: autocommit
    connections without pre-ping (a ping is a round trip per call, as much as the post itself).
    After a database restart one post fails with `unavailable`, that pool is dropped, and
    retries succeed. The session pool, used by everything else, keeps pre-ping: no post would
    ever notice its connections died, and those calls are not hot enough for the extra round
    trip to matter."""

    autocommit_engine = None

    def setup(self):
        super().setup()
        url = config.database_url(self.service)
        if not db.is_sqlite(url):
            # Autocommit makes post_message's single statement its own transaction: one round
            # trip instead of statement + COMMIT. A pool of its own, set to autocommit once per
            # connection (not toggled on every checkout).
            self.autocommit_engine = db.make_engine(url, pool_size=self.pool_size, pre_ping=False,
                                                    isolation_level="AUTOCOMMIT")

    def stop(self):
        if self.autocommit_engine is not None:
            # Rows of confirmed events still waiting for their delete: gone now, or another
            # replica's relay would send those events again (if the database is away: it will).
            try:
                outbox.Outbox(outbox_rows, None, fast_delete=self.autocommit_engine
                              ).flush_released()
            except Exception:
                pass
            self.autocommit_engine.dispose()
        super().stop()

    def get_dependency(self, worker_ctx):
        session = super().get_dependency(worker_ctx)
        if self.autocommit_engine is not None:
            session.info[AUTOCOMMIT_ENGINE] = self.autocommit_engine
        return session


def guarded(method):
    """A database that went away is 503 `unavailable`, not a 500."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except ParleyError:
            raise
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
                self.log.error("database_unavailable", error=str(exc.orig)[:200])
                raise Unavailable("The rooms database is not answering.", retry_after=2) from None
            raise

    wrapper.__signature__ = inspect.signature(method)
    return wrapper


def _checked_post(post) -> NewPost:
    if not isinstance(post, dict):
        raise ValidationFailed(details={"post": "must be an object with user_id, room_id, "
                                                "text and client_id"})
    check = v.Checker()
    user_id = check.id("user_id", post.get("user_id"))
    room_id = check.id("room_id", post.get("room_id"))
    text = check.text("text", post.get("text"), maximum=v.MAX_TEXT)
    client_id = check.client_id(post.get("client_id"))
    check.done()
    return NewPost(user_id, room_id, text, client_id)


def _user_payload(payload) -> dict | None:
    user = payload.get("user") if isinstance(payload, dict) else None
    if isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"] \
            and len(user["id"]) <= v.MAX_ID:
        return user
    return None


class RoomsService:
    name = "rooms"

    db = RoomsDatabase("rooms")
    log = Logger()
    auth = RpcProxy("auth")
    dispatch = LeanEventDispatcher()

    # --- plumbing ---------------------------------------------------------------------------

    @functools.cached_property
    def store(self) -> Store:
        """One Store per worker (nameko makes a service instance per worker): _emit releases
        the outbox rows that this worker's store committed."""
        return Store(self.db, self._fetch_users)

    def _fetch_users(self, user_ids: list[str]) -> dict[str, dict]:
        """auth.get_users for ids our replica has not seen yet (e.g. registered a moment ago)."""
        try:
            with eventlet.Timeout(RPC_TIMEOUT_SECONDS):
                found = self.auth.get_users(user_ids)
        except eventlet.Timeout:
            raise Unavailable("The auth service did not answer in time.", retry_after=2) from None
        except (UnknownService, RemoteError) as exc:
            self.log.warning("auth_get_users_failed", error=type(exc).__name__)
            raise Unavailable("The auth service is not available.", retry_after=2) from None
        return found if isinstance(found, dict) else {}

    def _emit(self, events) -> None:
        """After the commit: publish (one confirm round trip for all), then drop the events'
        outbox rows; if publishing fails the call still succeeds and the relay sends them."""
        outbox.publish_committed(self.store.outbox, events, self.dispatch.many, self.log)

    @timer(interval=outbox.RELAY_SECONDS)
    def relay_outbox(self):
        outbox.relay_tick(self.store.outbox, self.dispatch.many, self.log)

    # --- rooms ------------------------------------------------------------------------------

    @rpc
    @guarded
    def create_room(self, user_id, name, kind, topic=None, member_ids=None, request_id=None):
        """``request_id``, picked by the caller per request, makes a redelivered or retried call
        answer with the room the first one made."""
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        kind = check.choice("kind", kind, (PUBLIC, PRIVATE))
        name = check.text("name", name, maximum=v.MAX_NAME, plain=True)
        topic = check.text("topic", topic, maximum=v.MAX_TOPIC, required=False, minimum=0,
                           plain=True) or ""
        member_ids = check.id_list("member_ids", member_ids, maximum=v.MAX_MEMBER_IDS)
        request_id = None if request_id is None else check.id("request_id", request_id)
        check.done()
        room, created, events = self.store.create_room(user_id, name, kind, topic, member_ids,
                                                          request_id)
        self._emit(events)
        self.log.info("room_created" if created else "room_create_replayed", room_id=room["id"],
                      kind=kind, user_id=user_id)
        return room

    @rpc
    @guarded
    def open_direct(self, user_id, other_user_id):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        other_user_id = check.id("other_user_id", other_user_id)
        if user_id and user_id == other_user_id:
            check.fail("other_user_id", "must be someone other than yourself")
        check.done()
        room, created, events = self.store.open_direct(user_id, other_user_id)
        self._emit(events)
        return {"room": room, "created": created}

    @rpc
    @guarded
    def list_rooms(self, user_id, scope, q=None, limit=50, cursor=None):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        scope = check.choice("scope", scope, ("public", "joined"))
        q = check.text("q", q, maximum=v.MAX_QUERY, required=False, minimum=0)
        limit = check.limit(limit)
        key = v.decode_cursor(check, cursor, (str, str, str))
        check.done()
        return self.store.list_rooms(user_id, PUBLIC if scope == "public" else "joined",
                                        q or None, limit, key)

    @rpc
    @guarded
    def get_room(self, user_id, room_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        check.done()
        return self.store.get_room(user_id, room_id)

    @rpc
    @guarded
    def update_room(self, user_id, room_id, name=None, topic=None):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        name = check.text("name", name, maximum=v.MAX_NAME, required=False, plain=True)
        topic = check.text("topic", topic, maximum=v.MAX_TOPIC, required=False, minimum=0,
                           plain=True)
        check.done()
        room, events = self.store.update_room(user_id, room_id, name, topic)
        self._emit(events)
        return room

    @rpc
    @guarded
    def delete_room(self, user_id, room_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        check.done()
        self._emit(self.store.delete_room(user_id, room_id))
        self.log.info("room_deleted", room_id=room_id, user_id=user_id)
        return None

    @rpc
    @guarded
    def join_room(self, user_id, room_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        check.done()
        room, events = self.store.join_room(user_id, room_id)
        self._emit(events)
        return room

    @rpc
    @guarded
    def leave_room(self, user_id, room_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        check.done()
        self._emit(self.store.leave_room(user_id, room_id))
        return None

    @rpc
    @guarded
    def add_member(self, user_id, room_id, member_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        member_id = check.id("member_id", member_id)
        check.done()
        room, events = self.store.add_member(user_id, room_id, member_id)
        self._emit(events)
        return room

    @rpc
    @guarded
    def list_members(self, user_id, room_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        check.done()
        return self.store.list_members(user_id, room_id)

    @rpc
    @guarded
    def set_muted(self, user_id, room_id, muted):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        muted = check.bool("muted", muted)
        check.done()
        return self.store.set_muted(user_id, room_id, muted)

    @rpc
    def ping(self):
        """Readiness probe of the gateway: answers as soon as a worker is free."""
        return "pong"

    @rpc
    @guarded
    def room_ids_for_user(self, user_id):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        check.done()
        return self.store.room_ids_for_user(user_id)

    # --- messages ---------------------------------------------------------------------------

    @rpc
    @guarded
    def post_messages(self, posts):
        """Several posts in one call and one transaction (the gateway batches the sends that
        arrive while earlier batches are in flight). One answer per post, in order:
        `{message, created}` or `{error: {code, message, details}}`; a refused post does not
        fail the others."""
        if not isinstance(posts, list) or not 1 <= len(posts) <= v.MAX_POSTS:
            raise ValidationFailed(details={"posts": f"must be a list of 1 to {v.MAX_POSTS} posts"})
        answers: list = [None] * len(posts)
        accepted: list[tuple[int, NewPost]] = []
        for index, post in enumerate(posts):
            try:
                accepted.append((index, _checked_post(post)))
            except ParleyError as exc:
                answers[index] = exc.to_body()
        if accepted:
            outcomes, events = self.store.post_messages([post for _, post in accepted])
            self._emit(events)
            for (index, _), outcome in zip(accepted, outcomes):
                answers[index] = outcome.to_body() if isinstance(outcome, ParleyError) else outcome
        return answers

    @rpc
    @guarded
    def post_message(self, user_id, room_id, text, client_id):
        post = _checked_post({"user_id": user_id, "room_id": room_id, "text": text,
                              "client_id": client_id})
        (outcome,), events = self.store.post_messages([post])
        self._emit(events)
        if isinstance(outcome, ParleyError):
            raise outcome
        return outcome

    @rpc
    @guarded
    def list_messages(self, user_id, room_id, before_seq=None, after_seq=None, limit=50):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        before_seq = check.int("before_seq", before_seq, minimum=1, optional=True)
        after_seq = check.int("after_seq", after_seq, minimum=0, optional=True)
        limit = check.limit(limit)
        if before_seq is not None and after_seq is not None:
            check.fail("before_seq", "give before_seq or after_seq, not both")
        check.done()
        return self.store.list_messages(user_id, room_id, before_seq, after_seq, limit)

    @rpc
    @guarded
    def edit_message(self, user_id, room_id, message_id, text):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        message_id = check.id("message_id", message_id)
        text = check.text("text", text, maximum=v.MAX_TEXT)
        check.done()
        message, events = self.store.edit_message(user_id, room_id, message_id, text)
        self._emit(events)
        return message

    @rpc
    @guarded
    def delete_message(self, user_id, room_id, message_id):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        message_id = check.id("message_id", message_id)
        check.done()
        self._emit(self.store.delete_message(user_id, room_id, message_id))
        return None

    @rpc
    @guarded
    def mark_read(self, user_id, room_id, seq):
        check = v.Checker()
        user_id, room_id = check.id("user_id", user_id), check.id("room_id", room_id)
        seq = check.int("seq", seq, minimum=0)
        check.done()
        result, events = self.store.mark_read(user_id, room_id, seq)
        self._emit(events)
        return result

    @rpc
    @guarded
    def list_conversations(self, user_id, limit=50, cursor=None):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        limit = check.limit(limit)
        key = v.decode_cursor(check, cursor, (str, str, str))
        check.done()
        return self.store.list_conversations(user_id, limit, key)

    # --- auth.events: the users replica -----------------------------------------------------
    # Redelivery is harmless: upserts converge, and removing a user who is in no room is a no-op.
    # requeue_on_error: a transient database failure retries the event instead of losing it.

    @event_handler("auth", "user_registered", requeue_on_error=True)
    def on_user_registered(self, payload):
        self._upsert_from_event("user_registered", payload)

    @event_handler("auth", "user_updated", requeue_on_error=True)
    def on_user_updated(self, payload):
        self._upsert_from_event("user_updated", payload)

    @event_handler("auth", "user_deleted", requeue_on_error=True)
    def on_user_deleted(self, payload):
        user = _user_payload(payload)
        if user is None:
            self.log.warning("event_ignored", event_type="user_deleted", reason="no user id")
            return
        events = self.store.remove_user(user["id"])
        self._emit(events)
        self.log.info("user_removed", user_id=user["id"], rooms_left=sum(
            1 for event_type, _ in events if event_type == "member_left"))

    def _upsert_from_event(self, event_type: str, payload) -> None:
        user = _user_payload(payload)
        if user is None:
            self.log.warning("event_ignored", event_type=event_type, reason="no user id")
            return
        store = self.store
        store.upsert_user(user)
        self.db.commit()

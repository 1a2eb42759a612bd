"""The nameko service "rooms": RPC methods of docs/internals.md, auth.events handlers, and
rooms.events published after each commit (through the outbox, relayed if a publisher died).

Each method validates its arguments (validation.py) and makes one store call; the rpc
decorator below does the rest: a database outage answers 503, and the events a change returns
are published once it has committed."""
from __future__ import annotations

import functools

from nameko.events import event_handler
from nameko.rpc import RpcProxy
from nameko.timer import timer

from parley_common import nameko_support, outbox
from parley_common.errors import Forbidden, ParleyError, ValidationFailed
from parley_common.nameko_support import Logger, call_with_timeout, keeping_signature
from parley_common.text import storable

from . import moderation
from . import validation as v
from .amqp import LeanEventDispatcher
from .dependencies import RPC_TIMEOUT_SECONDS, RoomsStore
from .store import PRIVATE, PUBLIC, NewPost
from .store.search import decode_before, search_terms
from .store.posted import merge_posted


def rpc(method=None, *, emits: bool = False):
    """parley_common's @rpc (domain errors are answers, a database outage is 503, replies
    published once-encoded, on reused producers, without confirms: parley_common.lean_rpc and
    the README's "Throughput"). ``emits``: the method returns
    ``(answer, events)``; the caller gets the answer, the events are published (_emit)."""
    def decorate(method):
        return nameko_support.rpc(publishing(method) if emits else method)

    def publishing(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            answer, events = method(self, *args, **kwargs)
            self._emit(events)
            return answer

        return keeping_signature(wrapper, method)

    return decorate if method is None else decorate(method)


def _checked_post(post) -> NewPost:
    checked = _well_formed_post(post) if type(post) is dict else None
    if checked is not None:
        return checked
    if not isinstance(post, dict):
        raise ValidationFailed(details={"post": "must be an object with user_id, room_id, "
                                                "text and client_id"})
    check = v.Checker()
    user_id = check.id("user_id", post.get("user_id"))
    room_id = check.id("room_id", post.get("room_id"))
    text = check.text("text", post.get("text"), maximum=v.MAX_TEXT)
    client_id = check.client_id(post.get("client_id"))
    reply_to = post.get("reply_to")
    reply_to = None if reply_to is None else check.id("reply_to", reply_to)
    check.done()
    return NewPost(user_id, room_id, text, client_id, reply_to)


def _well_formed_post(post: dict) -> NewPost | None:
    """The usual post, as _checked_post's Checker would pass it, checked in one go (the
    Checker's per-field calls were ~2 µs of every post); None if anything is off, and the
    Checker then names every problem."""
    user_id, room_id, text = post.get("user_id"), post.get("room_id"), post.get("text")
    client_id, reply_to = post.get("client_id"), post.get("reply_to")
    if not (type(user_id) is str and type(room_id) is str and type(text) is str
            and type(client_id) is str and (reply_to is None or type(reply_to) is str)):
        return None
    text = text.strip()
    if not (0 < len(user_id) <= v.MAX_ID and 0 < len(room_id) <= v.MAX_ID
            and 0 < len(text) <= v.MAX_TEXT and 0 < len(client_id) <= v.MAX_CLIENT_ID
            and (reply_to is None or 0 < len(reply_to) <= v.MAX_ID)):
        return None
    # storable is about single characters: one search over them all answers for each
    if not storable("".join((user_id, room_id, text, client_id, reply_to or ""))):
        return None
    return NewPost(user_id, room_id, text, client_id, reply_to)


def _room_call(user_id, room_id) -> tuple[v.Checker, str, str]:
    """The checks of every call about a room; the method adds its own, then check.done()."""
    check = v.Checker()
    return check, check.id("user_id", user_id), check.id("room_id", room_id)


def _checked_room_call(user_id, room_id, **ids) -> tuple[str, ...]:
    """user_id, room_id and the further ids (member_id, message_id) of a call that takes
    nothing else, checked."""
    check, user_id, room_id = _room_call(user_id, room_id)
    others = [check.id(name, value) for name, value in ids.items()]
    check.done()
    return (user_id, room_id, *others)


def _checked_reaction(user_id, room_id, message_id, emoji) -> tuple[str, str, str, str]:
    check, user_id, room_id = _room_call(user_id, room_id)
    message_id = check.id("message_id", message_id)
    emoji = check.emoji("emoji", emoji)
    check.done()
    return user_id, room_id, message_id, emoji


def _user_payload(payload) -> dict | None:
    user = payload.get("user") if isinstance(payload, dict) else None
    if isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"] \
            and len(user["id"]) <= v.MAX_ID:
        return user
    return None


class RoomsService:
    name = "rooms"

    store = RoomsStore("rooms", users_from="auth")  # one Store per worker
    log = Logger()
    auth = RpcProxy("auth")
    dispatch = LeanEventDispatcher()

    # --- plumbing ---------------------------------------------------------------------------

    def _emit(self, events) -> None:
        """After the commit: publish (one confirm round trip for all), then drop the events'
        outbox rows; if publishing fails the call still succeeds and the relay sends them."""
        outbox.publish_committed(self.store.outbox, events, self.dispatch.many, self.log)

    @timer(interval=outbox.RELAY_SECONDS)
    def relay_outbox(self):
        # Relayed posts come back one row per message: one messages_posted per run of them.
        outbox.relay_tick(self.store.outbox,
                          lambda events: self.dispatch.many(merge_posted(events)), self.log)

    # --- rooms ------------------------------------------------------------------------------

    @rpc(emits=True)
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
        self.log.info("room_created" if created else "room_create_replayed", room_id=room["id"],
                      kind=kind, user_id=user_id)
        return room, events

    @rpc(emits=True)
    def open_direct(self, user_id, other_user_id):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        other_user_id = check.id("other_user_id", other_user_id)
        if user_id and user_id == other_user_id:
            check.fail("other_user_id", "must be someone other than yourself")
        check.done()
        room, created, events = self.store.open_direct(user_id, other_user_id)
        return {"room": room, "created": created}, events

    @rpc
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
    def get_room(self, user_id, room_id):
        user_id, room_id = _checked_room_call(user_id, room_id)
        return self.store.get_room(user_id, room_id)

    @rpc(emits=True)
    def update_room(self, user_id, room_id, name=None, topic=None):
        check, user_id, room_id = _room_call(user_id, room_id)
        name = check.text("name", name, maximum=v.MAX_NAME, required=False, plain=True)
        topic = check.text("topic", topic, maximum=v.MAX_TOPIC, required=False, minimum=0,
                           plain=True)
        check.done()
        return self.store.update_room(user_id, room_id, name, topic)

    @rpc(emits=True)
    def delete_room(self, user_id, room_id):
        user_id, room_id = _checked_room_call(user_id, room_id)
        events = self.store.delete_room(user_id, room_id)
        self.log.info("room_deleted", room_id=room_id, user_id=user_id)
        return None, events

    @rpc(emits=True)
    def join_room(self, user_id, room_id):
        user_id, room_id = _checked_room_call(user_id, room_id)
        return self.store.join_room(user_id, room_id)

    @rpc(emits=True)
    def leave_room(self, user_id, room_id):
        user_id, room_id = _checked_room_call(user_id, room_id)
        return None, self.store.leave_room(user_id, room_id)

    @rpc(emits=True)
    def add_member(self, user_id, room_id, member_id):
        return self.store.add_member(*_checked_room_call(user_id, room_id, member_id=member_id))

    @rpc
    def list_members(self, user_id, room_id):
        user_id, room_id = _checked_room_call(user_id, room_id)
        return self.store.list_members(user_id, room_id)

    @rpc
    def set_muted(self, user_id, room_id, muted):
        check, user_id, room_id = _room_call(user_id, room_id)
        muted = check.bool("muted", muted)
        check.done()
        return self.store.set_muted(user_id, room_id, muted)

    @rpc
    def ping(self):
        """Readiness probe of the gateway: answers as soon as a worker is free."""
        return "pong"

    @rpc
    def room_ids_for_user(self, user_id):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        check.done()
        return self.store.room_ids_for_user(user_id)

    # --- messages ---------------------------------------------------------------------------

    @rpc(emits=True)
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
        if not accepted:
            return answers, []
        outcomes, events = self.store.post_messages([post for _, post in accepted])
        for (index, _), outcome in zip(accepted, outcomes):
            answers[index] = outcome.to_body() if isinstance(outcome, ParleyError) else outcome
        return answers, events

    @rpc(emits=True)
    def post_message(self, user_id, room_id, text, client_id, reply_to=None):
        post = _checked_post({"user_id": user_id, "room_id": room_id, "text": text,
                              "client_id": client_id, "reply_to": reply_to})
        (outcome,), events = self.store.post_messages([post])
        if isinstance(outcome, ParleyError):  # refused: nothing was posted, nothing to publish
            raise outcome
        return outcome, events

    @rpc
    def list_messages(self, user_id, room_id, before_seq=None, after_seq=None, limit=50):
        check, user_id, room_id = _room_call(user_id, room_id)
        before_seq = check.int("before_seq", before_seq, minimum=1, optional=True)
        after_seq = check.int("after_seq", after_seq, minimum=0, optional=True)
        limit = check.limit(limit)
        if before_seq is not None and after_seq is not None:
            check.fail("before_seq", "give before_seq or after_seq, not both")
        check.done()
        return self.store.list_messages(user_id, room_id, before_seq, after_seq, limit)

    @rpc(emits=True)
    def edit_message(self, user_id, room_id, message_id, text):
        check, user_id, room_id = _room_call(user_id, room_id)
        message_id = check.id("message_id", message_id)
        text = check.text("text", text, maximum=v.MAX_TEXT)
        check.done()
        return self.store.edit_message(user_id, room_id, message_id, text)

    @rpc(emits=True)
    def delete_message(self, user_id, room_id, message_id):
        ids = _checked_room_call(user_id, room_id, message_id=message_id)
        return None, self.store.delete_message(*ids)

    @rpc(emits=True)
    def add_reaction(self, user_id, room_id, message_id, emoji):
        """React to a message with an emoji; again with the same one changes nothing (no event).
        Answers ``{room_id, message_id, reactions: [{emoji, count, me}]}``."""
        return self.store.add_reaction(*_checked_reaction(user_id, room_id, message_id, emoji))

    @rpc(emits=True)
    def remove_reaction(self, user_id, room_id, message_id, emoji):
        """Take one's reaction back; none there is success too (no event). Answers as
        add_reaction."""
        return self.store.remove_reaction(*_checked_reaction(user_id, room_id, message_id, emoji))

    @rpc(emits=True)
    def mark_read(self, user_id, room_id, seq):
        check, user_id, room_id = _room_call(user_id, room_id)
        seq = check.int("seq", seq, minimum=0)
        check.done()
        return self.store.mark_read(user_id, room_id, seq)

    @rpc
    def list_conversations(self, user_id, limit=50, cursor=None):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        limit = check.limit(limit)
        key = v.decode_cursor(check, cursor, (str, str, str))
        check.done()
        return self.store.list_conversations(user_id, limit, key)

    @rpc
    def search_messages(self, user_id, q, room_id=None, before=None, limit=v.DEFAULT_SEARCH_PAGE):
        """Full-text search of the messages of the caller's rooms (store/search.py): ranked,
        ``before`` the cursor of the previous page, each result with a highlighted snippet."""
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        q = check.text("q", q, maximum=v.MAX_SEARCH_QUERY)
        terms = search_terms(q) if q else []
        if q and not terms:
            check.fail("q", "must contain a word (letters or digits)")
        elif len(terms) > v.MAX_SEARCH_TERMS:
            check.fail("q", f"may hold at most {v.MAX_SEARCH_TERMS} words")
        room_id = None if room_id is None else check.id("room_id", room_id)
        limit = check.int("limit", limit, minimum=v.MIN_PAGE, maximum=v.MAX_PAGE, optional=True,
                          default=v.DEFAULT_SEARCH_PAGE)
        key = None
        if before is not None:
            cursor = v.Checker()
            key = v.decode_cursor(cursor, before, (float, str, str))
            key = None if key is None else decode_before(key)
            if key is None:
                check.fail("before", "is not a cursor this search handed out")
        check.done()
        return self.store.search_messages(user_id, terms, room_id, key, limit)

    @rpc
    def list_mentions(self, user_id, limit=50, cursor=None):
        """The messages that mention the user, newest first, in rooms they belong to now."""
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        limit = check.limit(limit)
        key = v.decode_cursor(check, cursor, (str, str))
        check.done()
        return self.store.list_mentions(user_id, limit, key)

    # --- auth.events: the users replica -----------------------------------------------------
    # Redelivery is harmless: upserts converge, and removing a user who is in no room is a no-op.
    # requeue_on_error: a transient database failure retries the event instead of losing it.

    @event_handler("auth", "user_registered", requeue_on_error=True)
    def on_user_registered(self, payload):
        self._replicate("user_registered", payload)

    @event_handler("auth", "user_updated", requeue_on_error=True)
    def on_user_updated(self, payload):
        self._replicate("user_updated", payload)

    @event_handler("auth", "user_deleted", requeue_on_error=True)
    def on_user_deleted(self, payload):
        user = self._event_user("user_deleted", payload)
        if user is None:
            return
        events = self.store.remove_user(user["id"])
        self._emit(events)
        self.log.info("user_removed", user_id=user["id"], rooms_left=sum(
            1 for event_type, _ in events if event_type == "member_left"))

    def _replicate(self, event_type: str, payload) -> None:
        user = self._event_user(event_type, payload)
        if user is not None:
            self.store.replicate_user(user)

    def _event_user(self, event_type: str, payload) -> dict | None:
        user = _user_payload(payload)
        if user is None:
            self.log.warning("event_ignored", event_type=event_type, reason="no user id")
        return user

    # --- administrators (moderation.py; every action in the audit log) -----------------------
    # auth owns the role: each call asks it (bounded by the RPC timeout) whether the actor is
    # an administrator now, so a role taken back or an account deactivated stops at once.

    def _require_admin(self, user_id) -> None:
        allowed = call_with_timeout(self.auth.is_admin, user_id, seconds=RPC_TIMEOUT_SECONDS,
                                    what="auth")
        if allowed is not True:
            raise Forbidden("Only administrators may do this.")

    @rpc
    def admin_list_rooms(self, user_id, q=None, kind=None, archived=None, limit=50, cursor=None):
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        q = check.text("q", q, maximum=v.MAX_QUERY, required=False, minimum=0)
        kind = None if kind is None else check.choice("kind", kind, moderation.KINDS)
        archived = None if archived is None else check.bool("archived", archived)
        limit = check.limit(limit)
        key = v.decode_cursor(check, cursor, (str, str, str))
        check.done()
        self._require_admin(user_id)
        return moderation.list_rooms(self.store, q or None, kind, archived, limit, key)

    @rpc
    def admin_list_messages(self, user_id, room_id, before_seq=None, limit=50):
        """Any room's history, member or not (reading is not audited)."""
        check, user_id, room_id = _room_call(user_id, room_id)
        before_seq = check.int("before_seq", before_seq, minimum=1, optional=True)
        limit = check.limit(limit)
        check.done()
        self._require_admin(user_id)
        return moderation.list_messages(self.store, room_id, before_seq, limit)

    @rpc(emits=True)
    def admin_delete_message(self, user_id, room_id, message_id):
        user_id, room_id, message_id = _checked_room_call(user_id, room_id,
                                                          message_id=message_id)
        self._require_admin(user_id)
        events = moderation.delete_message(self.store, user_id, room_id, message_id)
        self.log.info("message_deleted_by_admin", room_id=room_id, message_id=message_id,
                      user_id=user_id)
        return None, events

    @rpc(emits=True)
    def admin_delete_room(self, user_id, room_id):
        user_id, room_id = _checked_room_call(user_id, room_id)
        self._require_admin(user_id)
        events = moderation.delete_room(self.store, user_id, room_id)
        self.log.info("room_deleted_by_admin", room_id=room_id, user_id=user_id)
        return None, events

    @rpc(emits=True)
    def admin_set_archived(self, user_id, room_id, archived):
        check, user_id, room_id = _room_call(user_id, room_id)
        archived = check.bool("archived", archived)
        check.done()
        self._require_admin(user_id)
        room, events = moderation.set_archived(self.store, user_id, room_id, archived)
        self.log.info("room_archived_set", room_id=room_id, user_id=user_id, archived=archived)
        return room, events

    @rpc
    def admin_audit(self, user_id, cursor=None, limit=50):
        """rooms' audit entries, newest first, older than ``cursor`` (an entry's cursor)."""
        check = v.Checker()
        user_id = check.id("user_id", user_id)
        limit = check.limit(limit)
        check.done()
        self._require_admin(user_id)
        return moderation.audit_entries(self.store, cursor, limit)

"""What every part of the store stands on: the worker's session, its outbox, the transaction
rule, the room kinds and roles, and the errors several parts raise."""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Callable, Iterator

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from parley_common.db import autocommit_reads
from parley_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from parley_common.outbox import Event, Outbox

from ..models import outbox

FetchUsers = Callable[[list[str]], dict[str, dict]]

PUBLIC, PRIVATE, DIRECT = "public", "private", "direct"
OWNER, MEMBER = "owner", "member"


def no_such_room() -> NotFound:
    """Also the answer for a room the caller may not know exists (private, direct)."""
    return NotFound("No such room.", {"room_id": "no such room"})


def no_such_message() -> NotFound:
    return NotFound("No such message.", {"message_id": "no such message"})


def not_a_reply_target() -> ValidationFailed:
    return ValidationFailed(details={"reply_to": "must be the id of a message of this room"})


def room_exists() -> Conflict:
    return Conflict("A public room with that name already exists.",
                    {"name": "is taken by another public room"}, code="room_exists")


def room_archived() -> Forbidden:
    return Forbidden("This room is archived: it can be read, but nothing can be posted or "
                     "changed in it any more.", {"room_id": "archived"})


def bad_cursor() -> ValidationFailed:
    return ValidationFailed(details={"cursor": "is not a cursor this listing handed out"})


def operation(method):
    """A public store operation: it runs in :meth:`StoreBase.transaction`."""

    @functools.wraps(method)
    def wrapper(self: StoreBase, *args, **kwargs):
        with self.transaction():
            return method(self, *args, **kwargs)

    return wrapper


def read_only(method):
    """A public store operation that changes nothing: as :func:`operation`, its statements in
    autocommit (parley_common.db.autocommit_reads: no BEGIN and ROLLBACK round trips) unless
    an operation calling it has a transaction open already."""

    @functools.wraps(method)
    def wrapper(self: StoreBase, *args, **kwargs):
        with self.transaction(), autocommit_reads(self.session):
            return method(self, *args, **kwargs)

    return wrapper


class StoreBase:
    """``session``: the worker's session (the service's database pool, pre-pinged).
    ``autocommit``: on PostgreSQL, the engine of the post path (autocommit connections, no
    pre-ping; see postgres_posting.py); None on SQLite. ``fetch_users`` asks auth for
    profiles the users replica lacks."""

    def __init__(self, session: Session, fetch_users: FetchUsers, *,
                 autocommit: Engine | None = None):
        self.session = session
        self.fetch_users = fetch_users
        self.autocommit = autocommit
        # PostgreSQL: releases go through the autocommit pool, one round trip per call.
        self.outbox = Outbox(outbox, session, rebuild=self._rebuild_posted, fast_delete=autocommit)
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The transaction rule: an operation commits what it changed itself (with its events,
        ``self.outbox.commit(events)``); whatever it leaves uncommitted (a read, a refused
        change, an error) is rolled back when it ends, so no call leaves a transaction open
        on the worker's session. Operations calling operations share the outermost one."""
        self._depth += 1
        try:
            yield self.session
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.session.rollback()  # a no-op when nothing is open

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _rebuild_posted(self, row) -> Event | None:
        raise NotImplementedError  # messages.py: how the relay rebuilds a message_posted row

"""The rooms domain on one SQLAlchemy session: every operation commits its own transaction and
returns the events to publish once that commit has happened (never before). The events are
also written to the outbox in that transaction, so a process dying before it published them
loses nothing: the relay publishes them later.

Arguments arrive already validated (see validation.py); authorization happens here.

base.py             the session, the transaction rule (StoreBase.transaction), shared errors
rendering.py        rows -> the API's JSON (rooms, public users, messages)
users.py            the users replica (auth.events, auth.get_users)
access.py           who may see a room; members and counts
rooms.py            create, read, list, rename, delete
membership.py       join, add, leave (ownership passes on), members, mute
messages.py         history, edit, delete; NewPost
posting.py          posting a batch (SQLite: one transaction per post)
postgres_posting.py posting a batch on PostgreSQL: one statement, with its SQL
reactions.py        emoji reactions: add, remove (idempotent)
reaction_counts.py  reactions aggregated per message and emoji, for any reader
read_state.py       read markers, unread counts, the conversation list
search.py           full-text search of the messages of your rooms
"""
from __future__ import annotations

from .base import DIRECT, MEMBER, OWNER, PRIVATE, PUBLIC, FetchUsers
from .messages import NewPost
from .membership import Membership
from .posting import Posting
from .reactions import Reactions
from .read_state import ReadState
from .search import Search
from .users import UsersReplica

__all__ = ["Store", "NewPost", "FetchUsers", "PUBLIC", "PRIVATE", "DIRECT", "OWNER", "MEMBER"]


class Store(ReadState, Posting, Reactions, Membership, UsersReplica, Search):
    """One worker's store: ``Store(session, fetch_users, autocommit=engine_or_None)``."""

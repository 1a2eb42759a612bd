"""Who may see and touch a room, and the room facts every operation needs (members, counts)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from parley_common.errors import Forbidden

from ..models import memberships, rooms
from .base import PUBLIC, StoreBase, no_such_room
from .rendering import room_dict


_counted = memberships.alias("counted")
# The room's member count as a column of a statement selecting from rooms (built once).
MEMBER_COUNT = (select(func.count()).where(_counted.c.room_id == rooms.c.id)
                .scalar_subquery().label("member_count"))


@cache
def access_statement(*, lock: bool, member_count: bool):
    """The room row and the caller's membership (bound: ``user_id``, ``room_id``), built
    once per variant: SQLAlchemy memoizes a statement's cache key on the statement object, so
    a reused one skips the construction and the cache-key walk every call paid."""
    columns = [rooms, memberships.c.user_id.label("member_user_id"), memberships.c.role,
               memberships.c.joined_at, memberships.c.last_read_seq, memberships.c.muted]
    if member_count:
        columns.append(MEMBER_COUNT)
    statement = (
        select(*columns)
        .select_from(rooms.outerjoin(memberships, and_(
            memberships.c.room_id == rooms.c.id,
            memberships.c.user_id == bindparam("user_id"))))
        .where(rooms.c.id == bindparam("room_id"))
    )
    if lock:  # serializes membership changes of one room (and waits for its posters)
        statement = statement.with_for_update(of=rooms)
    return statement


@dataclass
class Member:
    """The caller's membership of a room."""
    user_id: str
    role: str
    joined_at: Any
    last_read_seq: int
    muted: bool


@dataclass
class Access:
    room: Any              # the rooms row
    member: Member | None  # the caller's membership, or None

    @property
    def is_owner(self) -> bool:
        return self.room.owner_id is not None and self.member is not None \
            and self.room.owner_id == self.member.user_id


class RoomAccess(StoreBase):
    def access(self, user_id: str, room_id: str, *, need_member: bool, lock: bool = False,
               member_count: bool = False) -> Access:
        """The room as ``user_id`` may see it. Hidden rooms (private/direct, not a member) are
        NotFound; public rooms need membership for anything but reading the room itself.
        ``member_count``: the room row also carries ``member_count`` (same round trip)."""
        statement = access_statement(lock=lock, member_count=member_count)
        row = self.session.execute(statement, {"user_id": user_id, "room_id": room_id}).first()
        if row is None:
            raise no_such_room()
        member = None
        if row.member_user_id is not None:
            member = Member(row.member_user_id, row.role, row.joined_at, row.last_read_seq, row.muted)
        if member is None and row.kind != PUBLIC:
            raise no_such_room()
        if member is None and need_member:
            raise Forbidden("Join this room first.")
        return Access(row, member)

    def member_ids(self, room_id: str) -> list[str]:
        """In joining order (the first is the longest-standing member)."""
        return list(self.session.execute(
            select(memberships.c.user_id).where(memberships.c.room_id == room_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id)).scalars())

    def member_counts(self, room_ids: list[str]) -> dict[str, int]:
        if not room_ids:
            return {}
        rows = self.session.execute(select(memberships.c.room_id, func.count())
                                    .where(memberships.c.room_id.in_(room_ids))
                                    .group_by(memberships.c.room_id))
        return {room_id: count for room_id, count in rows}

    def load_room(self, room_id: str) -> dict:
        row = self.session.execute(select(rooms).where(rooms.c.id == room_id)).first()
        if row is None:
            raise no_such_room()
        return room_dict(row, self.member_counts([room_id]).get(room_id, 0))

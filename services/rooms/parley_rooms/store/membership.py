"""Membership: join, add, leave (ownership passing on), the member list, muting."""
from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from parley_common.errors import Forbidden
from parley_common.outbox import Event
from parley_common.timeutil import iso, utcnow

from ..models import memberships, rooms, users
from .access import RoomAccess
from .base import DIRECT, MEMBER, OWNER, PRIVATE, PUBLIC, operation, read_only
from .rendering import public_user


class Membership(RoomAccess):
    @operation
    def join_room(self, user_id: str, room_id: str) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=False)
        if access.room.kind == DIRECT:
            raise Forbidden("Direct rooms cannot be joined.")
        if access.member is not None:  # already in: joining again changes nothing
            return self.get_room(user_id, room_id), []
        user = self.ensure_users([user_id], "user_id")[user_id]
        access = self.access(user_id, room_id, need_member=False, lock=True)
        if access.member is not None:
            return self.get_room(user_id, room_id), []
        becomes_owner = access.room.owner_id is None  # an abandoned public room gets a new owner
        try:
            self._insert_member(room_id, user_id, OWNER if becomes_owner else MEMBER,
                                access.room.last_seq)
            if becomes_owner:
                self.session.execute(update(rooms).where(rooms.c.id == room_id).values(owner_id=user_id))
        except IntegrityError:  # a concurrent join of the same user won
            self.session.rollback()
            return self.get_room(user_id, room_id), []
        room = self.load_room(room_id)
        member_ids = self.member_ids(room_id)
        events = [("member_joined", {"room_id": room_id, "user": public_user(user_id, user),
                                     "member_ids": member_ids})]
        if becomes_owner:
            events.append(("room_updated", {"room": room, "member_ids": member_ids}))
        self.outbox.commit(events)
        return room, events

    @operation
    def add_member(self, user_id: str, room_id: str, member_id: str) -> tuple[dict, list[Event]]:
        access = self.access(user_id, room_id, need_member=True)
        if access.room.kind != PRIVATE:
            raise Forbidden("Members can only be added to private rooms; public rooms are joined.")
        user = self.ensure_users([member_id], "member_id")[member_id]
        access = self.access(user_id, room_id, need_member=True, lock=True)
        already = self.session.execute(select(memberships.c.user_id).where(
            memberships.c.room_id == room_id, memberships.c.user_id == member_id)).first()
        if already is not None:
            return self.get_room(user_id, room_id), []
        try:
            self._insert_member(room_id, member_id, MEMBER, access.room.last_seq)
        except IntegrityError:
            self.session.rollback()
            return self.get_room(user_id, room_id), []
        room = self.load_room(room_id)
        events = [("member_joined", {"room_id": room_id, "user": public_user(member_id, user),
                                     "member_ids": self.member_ids(room_id)})]
        self.outbox.commit(events)
        return room, events

    def _insert_member(self, room_id: str, user_id: str, role: str, read_up_to: int) -> None:
        """A newcomer has read everything before they came."""
        self.session.execute(insert(memberships).values(
            room_id=room_id, user_id=user_id, role=role, joined_at=utcnow(),
            last_read_seq=read_up_to, muted=False))

    @operation
    def leave_room(self, user_id: str, room_id: str) -> list[Event]:
        access = self.access(user_id, room_id, need_member=False)
        if access.room.kind == DIRECT:
            raise Forbidden("Direct rooms cannot be left.")
        if access.member is None:  # public room you are not in: nothing to do
            return []
        self.session.rollback()  # end the read before _remove_member locks the room
        return self._remove_member(room_id, user_id)

    def _remove_member(self, room_id: str, user_id: str) -> list[Event]:
        """Take ``user_id`` out of the room (committed). Ownership passes to the
        longest-standing member; a public room left empty stays (ownerless; the next to join
        owns it), a private or direct room left empty is deleted, since nobody could ever
        reach it again."""
        room = self.session.execute(
            select(rooms).where(rooms.c.id == room_id).with_for_update()).first()
        if room is None:
            self.session.rollback()  # remove_user goes on with its next room
            return []
        member_ids = self.member_ids(room_id)
        removed = self.session.execute(delete(memberships).where(
            memberships.c.room_id == room_id, memberships.c.user_id == user_id))
        if removed.rowcount == 0:
            self.session.rollback()
            return []
        remaining = [member for member in member_ids if member != user_id]
        user = public_user(user_id, self.user_rows([user_id]).get(user_id))
        events: list[Event] = [("member_left", {"room_id": room_id, "user": user,
                                                "member_ids": member_ids})]
        if not remaining and room.kind != PUBLIC:
            self._delete_room_rows(room_id)
            events.append(("room_deleted", {"room_id": room_id, "member_ids": member_ids}))
            self.outbox.commit(events)
            return events
        if room.owner_id == user_id:
            successor = remaining[0] if remaining else None  # member_ids is ordered by joined_at
            self.session.execute(update(rooms).where(rooms.c.id == room_id).values(owner_id=successor))
            if successor is not None:
                self.session.execute(update(memberships).where(
                    memberships.c.room_id == room_id, memberships.c.user_id == successor)
                    .values(role=OWNER))
            events.append(("room_updated", {"room": self.load_room(room_id), "member_ids": remaining}))
        self.outbox.commit(events)
        return events

    @read_only
    def list_members(self, user_id: str, room_id: str) -> list[dict]:
        self.access(user_id, room_id, need_member=True)
        rows = self.session.execute(
            select(memberships, users.c.id, users.c.username, users.c.display_name,
                   users.c.avatar_url, users.c.created_at)
            .select_from(memberships.outerjoin(users, users.c.id == memberships.c.user_id))
            .where(memberships.c.room_id == room_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id))
        return [{"user": public_user(row.user_id, row if row.id is not None else None),
                 "role": row.role, "joined_at": iso(row.joined_at),
                 "last_read_seq": row.last_read_seq} for row in rows]

    @operation
    def set_muted(self, user_id: str, room_id: str, muted: bool) -> dict:
        self.access(user_id, room_id, need_member=True)
        self.session.execute(update(memberships).where(
            memberships.c.room_id == room_id, memberships.c.user_id == user_id).values(muted=muted))
        self.session.commit()
        return {"room_id": room_id, "muted": muted}

    @operation
    def room_ids_for_user(self, user_id: str) -> list[str]:
        return list(self.session.execute(select(memberships.c.room_id)
                                         .where(memberships.c.user_id == user_id)
                                         .order_by(memberships.c.room_id)).scalars())

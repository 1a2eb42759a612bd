"""The users replica: public profiles fed by auth.events, and by auth.get_users for ids the
replica has not seen yet (registered a moment ago); rooms renders authors and members from
it without a call per message."""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from parley_common.errors import NotFound
from parley_common.outbox import Event
from parley_common.timeutil import parse_iso

from ..models import users
from .base import StoreBase, operation


class UsersReplica(StoreBase):
    @operation
    def replicate_user(self, user: dict) -> None:
        """user_registered / user_updated: store the profile."""
        self.upsert_user(user)
        self.session.commit()

    def upsert_user(self, user: dict) -> None:
        """Insert or refresh one public profile (the caller commits); a deleted user stays
        deleted (redelivery of an older event must not bring them back)."""
        def string(name: str, limit: int | None = None) -> str | None:
            value = user.get(name)
            if not isinstance(value, str):
                return None
            return value[:limit] if limit else value

        # Lenient about odd payloads: an event that can never be stored would be redelivered forever.
        values = {
            "id": user["id"],
            "username": string("username", 64) or "",
            "display_name": string("display_name", 128),
            "avatar_url": string("avatar_url"),
            "created_at": parse_iso(user.get("created_at")),
        }
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        statement = upsert(users).values(**values, deleted=False)
        statement = statement.on_conflict_do_update(
            index_elements=[users.c.id],
            set_={name: statement.excluded[name]
                  for name in ("username", "display_name", "avatar_url", "created_at")})
        self.session.execute(statement)

    def ensure_users(self, ids: list[str], field: str) -> dict[str, Any]:
        """Replica rows of ``ids``, fetching unknown ones from auth (committed at once);
        NotFound naming ``field`` when a user does not exist (or was deleted)."""
        if not ids:
            return {}
        found = self.user_rows(ids)
        missing = [user_id for user_id in ids if user_id not in found]
        if missing:
            fetched = self.fetch_users(missing) or {}
            for user in fetched.values():
                if isinstance(user, dict) and isinstance(user.get("id"), str) and user["id"] in missing:
                    self.upsert_user(user)
            self.session.commit()
            found.update(self.user_rows(missing))
        unknown = [user_id for user_id in ids if user_id not in found or found[user_id].deleted]
        if unknown:
            raise NotFound("No such user.", {field: "no such user: " + ", ".join(unknown)})
        return found

    def user_rows(self, ids) -> dict[str, Any]:
        ids = list(ids)
        if not ids:
            return {}
        return {row.id: row for row in self.session.execute(select(users).where(users.c.id.in_(ids)))}

    @operation
    def remove_user(self, user_id: str) -> list[Event]:
        """user_deleted: mark the replica row deleted and take the user out of every room."""
        marked = self.session.execute(update(users).where(users.c.id == user_id).values(deleted=True))
        if marked.rowcount == 0:  # never seen: remember the deletion so a late event can't revive
            try:
                self.session.execute(insert(users).values(id=user_id, username="", deleted=True))
            except IntegrityError:
                self.session.rollback()
                self.session.execute(update(users).where(users.c.id == user_id).values(deleted=True))
        self.session.commit()
        events: list[Event] = []
        for room_id in self.room_ids_for_user(user_id):
            events.extend(self._remove_member(room_id, user_id))
        return events

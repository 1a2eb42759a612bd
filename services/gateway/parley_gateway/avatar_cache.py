"""The gateway's in-process cache of avatar pictures (api_avatars.py serves them)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

CACHE_BYTES = 8 * 1024 * 1024  # ~1000 avatars of a few KiB each
# Users known to have no picture (no avatar, deleted, or no such id): a browser showing
# initials asks again on every page, and each miss would cost auth a query.
MISSING_ENTRIES = 10_000


@dataclass(frozen=True)
class Picture:
    version: str
    media_type: str
    data: bytes


class AvatarCache:
    """The current picture of recently shown users, least recently used out first, at most
    ``max_bytes`` of pictures in all; and up to ``max_missing`` users known to have none
    (a list of its own, so a stream of unknown ids cannot push real pictures out)."""

    def __init__(self, max_bytes: int = CACHE_BYTES, max_missing: int = MISSING_ENTRIES):
        self.max_bytes = max_bytes
        self.max_missing = max_missing
        self._missing: OrderedDict[str, None] = OrderedDict()
        self.size = 0
        # Counts forget() calls: a picture fetched while someone's changed is not kept (it
        # may be the one just removed), see ticket().
        self.forgets = 0
        self._pictures: OrderedDict[str, Picture] = OrderedDict()

    def get(self, user_id: str, version: str) -> Picture | None:
        picture = self._pictures.get(user_id)
        if picture is None or picture.version != version:
            return None
        self._pictures.move_to_end(user_id)
        return picture

    def is_missing(self, user_id: str) -> bool:
        """True when auth said this user has no picture (and nothing changed since)."""
        return user_id in self._missing

    def put_missing(self, user_id: str, ticket: int | None = None) -> None:
        """Remember that ``user_id`` has no picture, unless a profile changed since
        ``ticket`` was taken (an upload may have raced the answer)."""
        if ticket is not None and ticket != self.forgets:
            return
        self._drop(user_id)
        self._missing[user_id] = None
        self._missing.move_to_end(user_id)
        while len(self._missing) > self.max_missing:
            self._missing.popitem(last=False)

    def ticket(self) -> int:
        """Taken before fetching a picture, handed to put()."""
        return self.forgets

    def put(self, user_id: str, picture: Picture, ticket: int | None = None) -> None:
        """Keep ``picture`` unless a profile changed since ``ticket`` was taken."""
        if ticket is not None and ticket != self.forgets:
            return
        self._drop(user_id)
        if len(picture.data) > self.max_bytes:
            return
        self._pictures[user_id] = picture
        self.size += len(picture.data)
        while self.size > self.max_bytes:
            _, oldest = self._pictures.popitem(last=False)
            self.size -= len(oldest.data)

    def forget(self, user_id: str) -> None:
        self.forgets += 1
        self._drop(user_id)

    def _drop(self, user_id: str) -> None:
        self._missing.pop(user_id, None)
        old = self._pictures.pop(user_id, None)
        if old is not None:
            self.size -= len(old.data)

    def __len__(self) -> int:
        return len(self._pictures)

"""The gateway's in-process cache of avatar pictures (api_avatars.py serves them)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

CACHE_BYTES = 8 * 1024 * 1024  # ~1000 avatars of a few KiB each


@dataclass(frozen=True)
class Picture:
    version: str
    media_type: str
    data: bytes


class AvatarCache:
    """The current picture of recently shown users, least recently used out first, at most
    ``max_bytes`` of pictures in all."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
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
        old = self._pictures.pop(user_id, None)
        if old is not None:
            self.size -= len(old.data)

    def __len__(self) -> int:
        return len(self._pictures)

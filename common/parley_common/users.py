"""The public profile of a user (DESIGN.md's public user), as auth renders it from its users
and rooms from its replica of them."""
from __future__ import annotations

from typing import Any

from .timeutil import iso

# Avatars are images auth keeps and the gateway serves from its own origin (the web client's
# Content-Security-Policy allows images from 'self' only). The version in the query changes
# with the picture, so the gateway can let browsers cache one address for ever.
AVATAR_PATH = "/api/v1/users/{user_id}/avatar"


def avatar_url(user_id: str, version: str) -> str:
    return AVATAR_PATH.format(user_id=user_id) + f"?v={version}"


def local_avatar_url(url: Any) -> str | None:
    """``url`` when it is one of our own avatar addresses, else None: profiles never carry a
    remote image address (older accounts had them; a replica may still hold one)."""
    if isinstance(url, str) and url.startswith("/api/v1/users/"):
        return url
    return None


def public_user(user: Any) -> dict[str, Any]:
    """``user``: anything with id, username, display_name, avatar_url and created_at."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "avatar_url": local_avatar_url(user.avatar_url), "created_at": iso(user.created_at)}

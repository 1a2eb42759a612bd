"""The public profile of a user (DESIGN.md's public user), as auth renders it from its users
and rooms from its replica of them."""
from __future__ import annotations

from typing import Any

from .timeutil import iso


def public_user(user: Any) -> dict[str, Any]:
    """``user``: anything with id, username, display_name, avatar_url and created_at."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "avatar_url": user.avatar_url, "created_at": iso(user.created_at)}

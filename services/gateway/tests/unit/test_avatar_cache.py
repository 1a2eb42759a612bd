"""The gateway's avatar cache: one picture per user, served only under its version,
least recently used out first within its byte budget, forgotten on request."""
from __future__ import annotations

from parley_gateway.avatar_cache import AvatarCache, Picture


def picture(version: str, size: int = 10) -> Picture:
    return Picture(version, "image/webp", b"x" * size)


def test_served_under_its_version_only_and_forgotten():
    cache = AvatarCache(100)
    cache.put("ann", picture("v1"))
    assert cache.get("ann", "v1") == picture("v1")
    assert cache.get("ann", "v0") is None and cache.get("bob", "v1") is None
    cache.put("ann", picture("v2"))  # a new picture replaces the old one
    assert cache.get("ann", "v1") is None and cache.get("ann", "v2") is not None
    assert len(cache) == 1 and cache.size == 10
    cache.forget("ann")
    cache.forget("ann")  # twice: fine
    assert cache.get("ann", "v2") is None and len(cache) == 0 and cache.size == 0


def test_least_recently_used_out_first_within_the_budget():
    cache = AvatarCache(30)
    for user in ("a", "b", "c"):
        cache.put(user, picture("v"))
    assert cache.get("a", "v") is not None  # a is now the most recently used
    cache.put("d", picture("v"))
    assert cache.get("b", "v") is None
    assert all(cache.get(user, "v") is not None for user in ("a", "c", "d"))
    assert cache.size == 30
    cache.put("huge", picture("v", 31))  # larger than the whole budget: not kept
    assert cache.get("huge", "v") is None and cache.size == 30


def test_a_picture_fetched_while_a_profile_changed_is_not_kept():
    cache = AvatarCache(100)
    ticket = cache.ticket()
    cache.forget("ann")  # user_updated arrived while the picture was on its way
    cache.put("ann", picture("old"), ticket)
    assert cache.get("ann", "old") is None
    cache.put("ann", picture("new"), cache.ticket())
    assert cache.get("ann", "new") is not None


def test_users_without_a_picture_are_remembered_until_their_profile_changes():
    cache = AvatarCache(100, max_missing=2)
    cache.put_missing("ann")
    assert cache.is_missing("ann") and cache.get("ann", "v1") is None
    cache.forget("ann")  # user_updated: she may have uploaded one
    assert not cache.is_missing("ann")
    cache.put_missing("ann")
    cache.put("ann", picture("v1"))  # a picture replaces the "none"
    assert not cache.is_missing("ann") and cache.get("ann", "v1") is not None
    ticket = cache.ticket()
    cache.forget("bob")  # a profile changed while the "none" was on its way
    cache.put_missing("bob", ticket)
    assert not cache.is_missing("bob")
    for user in ("x", "y", "z"):  # bounded on its own: the oldest goes
        cache.put_missing(user)
    assert not cache.is_missing("x") and cache.is_missing("y") and cache.is_missing("z")
    assert cache.get("ann", "v1") is not None  # and no picture was pushed out

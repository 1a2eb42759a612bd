"""A post's checks (service.py _checked_post): the one-go check of a well-formed post gives
what the per-field Checker gives, and anything it does not pass gets the Checker's answer."""
from __future__ import annotations

import pytest

from parley_common.errors import ValidationFailed
from parley_common.limits import MAX_CLIENT_ID, MAX_ID, MAX_TEXT
from parley_rooms.service import _checked_post, _well_formed_post
from parley_rooms.store import NewPost

GOOD = {"user_id": "u1", "room_id": "r1", "text": "  hello  ", "client_id": "c1"}


def test_a_well_formed_post_is_checked_in_one_go_and_trimmed():
    assert _well_formed_post(GOOD) == NewPost("u1", "r1", "hello", "c1", None)
    assert _checked_post(GOOD) == NewPost("u1", "r1", "hello", "c1", None)
    reply = {**GOOD, "reply_to": "m1"}
    assert _well_formed_post(reply) == _checked_post(reply) == NewPost("u1", "r1", "hello",
                                                                         "c1", "m1")
    longest = {"user_id": "u" * MAX_ID, "room_id": "r" * MAX_ID, "text": "t" * MAX_TEXT,
               "client_id": "c" * MAX_CLIENT_ID, "reply_to": "m" * MAX_ID}
    assert _well_formed_post(longest) == _checked_post(longest)


@pytest.mark.parametrize("change, field", [
    ({"user_id": ""}, "user_id"),
    ({"room_id": 7}, "room_id"),
    ({"room_id": "r" * (MAX_ID + 1)}, "room_id"),
    ({"text": "   "}, "text"),
    ({"text": "t" * (MAX_TEXT + 1)}, "text"),
    ({"text": "nul\x00"}, "text"),
    ({"text": "lone \ud800"}, "text"),
    ({"user_id": "u\x00"}, "user_id"),
    ({"client_id": None}, "client_id"),
    ({"client_id": "c" * (MAX_CLIENT_ID + 1)}, "client_id"),
    ({"reply_to": ""}, "reply_to"),
    ({"reply_to": ["m1"]}, "reply_to"),
    ({"reply_to": "m\ud800"}, "reply_to"),
])
def test_anything_else_gets_the_checkers_answer_naming_the_field(change, field):
    post = {**GOOD, **change}
    assert _well_formed_post(post) is None
    with pytest.raises(ValidationFailed) as refused:
        _checked_post(post)
    assert list(refused.value.details) == [field]


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ValidationFailed) as refused:
        _checked_post({"user_id": 1, "room_id": "", "text": "", "client_id": ""})
    assert set(refused.value.details) == {"user_id", "room_id", "text", "client_id"}
    with pytest.raises(ValidationFailed) as refused:
        _checked_post(["not", "a", "post"])
    assert list(refused.value.details) == ["post"]

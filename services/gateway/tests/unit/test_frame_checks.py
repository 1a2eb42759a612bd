"""The hand check of the `send` frame (frame_checks.py) against the schema it replaces on the
hot path: for every frame, the same ValidationFailed (fields, sentences, their order) as
check_fields with schemas.FRAMES["send"], or no error for both."""
from __future__ import annotations

import itertools

import pytest

from parley_common.errors import ValidationFailed
from parley_common.limits import MAX_CLIENT_ID, MAX_ID, MAX_TEXT
from parley_gateway import schemas
from parley_gateway.frame_checks import FRAME_CHECKS, string_fields_check
from parley_gateway.http import SchemaValidator, check_fields

SEND_VALIDATOR = SchemaValidator(schemas.FRAMES["send"])
ABSENT = object()

# Values each field takes in the cross product: valid, empty, whitespace, at and past the
# limits, wrong types, absent.
ROOM_IDS = ["r1", "", " ", "x" * MAX_ID, "x" * (MAX_ID + 1), None, 7, ["r1"], ABSENT]
TEXTS = ["hello", "", "   ", " \t\n", " padded ", "x" * MAX_TEXT, "x" * (MAX_TEXT + 1),
         " " + "x" * MAX_TEXT + " ", "é" * MAX_TEXT, "\u2003x\u2003", None, 3.5, True,
         {"t": 1}, ABSENT]
CLIENT_IDS = ["c1", "", "  ", "x" * MAX_CLIENT_ID, "x" * (MAX_CLIENT_ID + 1), None, 0, ABSENT]
REPLY_TOS = ["m1", None, "", "x" * (MAX_ID + 1), 4, ABSENT]  # a string or null


def outcome(check, frame: dict):
    try:
        check(frame)
    except ValidationFailed as exc:
        return exc.code, exc.message, list(exc.details.items())
    return None


def frames():
    for room_id, text, client_id, reply_to in itertools.product(ROOM_IDS, TEXTS, CLIENT_IDS,
                                                                REPLY_TOS):
        frame = {"type": "send", "ref": 1}
        for name, value in (("room_id", room_id), ("text", text), ("client_id", client_id),
                            ("reply_to", reply_to)):
            if value is not ABSENT:
                frame[name] = value
        yield frame


def test_send_check_gives_exactly_the_schema_errors():
    checked = failing = 0
    for frame in frames():
        expected = outcome(lambda f: check_fields(SEND_VALIDATOR, f), frame)
        assert outcome(FRAME_CHECKS["send"], frame) == expected, frame
        checked += 1
        failing += expected is not None
    assert checked == len(ROOM_IDS) * len(TEXTS) * len(CLIENT_IDS) * len(REPLY_TOS)
    assert 0 < failing < checked  # both kinds were compared


def test_extra_fields_are_ignored_like_the_schema_does():
    frame = {"type": "send", "room_id": "r", "text": "hi", "client_id": "c", "name": "",
             "extra": [1, 2]}
    assert outcome(FRAME_CHECKS["send"], frame) is None
    assert outcome(lambda f: check_fields(SEND_VALIDATOR, f), frame) is None


def test_an_error_names_the_fields_in_the_schemas_order():
    frame = {"type": "send", "client_id": 5, "text": ""}
    assert outcome(FRAME_CHECKS["send"], frame) == (
        "validation_failed", outcome(lambda f: check_fields(SEND_VALIDATOR, f), frame)[1],
        [("text", schemas.TEXT["x-message"]), ("client_id", "client_id must be a string."),
         ("room_id", "room_id is required.")])


def test_every_other_frame_type_keeps_the_schema_check():
    bad = {"room_id": 5, "seq": -1, "token": 1, "after_seq": "x"}
    for type_, schema in schemas.FRAMES.items():
        if type_ == "send" or not schema["properties"]:
            continue
        frame = {"type": type_, **bad}
        assert outcome(FRAME_CHECKS[type_], frame) == outcome(
            lambda f: check_fields(SchemaValidator(schema), f), frame) is not None
    FRAME_CHECKS["ping"]({"type": "ping"})


def test_a_schema_the_hand_check_cannot_follow_is_refused():
    with pytest.raises(ValueError):
        string_fields_check({"type": "object", "required": [],
                             "properties": {"seq": {"type": "integer", "x-message": "m"}}})
    with pytest.raises(ValueError):
        string_fields_check({"type": "object", "required": [],
                             "properties": {"name": {"type": "string", "pattern": "^a$",
                                                     "x-message": "m"}}})

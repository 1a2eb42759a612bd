"""Checks of client WebSocket frames: each frame type's schema (schemas.FRAMES) through
jsonschema (http.check_fields), except ``send``, the frame of every chat message, which is
checked by hand here: jsonschema's evolve/descend machinery cost ~5 % of the gateway's CPU
at 800 msgs/s for three string fields.

The hand check is built from the same schema (titles, lengths, sentences) and gives exactly
the errors check_fields gives (validation_failed, the same fields, sentences and order: the
present fields in the schema's order, then the missing ones in ``required`` order);
services/gateway/tests/unit/test_frame_checks.py holds it to that. A schema of ``send`` that
is no longer three trimmed-or-not strings with lengths makes the import fail rather than
silently check less. Strings may be nullable (``reply_to``).
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from parley_common.errors import ValidationFailed

from . import schemas
from .http import _TYPE_WORDS, SchemaValidator, _label, check_fields

FrameCheck = Callable[[dict], None]


def _string_fields(schema: dict) -> tuple[tuple[tuple, ...], tuple[tuple[str, str], ...]]:
    """(name, trimmed, nullable, min, max, wrong-type sentence, bad-length sentence) per
    property and (name, missing sentence) per required field, from a schema of plain string
    properties (a string or null where the type says so, as a reply's ``reply_to``)."""
    fields = []
    for name, field in schema["properties"].items():
        types = field.get("type")
        types = types if isinstance(types, list) else [types]
        if (types not in (["string"], ["string", "null"])
                or set(field) - {"type", "title", "description", "minLength", "maxLength",
                                 "x-message"}
                or "x-message" not in field):
            raise ValueError(f"the hand check cannot check {name!r}: {field!r}")
        label = _label(name, field)
        wrong_type = f"{label} must be {' or '.join(_TYPE_WORDS[t] for t in types)}."
        fields.append((name, name in schemas.TRIMMED, "null" in types,
                       field.get("minLength", 0), field.get("maxLength"), wrong_type,
                       field["x-message"].replace("{name}", name)))
    required = tuple((name, f"{_label(name, schema['properties'].get(name, {}))} is required.")
                     for name in schema["required"])
    return tuple(fields), required


def string_fields_check(schema: dict) -> FrameCheck:
    """A check of ``schema`` (an object of string properties), equal to check_fields'."""
    fields, required = _string_fields(schema)

    def check(frame: dict) -> None:
        details = None
        for name, trimmed, nullable, minimum, maximum, wrong_type, bad_length in fields:
            if name not in frame:
                continue
            value = frame[name]
            if value is None and nullable:
                continue
            if not isinstance(value, str):
                problem = wrong_type
            else:
                size = len(value.strip() if trimmed else value)
                if size >= minimum and (maximum is None or size <= maximum):
                    continue
                problem = bad_length
            if details is None:
                details = {}
            details[name] = problem
        for name, missing in required:
            if name not in frame:
                if details is None:
                    details = {}
                details[name] = missing
        if details:
            raise ValidationFailed(details=details)

    return check


# Client frame type -> its check (raises ValidationFailed naming every bad field).
FRAME_CHECKS: dict[str, FrameCheck] = {
    type_: partial(check_fields, SchemaValidator(schema))
    for type_, schema in schemas.FRAMES.items()}
FRAME_CHECKS["send"] = string_fields_check(schemas.FRAMES["send"])

"""Field rules of the public API. Each check adds a sentence to ``errors[field]`` and returns
the normalized value, so a request reports every bad field at once."""
from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email

from parley_common.errors import ValidationFailed
# The limits are parley_common.limits' (the gateway's schemas use the same); the service reads
# them from here (v.MAX_PASSWORD, ...).
from parley_common.limits import (MAX_DISPLAY_NAME, MAX_EMAIL, MAX_ID,
                                  MAX_IDS_PER_CALL, MAX_PAGE, MAX_PASSWORD, MAX_USER_AGENT,
                                  MAX_USERNAME, MIN_PAGE, MIN_PASSWORD, MIN_USERNAME,
                                  USERNAME_PATTERN)
from parley_common.text import PROBLEM, has_control_chars, storable

USERNAME_RE = re.compile(USERNAME_PATTERN, re.ASCII)

Errors = dict[str, str]


def raise_if(errors: Errors) -> None:
    if errors:
        raise ValidationFailed(details=errors)


def username(value: Any, errors: Errors) -> str | None:
    if not isinstance(value, str):
        errors["username"] = "Username is required and must be a string."
    elif not USERNAME_RE.fullmatch(value):
        errors["username"] = (f"Username must be {MIN_USERNAME} to {MAX_USERNAME} characters "
                              "of letters, digits, '_', '.' or '-'.")
    else:
        return value
    return None


def email(value: Any, errors: Errors) -> str | None:
    if not isinstance(value, str):
        errors["email"] = "Email is required and must be a string."
        return None
    value = value.strip()
    if len(value) > MAX_EMAIL:
        errors["email"] = f"Email must be at most {MAX_EMAIL} characters."
        return None
    if not storable(value):
        errors["email"] = "Email must be a valid address such as name@example.com."
        return None
    try:
        normalized = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        errors["email"] = "Email must be a valid address such as name@example.com."
        return None
    if len(normalized) > MAX_EMAIL:
        errors["email"] = f"Email must be at most {MAX_EMAIL} characters."
        return None
    return normalized


def password(value: Any, name: str | None, errors: Errors) -> str | None:
    if not isinstance(value, str):
        errors["password"] = "Password is required and must be a string."
    elif not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        errors["password"] = f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters."
    elif not storable(value):
        errors["password"] = f"Password {PROBLEM}."
    elif isinstance(name, str) and value.casefold() == name.casefold():
        errors["password"] = "Password must not be the same as the username."
    else:
        return value
    return None


def display_name(value: Any, errors: Errors) -> str | None:
    """The trimmed display name; "" means "use the username"."""
    if not isinstance(value, str):
        errors["display_name"] = "Display name must be a string."
        return None
    value = value.strip()
    if len(value) > MAX_DISPLAY_NAME:
        errors["display_name"] = f"Display name must be at most {MAX_DISPLAY_NAME} characters."
    elif has_control_chars(value):
        errors["display_name"] = "Display name must not contain control characters."
    else:
        return value
    return None


def avatar_url(value: Any, errors: Errors, current: str | None = None) -> str | None:
    """"" (no avatar) or ``current`` (the caller's own avatar address, sent back unchanged).
    A picture is uploaded (set_avatar), never linked: remote addresses are refused, so no
    client ever loads an image from elsewhere."""
    if not isinstance(value, str):
        errors["avatar_url"] = "Avatar URL must be a string."
        return None
    value = value.strip()
    if value == "" or (current is not None and value == current):
        return value
    errors["avatar_url"] = ("Avatar URL can only be \"\" (no avatar) or your current one: "
                            "upload a picture instead (PUT /api/v1/users/me/avatar).")
    return None


def identifier(field: str, value: Any, errors: Errors) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not storable(value):
        errors[field] = f"{field} must be a non-empty id string."
        return None
    return value


def require_id(field: str, value: Any) -> str:
    errors: Errors = {}
    result = identifier(field, value, errors)
    raise_if(errors)
    return result


def id_list(field: str, value: Any, errors: Errors) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors[field] = f"{field} must be a list of id strings."
    elif len(value) > MAX_IDS_PER_CALL:
        errors[field] = f"{field} may hold at most {MAX_IDS_PER_CALL} ids."
    else:
        return value
    return None


def limit(value: Any, errors: Errors, low: int = MIN_PAGE, high: int = MAX_PAGE) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors["limit"] = f"limit must be an integer from {low} to {high}."
        return None
    return value

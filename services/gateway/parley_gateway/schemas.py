"""JSON Schemas of the public API: request bodies (checked by the gateway) and the objects it
returns. The OpenAPI document (openapi.py) is generated from these same dictionaries, so what
is documented is exactly what is enforced.

Conventions: unknown extra fields in a request body are ignored (not rejected), so older
gateways accept newer clients; ``title`` is the field's name in error sentences and
``x-message`` replaces the generic sentence for format rules (pattern, length).
"""
from __future__ import annotations

ID = {"type": "string", "minLength": 1, "maxLength": 64}
TIME = {"type": "string", "format": "date-time", "example": "2026-11-22T10:15:00.123Z"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

USERNAME = {
    "title": "Username", "type": "string", "pattern": r"^[A-Za-z0-9_.-]{3,32}$",
    "x-message": "Username must be 3 to 32 characters of letters, digits, '_', '.' or '-'.",
}
EMAIL = {
    "title": "Email", "type": "string", "maxLength": 254,
    "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "x-message": "Email must be a valid address such as name@example.com (at most 254 characters).",
}
PASSWORD = {
    "title": "Password", "type": "string", "minLength": 8, "maxLength": 128,
    "x-message": "Password must be 8 to 128 characters.",
}
DISPLAY_NAME = {
    "title": "Display name", "type": "string", "maxLength": 64,
    "x-message": "Display name must be at most 64 characters.",
}
AVATAR_URL = {
    "title": "Avatar URL", "type": "string", "maxLength": 512, "pattern": r"^(https?://\S+)?$",
    "x-message": "Avatar URL must be an http:// or https:// URL of at most 512 characters "
                 "(or \"\" for none).",
}
ROOM_NAME = {
    "title": "Name", "type": "string", "minLength": 1, "maxLength": 64,
    "x-message": "Name must be 1 to 64 characters (not counting surrounding spaces).",
}
TOPIC = {
    "title": "Topic", "type": ["string", "null"], "maxLength": 256,
    "x-message": "Topic must be at most 256 characters.",
}
TEXT = {
    "title": "Text", "type": "string", "minLength": 1, "maxLength": 4000,
    "x-message": "Text must be 1 to 4000 characters (not counting surrounding spaces).",
}
CLIENT_ID = {
    "title": "client_id", "type": "string", "minLength": 1, "maxLength": 64,
    "x-message": "client_id must be 1 to 64 characters.",
}


def _body(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required)}


# --- request bodies -----------------------------------------------------------------------
REGISTER = _body({"username": USERNAME, "email": EMAIL, "password": PASSWORD,
                  "display_name": DISPLAY_NAME}, ("username", "email", "password"))
LOGIN = _body({
    "username": {"title": "Username", "type": "string", "minLength": 1, "maxLength": 254,
                 "description": "Username or email address.",
                 "x-message": "Username (or email) must be 1 to 254 characters."},
    "password": {"title": "Password", "type": "string", "minLength": 1, "maxLength": 1024,
                 "x-message": "Password must be 1 to 1024 characters."},
}, ("username", "password"))
UPDATE_ME = _body({"display_name": DISPLAY_NAME, "avatar_url": AVATAR_URL})
_CURRENT_PASSWORD = {"title": "Password", "type": "string", "minLength": 1, "maxLength": 1024,
                     "x-message": "Your current password is required."}
LOGIN["properties"]["refresh_delivery"] = {
    "title": "refresh_delivery", "type": "string", "enum": ["cookie", "body"],
    "description": "Where the refresh credential goes: an HttpOnly cookie (default, browsers) "
                   "or `refresh_token` in the reply (terminal clients, which keep it in a "
                   "0600 file)."}
REFRESH = _body({"refresh_token": {"title": "refresh_token", "type": "string", "minLength": 1,
                                   "maxLength": 200,
                                   "x-message": "refresh_token must be the refresh credential."}})
CHANGE_PASSWORD = _body({"old_password": {**_CURRENT_PASSWORD, "title": "Current password"},
                         "new_password": {**PASSWORD, "title": "New password",
                                          "x-message": "New password must be 8 to 128 "
                                                       "characters."}},
                        ("old_password", "new_password"))
DELETE_ME = _body({"password": _CURRENT_PASSWORD}, ("password",))
CREATE_ROOM = _body({
    "name": ROOM_NAME,
    "kind": {"title": "Kind", "type": "string", "enum": ["public", "private"]},
    "topic": TOPIC,
    "member_ids": {"title": "member_ids", "type": "array", "items": ID, "maxItems": 100,
                   "x-message": "member_ids must be a list of at most 100 user ids."},
}, ("name", "kind"))
OPEN_DIRECT = _body({"user_id": {**ID, "title": "user_id",
                                 "x-message": "user_id must be a user id."}}, ("user_id",))
UPDATE_ROOM = _body({"name": ROOM_NAME, "topic": TOPIC})
ADD_MEMBER = OPEN_DIRECT
MUTE = _body({"muted": {"title": "muted", "type": "boolean"}}, ("muted",))
POST_MESSAGE = _body({"text": TEXT, "client_id": CLIENT_ID}, ("text",))
EDIT_MESSAGE = _body({"text": TEXT}, ("text",))
MARK_READ = _body({"seq": {"title": "seq", "type": "integer", "minimum": 0,
                           "x-message": "seq must be a whole number of at least 0."}}, ("seq",))

# Which body fields are checked after trimming surrounding whitespace (the API's rules).
TRIMMED = ("email", "display_name", "avatar_url", "name", "topic", "text")

# --- query parameters ---------------------------------------------------------------------
LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 50,
         "x-message": "limit must be a whole number from 1 to 100."}
CURSOR = {"type": "string", "minLength": 1, "maxLength": 512,
          "x-message": "cursor must be a cursor returned by the previous page."}
SEARCH = {"type": "string", "maxLength": 64, "default": "",
          "x-message": "q must be at most 64 characters."}
SCOPE = {"type": "string", "enum": ["public", "joined"], "default": "joined",
         "x-message": "scope must be 'public' or 'joined'."}
SEQ = {"type": "integer", "minimum": 0,
       "x-message": "{name} must be a whole number of at least 0."}

# --- response objects ---------------------------------------------------------------------
USER = {
    "type": "object",
    "required": ["id", "username", "display_name", "avatar_url", "created_at"],
    "properties": {"id": ID, "username": {"type": "string"},
                   "display_name": {"type": ["string", "null"]},
                   "avatar_url": {"type": ["string", "null"]}, "created_at": TIME},
}
SELF_USER = {**USER, "required": USER["required"] + ["email"],
             "properties": {**USER["properties"], "email": {"type": "string"},
                            "is_admin": {"type": "boolean",
                                         "description": "You may use /api/v1/admin/."}}}
ROOM = {
    "type": "object",
    "required": ["id", "kind", "name", "topic", "owner_id", "member_count", "created_at",
                 "last_activity_at", "last_seq"],
    "properties": {
        "id": ID, "kind": {"type": "string", "enum": ["public", "private", "direct"]},
        "name": {"type": ["string", "null"]}, "topic": {"type": ["string", "null"]},
        "owner_id": {"type": ["string", "null"]}, "member_count": {"type": "integer"},
        "created_at": TIME, "last_activity_at": NULLABLE_TIME, "last_seq": {"type": "integer"},
        "archived_at": {**NULLABLE_TIME, "description": "Set when an administrator archived "
                                                        "the room: readable, not writable."},
    },
}
MESSAGE = {
    "type": "object",
    "required": ["id", "room_id", "seq", "author", "text", "client_id", "created_at",
                 "edited_at", "deleted"],
    "properties": {
        "id": ID, "room_id": ID, "seq": {"type": "integer"},
        "author": {"type": "object", "properties": {
            "id": ID, "username": {"type": "string"},
            "display_name": {"type": ["string", "null"]}}},
        "text": {"type": "string", "description": "\"\" once deleted"},
        "client_id": {"type": ["string", "null"]}, "created_at": TIME,
        "edited_at": NULLABLE_TIME, "deleted": {"type": "boolean"},
    },
}
MEMBER = {
    "type": "object", "required": ["user", "role", "joined_at", "last_read_seq", "online"],
    "properties": {"user": {"$ref": "#/components/schemas/User"},
                   "role": {"type": "string", "enum": ["owner", "member"]},
                   "joined_at": TIME, "last_read_seq": {"type": "integer"},
                   "online": {"type": "boolean"}},
}
CONVERSATION = {
    "type": "object", "required": ["room", "last_message", "unread_count", "muted"],
    "properties": {"room": {"$ref": "#/components/schemas/Room"},
                   "last_message": {"oneOf": [{"$ref": "#/components/schemas/Message"},
                                              {"type": "null"}]},
                   "unread_count": {"type": "integer"}, "muted": {"type": "boolean"}},
}
ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "string", "example": "validation_failed"},
            "message": {"type": "string"},
            "details": {"type": "object", "additionalProperties": True,
                        "description": "For validation_failed: each bad field -> a sentence. "
                                       "For rate_limited/unavailable: retry_after (seconds)."},
        }}},
}

SESSION = {"type": "object", "required": ["id", "user_agent", "created_at", "last_used_at",
                                           "expires_at", "current"],
           "properties": {"id": {"type": "string"},
                          "user_agent": {"type": ["string", "null"]},
                          "created_at": {"type": "string", "format": "date-time"},
                          "last_used_at": {"type": "string", "format": "date-time"},
                          "expires_at": {"type": "string", "format": "date-time"},
                          "current": {"type": "boolean",
                                      "description": "The session of this request."}}}

COMPONENTS = {"Session": SESSION, "User": USER, "SelfUser": SELF_USER, "Room": ROOM, "Message": MESSAGE,
              "Member": MEMBER, "Conversation": CONVERSATION, "Error": ERROR}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(**properties) -> dict:
    return {"type": "object", "required": list(properties), "properties": properties}

"""JSON Schemas of the public API: request bodies (checked by the gateway) and the objects it
returns. The OpenAPI document (openapi.py) is generated from these same dictionaries, so what
is documented is exactly what is enforced.

Conventions: unknown extra fields in a request body are ignored (not rejected), so older
gateways accept newer clients; ``title`` is the field's name in error sentences and
``x-message`` replaces the generic sentence for format rules (pattern, length).
"""
from __future__ import annotations

from parley_common.limits import (DEFAULT_PAGE, MAX_AVATAR_URL, MAX_CLIENT_ID,
                                  MAX_CURRENT_PASSWORD, MAX_CURSOR, MAX_DISPLAY_NAME, MAX_EMAIL,
                                  MAX_ID, MAX_LOGIN, MAX_MEMBER_IDS, MAX_PAGE, MAX_PASSWORD,
                                  MAX_EMOJI, MAX_QUERY, MAX_REFRESH_TOKEN, MAX_REPLY_EXCERPT,
                                  MAX_ROOM_NAME, MAX_TEXT,
                                  MAX_TOPIC, MAX_USERNAME, MIN_PAGE, MIN_PASSWORD, MIN_USERNAME,
                                  USERNAME_PATTERN)

ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID}
TIME = {"type": "string", "format": "date-time", "example": "2026-11-22T10:15:00.123Z"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

USERNAME = {
    "title": "Username", "type": "string", "pattern": f"^{USERNAME_PATTERN}$",
    "x-message": f"Username must be {MIN_USERNAME} to {MAX_USERNAME} characters of letters, "
                 "digits, '_', '.' or '-'.",
}
EMAIL = {
    "title": "Email", "type": "string", "maxLength": MAX_EMAIL,
    "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "x-message": "Email must be a valid address such as name@example.com "
                 f"(at most {MAX_EMAIL} characters).",
}
PASSWORD = {
    "title": "Password", "type": "string", "minLength": MIN_PASSWORD, "maxLength": MAX_PASSWORD,
    "x-message": f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
}
DISPLAY_NAME = {
    "title": "Display name", "type": "string", "maxLength": MAX_DISPLAY_NAME,
    "x-message": f"Display name must be at most {MAX_DISPLAY_NAME} characters.",
}
AVATAR_URL = {
    "title": "Avatar URL", "type": "string", "maxLength": MAX_AVATAR_URL,
    "pattern": r"^(/api/v1/users/\S+)?$",
    "description": "\"\" removes your avatar; your current avatar_url is taken unchanged. "
                   "Pictures are uploaded (PUT /api/v1/users/me/avatar), never linked: "
                   "remote addresses are refused.",
    "x-message": "Avatar URL can only be \"\" (no avatar) or your current one: upload a "
                 "picture instead (PUT /api/v1/users/me/avatar).",
}
ROOM_NAME = {
    "title": "Name", "type": "string", "minLength": 1, "maxLength": MAX_ROOM_NAME,
    "x-message": f"Name must be 1 to {MAX_ROOM_NAME} characters (not counting surrounding "
                 "spaces).",
}
TOPIC = {
    "title": "Topic", "type": ["string", "null"], "maxLength": MAX_TOPIC,
    "x-message": f"Topic must be at most {MAX_TOPIC} characters.",
}
TEXT = {
    "title": "Text", "type": "string", "minLength": 1, "maxLength": MAX_TEXT,
    "x-message": f"Text must be 1 to {MAX_TEXT} characters (not counting surrounding spaces).",
}
CLIENT_ID = {
    "title": "client_id", "type": "string", "minLength": 1, "maxLength": MAX_CLIENT_ID,
    "x-message": f"client_id must be 1 to {MAX_CLIENT_ID} characters.",
}


def _body(properties: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required)}


# --- request bodies -----------------------------------------------------------------------
REGISTER = _body({"username": USERNAME, "email": EMAIL, "password": PASSWORD,
                  "display_name": DISPLAY_NAME}, ("username", "email", "password"))
LOGIN = _body({
    "username": {"title": "Username", "type": "string", "minLength": 1, "maxLength": MAX_LOGIN,
                 "description": "Username or email address.",
                 "x-message": f"Username (or email) must be 1 to {MAX_LOGIN} characters."},
    "password": {"title": "Password", "type": "string", "minLength": 1,
                 "maxLength": MAX_CURRENT_PASSWORD,
                 "x-message": f"Password must be 1 to {MAX_CURRENT_PASSWORD} characters."},
}, ("username", "password"))
UPDATE_ME = _body({"display_name": DISPLAY_NAME, "avatar_url": AVATAR_URL})
_CURRENT_PASSWORD = {"title": "Password", "type": "string", "minLength": 1,
                     "maxLength": MAX_CURRENT_PASSWORD,
                     "x-message": "Your current password is required."}
LOGIN["properties"]["refresh_delivery"] = {
    "title": "refresh_delivery", "type": "string", "enum": ["cookie", "body"],
    "description": "Where the refresh credential goes: an HttpOnly cookie (default, browsers) "
                   "or `refresh_token` in the reply (terminal clients, which keep it in a "
                   "0600 file)."}
REFRESH = _body({"refresh_token": {"title": "refresh_token", "type": "string", "minLength": 1,
                                   "maxLength": MAX_REFRESH_TOKEN,
                                   "x-message": "refresh_token must be the refresh credential."}})
CHANGE_PASSWORD = _body({"old_password": {**_CURRENT_PASSWORD, "title": "Current password"},
                         "new_password": {**PASSWORD, "title": "New password",
                                          "x-message": f"New password must be {MIN_PASSWORD} "
                                                       f"to {MAX_PASSWORD} characters."}},
                        ("old_password", "new_password"))
DELETE_ME = _body({"password": _CURRENT_PASSWORD}, ("password",))
CREATE_ROOM = _body({
    "name": ROOM_NAME,
    "kind": {"title": "Kind", "type": "string", "enum": ["public", "private"]},
    "topic": TOPIC,
    "member_ids": {"title": "member_ids", "type": "array", "items": ID,
                   "maxItems": MAX_MEMBER_IDS,
                   "x-message": f"member_ids must be a list of at most {MAX_MEMBER_IDS} user "
                                "ids."},
}, ("name", "kind"))
OPEN_DIRECT = _body({"user_id": {**ID, "title": "user_id",
                                 "x-message": "user_id must be a user id."}}, ("user_id",))
UPDATE_ROOM = _body({"name": ROOM_NAME, "topic": TOPIC})
ADD_MEMBER = OPEN_DIRECT
MUTE = _body({"muted": {"title": "muted", "type": "boolean"}}, ("muted",))
REPLY_TO = {**ID, "type": ["string", "null"], "title": "reply_to",
            "description": "The id of a message of the same room this one replies to "
                           "(null or absent: not a reply).",
            "x-message": "reply_to must be the id of a message of this room."}
POST_MESSAGE = _body({"text": TEXT, "client_id": CLIENT_ID, "reply_to": REPLY_TO}, ("text",))
# A reaction's path segment (URL-encoded): one Unicode emoji (sequence); rooms checks it.
EMOJI = {"type": "string", "minLength": 1, "maxLength": MAX_EMOJI,
         "description": "One emoji, URL-encoded (e.g. %F0%9F%91%8D for 👍); flags, skin tones "
                        "and ZWJ sequences count as one. Anything else: 422."}
EDIT_MESSAGE = _body({"text": TEXT}, ("text",))
_SEQ_FIELD = {"title": "seq", "type": "integer", "minimum": 0,
              "x-message": "seq must be a whole number of at least 0."}
MARK_READ = _body({"seq": _SEQ_FIELD}, ("seq",))

# Which body fields are checked after trimming surrounding whitespace (the API's rules).
TRIMMED = ("email", "display_name", "avatar_url", "name", "topic", "text")

# --- WebSocket frames from the client (DESIGN.md §5), by type; ``type`` and ``ref`` are the
# socket's own business (ws.py) --------------------------------------------------------------
_ROOM_ID = {**ID, "title": "room_id", "x-message": "room_id must be a room id."}
_ROOM = {"room_id": _ROOM_ID}
FRAMES = {
    "auth": _body({"token": {"title": "token", "type": "string", "minLength": 1,
                             "x-message": "token must be an access token."}}, ("token",)),
    "subscribe": _body({**_ROOM, "after_seq": {
        "title": "after_seq", "type": ["integer", "null"], "minimum": 0,
        "x-message": "after_seq must be a whole number of at least 0 (or null)."}},
        ("room_id",)),
    "unsubscribe": _body(_ROOM, ("room_id",)),
    "send": _body({**_ROOM, "text": TEXT, "client_id": CLIENT_ID, "reply_to": REPLY_TO},
                  ("room_id", "text", "client_id")),
    "typing": _body(_ROOM, ("room_id",)),
    "read": _body({**_ROOM, "seq": _SEQ_FIELD}, ("room_id", "seq")),
    "ping": _body({}),
}

# --- query parameters ---------------------------------------------------------------------
LIMIT = {"type": "integer", "minimum": MIN_PAGE, "maximum": MAX_PAGE, "default": DEFAULT_PAGE,
         "x-message": f"limit must be a whole number from {MIN_PAGE} to {MAX_PAGE}."}
CURSOR = {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR,
          "x-message": "cursor must be a cursor returned by the previous page."}
SEARCH = {"type": "string", "maxLength": MAX_QUERY, "default": "",
          "x-message": f"q must be at most {MAX_QUERY} characters."}
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
        "mentions": {"type": "array", "items": ID,
                     "description": "The ids of the members its @usernames name (case-"
                                    "insensitive; not the author, not in code spans or "
                                    "blocks), resolved when posted or edited."},
        "reply_to": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ReplyTo"}]},
        "reactions": {"type": "array", "items": {"$ref": "#/components/schemas/Reaction"},
                      "description": "In the order each emoji first came; none once deleted."},
    },
}
REPLY_TO_SUMMARY = {
    "type": "object", "required": ["id", "seq", "author", "excerpt", "deleted"],
    "description": "The quoted original of a reply.",
    "properties": {
        "id": ID, "seq": {"type": ["integer", "null"]},
        "author": {"type": ["object", "null"], "properties": {
            "id": ID, "username": {"type": ["string", "null"]},
            "display_name": {"type": ["string", "null"]}}},
        "excerpt": {"type": "string", "description": f"Its first {MAX_REPLY_EXCERPT} "
                                                     "characters; \"\" once deleted."},
        "deleted": {"type": "boolean", "description": "The original was deleted."}},
}
REACTION = {
    "type": "object", "required": ["emoji", "count"],
    "properties": {
        "emoji": {"type": "string"}, "count": {"type": "integer", "minimum": 1},
        "me": {"type": "boolean", "description": "You reacted with it. In what is read for you "
                                                 "(history, the reaction calls); not in frames, "
                                                 "which say who reacted (user_id)."}},
}
REACTIONS = {"type": "object", "required": ["room_id", "message_id", "reactions"],
             "properties": {"room_id": ID, "message_id": ID,
                            "reactions": {"type": "array", "items": REACTION}}}
MENTION = {
    "type": "object", "required": ["message", "room", "unread"],
    "properties": {"message": {"$ref": "#/components/schemas/Message"},
                   "room": {"type": "object", "properties": {
                       "id": ID, "name": {"type": "string"},
                       "kind": {"type": "string", "enum": ["public", "private", "direct"]}}},
                   "unread": {"type": "boolean", "description": "After your read marker."}},
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
                   "unread_count": {"type": "integer"}, "muted": {"type": "boolean"},
                   "mention_count": {"type": "integer",
                                     "description": "Unread messages that mention you (muted "
                                                    "rooms count them too)."}},
}
SEARCH_RESULT = {
    "type": "object", "required": ["message", "room", "snippet"],
    "properties": {
        "message": {"$ref": "#/components/schemas/Message"},
        "room": {"type": "object", "required": ["id", "kind", "name"],
                 "properties": {"id": ID,
                                "kind": {"type": "string", "enum": ["public", "private", "direct"]},
                                "name": {"type": "string", "description": "\"\" for direct rooms"}}},
        "snippet": {"type": "array", "description": "About 160 characters of the text around "
                    "the first match, in order; \"…\" parts mark cuts.",
                    "items": {"type": "object", "required": ["text", "match"],
                              "properties": {"text": {"type": "string"},
                                             "match": {"type": "boolean"}}}},
    },
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
              "ReplyTo": REPLY_TO_SUMMARY, "Reaction": REACTION, "Reactions": REACTIONS,
              "Member": MEMBER, "Conversation": CONVERSATION, "Error": ERROR,
              "Mention": MENTION, "SearchResult": SEARCH_RESULT}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(**properties) -> dict:
    return {"type": "object", "required": list(properties), "properties": properties}

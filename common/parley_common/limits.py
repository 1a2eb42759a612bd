"""Every size limit of Parley's input, written once. The gateway's JSON Schemas (REST bodies
and WebSocket frames, parley_gateway/schemas.py), rooms' Checker and auth's field checks all
read them here, so what the gateway lets through no service refuses for its size, and the
other way round. DESIGN.md §5 fixes the public ones. Lengths count characters, after trimming
surrounding whitespace where the API trims (names, topics, text, e-mail addresses)."""
from __future__ import annotations

# Ids (users, rooms, messages) are opaque server-made strings; client_id is the client's own.
MAX_ID = 64
MAX_CLIENT_ID = 64

# Accounts.
MIN_USERNAME, MAX_USERNAME = 3, 32
USERNAME_PATTERN = rf"[A-Za-z0-9_.-]{{{MIN_USERNAME},{MAX_USERNAME}}}"
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 8, 128
MAX_DISPLAY_NAME = 64
MAX_AVATAR_URL = 512
# An uploaded avatar image (PNG, JPEG or WebP) in bytes, and in pixels before it is decoded
# (a small file may still describe a huge picture). auth keeps a 128 x 128 copy of it.
MAX_AVATAR_BYTES = 1024 * 1024
MAX_AVATAR_PIXELS = 3072 * 3072
AVATAR_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp")
# A login names the account by username or e-mail. The password given to log in (or to
# confirm a change) is only compared, so it may be longer than a new one may be.
MAX_LOGIN = MAX_EMAIL
MAX_CURRENT_PASSWORD = 1024
MAX_REFRESH_TOKEN = 200
MAX_USER_AGENT = 256  # kept with a session; the gateway cuts the header to this

# Rooms and messages.
MAX_ROOM_NAME = 64
MAX_TOPIC = 256
MAX_TEXT = 4000
MAX_MEMBER_IDS = 100  # member_ids of one new room

# Reactions and replies. An emoji is one emoji sequence (flags, skin tones and ZWJ families
# included: a family is about 11 code points), so a few dozen characters are plenty.
MAX_EMOJI = 32
MAX_REACTIONS_PER_MESSAGE = 20  # distinct emoji on one message
MAX_REPLY_EXCERPT = 140  # characters of the quoted original a reply carries

# Listings: page sizes, search strings, and the opaque cursors the listings hand out.
MIN_PAGE, MAX_PAGE, DEFAULT_PAGE = 1, 100, 50
MAX_QUERY = 64
MAX_CURSOR = 512
# Message search (GET /api/v1/search): the query's length and how many words it may hold.
MAX_SEARCH_QUERY = 256
MAX_SEARCH_TERMS = 16
DEFAULT_SEARCH_PAGE = 20

# Calls between our own parts.
MAX_POSTS_PER_CALL = 100  # posts in one rooms.post_messages call (the gateway's batches)
MAX_IDS_PER_CALL = 500  # ids in one auth.get_users call (rooms filling its users replica)

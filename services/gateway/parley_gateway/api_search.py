"""GET /api/v1/search: full-text search of the messages of your rooms (rooms.search_messages;
the rules are in services/rooms/parley_rooms/store/search.py)."""
from __future__ import annotations

from parley_common.errors import ValidationFailed
from parley_common.limits import DEFAULT_SEARCH_PAGE, MAX_SEARCH_QUERY

from . import schemas as s
from .http import Ctx, Endpoint, json_response

QUERY = {"type": "string", "maxLength": MAX_SEARCH_QUERY,
         "x-message": f"q must be 1 to {MAX_SEARCH_QUERY} characters."}
ROOM_ID = {**s.ID, "x-message": "room_id must be a room id."}
BEFORE = {**s.CURSOR, "x-message": "before must be the next_cursor of the previous page."}


async def search_messages(ctx: Ctx):
    q = ctx.query
    text = (q["q"] or "").strip()
    if not text:
        raise ValidationFailed(details={"q": "q is required: the words to look for."})
    result = await ctx.rpc("rooms", "search_messages", ctx.user_id, text, room_id=q["room_id"],
                           before=q["before"], limit=q["limit"])
    return json_response({"results": result["results"], "next_cursor": result["next_cursor"]})


ENDPOINTS = [
    Endpoint("GET", "/api/v1/search", search_messages,
             "Full-text search of the messages of your rooms.", "messages",
             query={"q": QUERY, "room_id": ROOM_ID, "before": BEFORE,
                    "limit": {**s.LIMIT, "default": DEFAULT_SEARCH_PAGE}},
             responses={200: s.obj(results={"type": "array", "items": s.ref("SearchResult")},
                                   next_cursor={"type": ["string", "null"]})},
             errors=(401, 403, 404, 422, 503),
             description=(
                 "Searches the rooms you are a member of (archived ones too; not public rooms "
                 "you have not joined), or only `room_id` (404 for a private room you are not "
                 "in, 403 for a public room you have not joined). `q`: its words (letters and "
                 "digits) must all occur, each as the start of a word, any case (`deplo fri` "
                 "finds \"Deploying on Friday\"); at most 16 words. Best matches first (ties: "
                 "newest first). `before`: the `next_cursor` of the previous page (null on the "
                 "last). Deleted messages are never found; an edited message is found by its "
                 "new text. Each result's `snippet` is the text around the first match as "
                 "parts, `match` true for the matching words: render them as text, never as "
                 "HTML.")),
]

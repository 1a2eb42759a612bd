"""GET /api/v1/search end to end (gateway -> rooms on PostgreSQL): ranked, paged results with
snippets, only from rooms the caller is a member of, and 422 for bad parameters."""
from __future__ import annotations

from urllib.parse import urlencode

from helpers import new_user, unique


async def room(client, kind: str = "private", **extra) -> dict:
    reply = await client.post("/api/v1/rooms", {"name": unique("search"), "kind": kind, **extra})
    assert reply.status == 201, reply
    return reply.body["room"]


async def say(client, room_id: str, text: str) -> dict:
    reply = await client.post(f"/api/v1/rooms/{room_id}/messages", {"text": text})
    assert reply.status == 201, reply
    return reply.body["message"]


async def search(client, **params):
    return await client.get("/api/v1/search?" + urlencode(params))


async def test_search_finds_ranks_pages_and_highlights(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    word = unique("kw")  # a word nobody else's messages hold
    shared = await room(alice, member_ids=[bob.id])
    best = await say(alice, shared["id"], f"{word} {word} and {word} again")
    others = [await say(bob, shared["id"], f"one {word} number {n} in a longer sentence")
              for n in range(4)]
    await say(alice, shared["id"], "nothing to find here")

    first = await search(bob, q=word.upper(), limit=2)
    assert first.status == 200, first
    assert [r["message"]["id"] for r in first.body["results"]][0] == best["id"]
    result = first.body["results"][0]
    assert result["room"] == {"id": shared["id"], "kind": "private", "name": shared["name"]}
    assert result["message"]["author"]["id"] == alice.id
    assert [part["text"] for part in result["snippet"] if part["match"]] == [word] * 3
    assert "".join(part["text"] for part in result["snippet"]) == best["text"]

    seen = [r["message"]["id"] for r in first.body["results"]]
    cursor = first.body["next_cursor"]
    while cursor:
        page = await search(bob, q=word, limit=2, before=cursor)
        assert page.status == 200, page
        seen += [r["message"]["id"] for r in page.body["results"]]
        cursor = page.body["next_cursor"]
    assert sorted(seen) == sorted([best["id"], *(m["id"] for m in others)])

    prefix = await search(bob, q=f"{word[:-2]} numb", room_id=shared["id"])
    assert {r["message"]["id"] for r in prefix.body["results"]} == {m["id"] for m in others}

    edited = await alice.patch(f"/api/v1/rooms/{shared['id']}/messages/{best['id']}",
                               {"text": "rewritten entirely"})
    assert edited.status == 200, edited
    assert best["id"] not in {r["message"]["id"] for r in (await search(bob, q=word)).body["results"]}
    assert [r["message"]["id"] for r in (await search(bob, q="rewritten entir",
                                                       room_id=shared["id"])).body["results"]] \
        == [best["id"]]
    assert (await bob.delete(f"/api/v1/rooms/{shared['id']}/messages/{others[0]['id']}")).status == 204
    after_delete = await search(alice, q=word)
    assert others[0]["id"] not in {r["message"]["id"] for r in after_delete.body["results"]}
    assert len(after_delete.body["results"]) == 3


async def test_search_never_shows_rooms_you_cannot_read(suite, http):
    alice = await new_user(http, suite.url)
    bob = await new_user(http, suite.url)
    carol = await new_user(http, suite.url)
    word = unique("secret")
    private = await room(alice, member_ids=[bob.id])
    public = await room(alice, kind="public")
    await say(alice, private["id"], f"{word} for alice and bob")
    await say(alice, public["id"], f"{word} in public")

    assert (await search(carol, q=word)).body == {"results": [], "next_cursor": None}
    hidden = await search(carol, q=word, room_id=private["id"])
    assert hidden.status == 404 and hidden.error["code"] == "not_found", hidden
    not_joined = await search(carol, q=word, room_id=public["id"])
    assert not_joined.status == 403 and not_joined.error["code"] == "forbidden", not_joined

    assert (await carol.post(f"/api/v1/rooms/{public['id']}/join")).status == 200
    assert [r["message"]["text"] for r in (await search(carol, q=word)).body["results"]] \
        == [f"{word} in public"]
    assert len((await search(bob, q=word)).body["results"]) == 1
    assert (await bob.post(f"/api/v1/rooms/{private['id']}/leave")).status == 204
    assert (await search(bob, q=word)).body["results"] == []


async def test_search_parameters_are_checked(suite, http):
    alice = await new_user(http, suite.url)
    for params, field in (({}, "q"), ({"q": "   "}, "q"), ({"q": "?!"}, "q"),
                          ({"q": "x" * 257}, "q"), ({"q": " ".join(f"w{n}" for n in range(17))}, "q"),
                          ({"q": "ok", "limit": "0"}, "limit"),
                          ({"q": "ok", "limit": "101"}, "limit"),
                          ({"q": "ok", "limit": "ten"}, "limit"),
                          ({"q": "ok", "before": "not-a-cursor"}, "before"),
                          ({"q": "ok", "room_id": "r" * 65}, "room_id")):
        reply = await search(alice, **params)
        assert reply.status == 422, (params, reply)
        assert reply.error["code"] == "validation_failed" and field in reply.error["details"], reply
    anonymous = await alice.get("/api/v1/search?q=hello", token="not-a-token")
    assert anonymous.status == 401
    spec = (await alice.get("/api/v1/openapi.json")).body
    operation = spec["paths"]["/api/v1/search"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "room_id", "before", "limit"}
    assert "SearchResult" in spec["components"]["schemas"]

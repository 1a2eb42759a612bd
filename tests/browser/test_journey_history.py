"""History: scrolling back through more than 200 messages loads them page by page (infinite
scroll), and the whole conversation ends up on screen once each, in order."""
from __future__ import annotations

import re

from browser_env import expect
from helpers import unique


COUNT = 230  # more than four pages of 50


def test_scrolling_back_through_230_messages_has_no_gap_or_duplicate(people, api_person):
    writer = api_person()
    name = unique("archive")
    room = writer.call("POST", "/rooms", {"name": name, "kind": "public"})["room"]
    for number in range(1, COUNT + 1):  # one after another: seq order is number order
        writer.say(room["id"], f"history {number:03d}")

    reader = people.new("reader").open().register()
    page = reader.page
    reader.join_public(name)
    newest = reader.message(f"history {COUNT:03d}")
    expect(newest).to_be_visible()
    items = reader.messages().get_by_role("listitem")
    assert items.count() < COUNT, "the whole history came at once: nothing to page"

    beginning = page.get_by_text("This is the beginning of the conversation.")
    box = page.get_by_label("Messages", exact=True)
    for _ in range(COUNT // 50 + 3):
        if beginning.is_visible():
            break
        shown = items.count()
        box.hover()
        page.mouse.wheel(0, -50_000)  # to the top: the next older page loads
        expect(items.nth(shown).or_(beginning).first).to_be_visible()  # more, or no more
    expect(beginning).to_be_visible()

    texts = items.all_inner_texts()
    numbers = [int(m.group(1)) for t in texts if (m := re.search(r"history (\d{3})", t))]
    assert numbers == list(range(1, COUNT + 1)), f"gaps or duplicates: {numbers}"
    page.mouse.wheel(0, -50_000)  # nothing older to load: the first message is at the top
    expect(reader.message("history 001")).to_be_in_viewport()

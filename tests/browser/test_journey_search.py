"""Search: the sidebar's search box finds a message far back in a room's history (not loaded
yet), the results show room, author, time and the matching words marked, only rooms you are a
member of are searched, and choosing a result (with the keyboard) opens the room scrolled to
that message, highlighted, with the history between it and the newest loaded without gaps."""
from __future__ import annotations

import re

from browser_env import expect
from helpers import unique

FILLER = 120  # more than two pages of 50 after the message looked for


def test_search_and_jump_to_an_old_message(people, api_person, assert_axe_clean):
    writer = api_person()
    word = unique("albatross")
    name = unique("logbook")
    room = writer.call("POST", "/rooms", {"name": name, "kind": "public"})["room"]
    for number in range(1, 6):
        writer.say(room["id"], f"early {number:03d}")
    target = writer.say(room["id"], f"We saw an {word} near the cliffs")
    for number in range(1, FILLER + 1):
        writer.say(room["id"], f"later {number:03d}")
    secret = writer.call("POST", "/rooms", {"name": unique("hidden"), "kind": "private"})["room"]
    writer.say(secret["id"], f"the {word} in a room the reader is not in")

    reader = people.new("reader").open().register()
    page = reader.page
    reader.join_public(name)
    expect(reader.message(f"later {FILLER:03d}")).to_be_visible()
    expect(reader.message(word)).to_have_count(0)  # far back: not loaded yet

    box = page.get_by_role("searchbox", name="Search messages")
    box.fill(word[:-3].upper())  # a prefix, any case
    box.press("Enter")
    dialog = page.get_by_role("dialog", name="Search messages")
    expect(dialog).to_be_visible()
    results = dialog.get_by_role("list", name="Search results").get_by_role("button")
    expect(results).to_have_count(1)  # the private room of the writer is not searched
    hit = results.first
    expect(hit).to_contain_text(f"# {name}")
    expect(hit).to_contain_text(writer.username)
    expect(hit.locator("mark")).to_have_text(word)
    expect(hit.locator("time")).to_have_attribute("datetime", target["created_at"])
    expect(dialog.get_by_role("status")).to_have_text("1 message found.")
    people.snapshot(reader, "results")
    assert_axe_clean(page)

    hit.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    found = reader.message(word)
    expect(found).to_be_in_viewport()
    expect(found).to_have_class(re.compile(r"\bjump-target\b"))
    expect(found).to_be_focused()
    people.snapshot(reader, "jumped")
    expect(found).not_to_have_class(re.compile(r"\bjump-target\b"), timeout=10_000)  # briefly

    # The history between the message and the newest is all there, once each, in order.
    texts = reader.messages().get_by_role("listitem").all_inner_texts()
    later = [int(m.group(1)) for t in texts if (m := re.search(r"later (\d{3})", t))]
    assert later == list(range(1, FILLER + 1)), f"gaps or duplicates: {later}"
    assert sum(word in t for t in texts) == 1

    # A search with nothing to find says so; a bad one shows the server's reason.
    box.fill("zz" + unique("none"))
    box.press("Enter")
    expect(dialog.get_by_role("status")).to_have_text("No messages match.")
    dialog.get_by_label("Words to find").fill("?!")
    dialog.get_by_role("button", name="Search", exact=True).click()
    expect(dialog.get_by_role("status")).to_contain_text("word")
    for key in ["Tab"] * 8 + ["Shift+Tab"] * 8:  # the keyboard stays inside the dialog
        page.keyboard.press(key)
        assert page.evaluate("() => !!document.activeElement.closest('dialog[open]')"), key
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(box).to_be_focused()  # back where the person was

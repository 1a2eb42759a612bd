"""Reactions and replies between two people: a reaction from the picker, seen live by the
other, who adds theirs by clicking it (pressed for them, counted for both) and takes it back;
a reply (the composer says what it replies to, Escape cancels), its quote on both screens,
"deleted message" once the original goes; a click on a quote jumps to an original far back in
the history (loaded on the way) and highlights it. No axe violations with all of it shown."""
from __future__ import annotations

import re

from browser_env import expect
from helpers import unique


def said(person, text: str):
    """The message whose own text is ``text`` (person.message also matches a reply quoting it)."""
    return person.messages().get_by_role("listitem").filter(
        has=person.page.locator(".msg-text").get_by_text(text, exact=True))


def reaction(person, text: str, emoji: str):
    return said(person, text).get_by_role("button", name=re.compile("^" + re.escape(emoji) + " "))


def test_react_and_reply_between_two_people(people, assert_axe_clean):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    room = unique("patio")
    alice.create_room(room)
    bob.join_public(room)
    bob.say("lunch at noon?")
    expect(alice.message("lunch at noon?")).to_be_visible()

    question = said(alice, "lunch at noon?")
    question.hover()
    question.get_by_role("button", name="Add reaction").click()
    question.get_by_role("button", name="React with 👍").click()
    mine = reaction(alice, "lunch at noon?", "👍")
    expect(mine).to_have_accessible_name("👍 1 reaction, including yours")
    expect(mine).to_have_attribute("aria-pressed", "true")
    theirs = reaction(bob, "lunch at noon?", "👍")  # live, by a reaction_added frame
    expect(theirs).to_have_accessible_name("👍 1 reaction")
    expect(theirs).to_have_attribute("aria-pressed", "false")

    theirs.click()  # Bob adds his
    expect(theirs).to_have_accessible_name("👍 2 reactions, including yours")
    expect(mine).to_have_accessible_name("👍 2 reactions, including yours")
    mine.click()  # Alice takes hers back
    expect(mine).to_have_accessible_name("👍 1 reaction")
    expect(mine).to_have_attribute("aria-pressed", "false")
    expect(theirs).to_have_accessible_name("👍 1 reaction, including yours")

    page = alice.page
    question.get_by_role("button", name="Reply to this message").click()
    preview = page.get_by_text(re.compile("^Replying to"))
    expect(preview).to_be_visible()
    expect(alice.composer()).to_be_focused()
    alice.composer().press("Escape")
    expect(preview).to_be_hidden()
    question.get_by_role("button", name="Reply to this message").click()
    expect(preview).to_be_visible()
    alice.say("noon works")
    expect(preview).to_be_hidden()
    answer_quote = alice.message("noon works").get_by_role(
        "button", name=re.compile("^In reply to .*lunch at noon"))
    expect(answer_quote).to_be_visible()
    expect(bob.message("noon works").get_by_role(
        "button", name=re.compile("^In reply to .*lunch at noon"))).to_be_visible()
    people.snapshot(alice, "reacted-and-replied")
    assert_axe_clean(page)
    page.emulate_media(color_scheme="dark")
    assert_axe_clean(page)
    page.emulate_media(color_scheme="light")

    bob.accept_next_confirm()
    said(bob, "lunch at noon?").hover()
    said(bob, "lunch at noon?").get_by_role("button", name="Delete message").click()
    expect(alice.message("noon works").get_by_role(
        "button", name="In reply to a deleted message")).to_be_visible()


def test_a_quote_jumps_to_an_original_far_back(people, api_person):
    writer = api_person()
    name = unique("archive")
    room = writer.call("POST", "/rooms", {"name": name, "kind": "public"})["room"]
    original = writer.say(room["id"], "the very first plan")
    for number in range(1, 71):
        writer.say(room["id"], f"chatter {number:02d}")
    writer.call("POST", f"/rooms/{room['id']}/messages",
                {"text": "back to the plan", "reply_to": original["id"]})
    reader = people.new("reader").open().register()
    reader.join_public(name)
    expect(reader.message("back to the plan")).to_be_visible()
    expect(said(reader, "the very first plan")).to_have_count(0)  # not loaded yet

    reader.message("back to the plan").get_by_role(
        "button", name=re.compile("^In reply to .*the very first plan")).click()
    first = said(reader, "the very first plan")
    expect(first).to_be_in_viewport()
    expect(first).to_have_class(re.compile(r"\bjump-target\b"))
    expect(first).to_be_focused()

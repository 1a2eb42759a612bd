"""Rooms and conversations as people use them: create, browse, search, join, talk, leave; private
rooms with added members; direct messages; edits, deletions, typing and presence seen live;
unread counts in the sidebar and the tab title."""
from __future__ import annotations

import re

from browser_env import expect
from helpers import unique


def open_members(person):
    person.page.get_by_role("button", name="Members").click()
    return person.page.get_by_role("complementary", name="Room details")


def test_public_room_create_browse_search_join_talk_and_leave(people):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    room = unique("garden")
    alice.create_room(room, topic="roses and weeds")
    bob.join_public(room, search=room[:9])  # a search by the start of its name finds it
    expect(bob.page.get_by_role("region", name=f"# {room}")
           .get_by_text("2 members · roses and weeds")).to_be_visible()

    bob.say("hi from bob <b>not bold</b>")
    shown = alice.message("hi from bob <b>not bold</b>")  # markup arrives as text
    expect(shown).to_be_visible()
    expect(shown.locator("b")).to_have_count(0)
    alice.say("hello bob")
    expect(bob.message("hello bob")).to_be_visible()
    expect(alice.message("hello bob")).to_have_count(1)  # the sender's own copy, once
    expect(bob.message("hi from bob")).to_have_count(1)

    bob.page.reload()  # session, open room and history survive
    expect(bob.message("hello bob")).to_be_visible()
    expect(bob.message("hi from bob")).to_have_count(1)

    details = open_members(alice)
    expect(details.get_by_role("heading", name=re.compile(r"Members \(2\)"))).to_be_visible()
    open_members(bob)
    bob.accept_next_confirm()
    bob.page.get_by_role("button", name="Leave room").click()
    expect(bob.page.get_by_text(f"You left {room}.")).to_be_visible()
    expect(bob.page.get_by_text("Select a conversation, or start a new one.")).to_be_visible()
    expect(bob.conversation(room)).to_have_count(0)
    expect(details.get_by_role("heading", name=re.compile(r"Members \(1\)"))).to_be_visible()


def test_private_room_with_an_added_member_and_a_direct_message(people):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    carol = people.new("carol").open().register()
    room = unique("secret")
    alice.create_room(room, private=True)

    page = bob.page  # a private room is not in Browse
    page.get_by_role("button", name="Browse").click()
    dialog = page.get_by_role("dialog", name="Public rooms")
    dialog.get_by_label("Search public rooms").fill(room)
    expect(dialog.get_by_text("No public rooms match.")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    open_members(alice)
    alice.page.get_by_role("button", name="Add member…").click()
    picker = alice.page.get_by_role("dialog", name=f"Add someone to {room}")
    picker.get_by_label("Search people by name").fill(bob.username)
    picker.get_by_role("button", name=f"Add: {bob.username}").click()
    expect(picker).to_be_hidden()
    expect(alice.page.get_by_text(f"{bob.username} was added.")).to_be_visible()

    bob.conversation(room).click()  # it appeared in Bob's sidebar by itself
    expect(page.get_by_role("heading", name=room)).to_be_visible()
    bob.say("thanks for the invite")
    expect(alice.message("thanks for the invite")).to_be_visible()
    expect(carol.conversation(room)).to_have_count(0)

    carol.message_someone(alice)
    carol.say("psst, alice")
    alice.conversation(carol.username).click()
    expect(alice.message("psst, alice")).to_be_visible()
    alice.say("hi carol")
    expect(carol.message("hi carol")).to_be_visible()
    expect(bob.conversation(carol.username)).to_have_count(0)


def test_edit_delete_typing_and_presence_are_seen_live(people):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    alice.message_someone(bob)
    alice.say("first version")
    bob.conversation(alice.username).click()
    expect(bob.message("first version")).to_be_visible()
    room_view = alice.page.get_by_role("region", name=bob.username)
    expect(room_view.get_by_text("Online", exact=True)).to_be_visible()  # Bob, in the header

    bob.composer().press_sequentially("typing away")
    expect(alice.page.get_by_text(f"{bob.username} is typing…")).to_be_visible()
    bob.composer().press("Enter")
    expect(alice.message("typing away")).to_be_visible()
    expect(alice.page.get_by_text(f"{bob.username} is typing…")).to_be_hidden()

    mine = alice.message("first version")
    mine.hover()
    mine.get_by_role("button", name="Edit message").click()
    editor = alice.messages().get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("first version")
    editor.fill("second version")
    editor.press("Enter")
    expect(bob.message("second version")).to_contain_text("(edited)")
    expect(bob.message("first version")).to_have_count(0)

    mine = alice.message("second version")
    mine.hover()
    alice.accept_next_confirm()
    mine.get_by_role("button", name="Delete message").click()
    expect(bob.message("second version")).to_have_count(0)
    expect(bob.messages().get_by_text("message deleted")).to_have_count(1)

    bob.context.close()  # Bob goes away
    expect(room_view.get_by_text("Offline", exact=True)).to_be_visible()


def test_unread_counts_in_the_sidebar_and_title_clear_on_reading(people):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    room = unique("news")
    alice.create_room(room)
    bob.join_public(room)
    bob.message_someone(alice)  # Bob looks at another conversation meanwhile

    for text in ("one", "two", "three"):
        alice.say(f"{text} for the room")
    expect(bob.conversation(room)).to_have_accessible_name(re.compile(r"3 unread"))
    expect(bob.page).to_have_title("(3) Parley")

    bob.conversation(room).click()
    expect(bob.message("three for the room")).to_be_visible()
    expect(bob.page).to_have_title("Parley")
    expect(bob.conversation(room)).not_to_have_accessible_name(re.compile("unread"))
    bob.page.reload()  # the read marker is on the server, not only in the page
    expect(bob.message("three for the room")).to_be_visible()
    expect(bob.conversation(room)).not_to_have_accessible_name(re.compile("unread"))
    expect(bob.page).to_have_title("Parley")

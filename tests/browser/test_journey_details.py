"""The smaller things of a conversation: mute, a draft kept per room, the conversation filter,
"Seen by" under your messages, a room's topic edited and the room deleted (seen live by the
other member), the "New messages" button while you read older ones, and a message that could
not be sent (the gateway is down) retried or discarded."""
from __future__ import annotations

import re

from browser_env import expect
from helpers import unique


def test_mute_draft_filter_receipts_and_room_changes(people):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    room, other = unique("porch"), unique("attic")
    alice.create_room(other)
    alice.create_room(room)
    bob.join_public(room)
    page = alice.page

    alice.say("read me")  # Bob has the room open: his read marker reaches Alice
    expect(bob.message("read me")).to_be_visible()
    expect(alice.message("read me").get_by_text("Seen by 1")).to_be_visible()

    mute = page.get_by_role("button", name="Mute", exact=True)
    mute.click()
    unmute = page.get_by_role("button", name="Unmute")
    expect(unmute).to_have_attribute("aria-pressed", "true")
    expect(alice.conversation(room)).to_have_accessible_name(re.compile("muted"))
    unmute.click()
    expect(mute).to_have_attribute("aria-pressed", "false")
    expect(alice.conversation(room)).not_to_have_accessible_name(re.compile("muted"))

    alice.composer().fill("half a thought")  # a draft stays with its room
    alice.conversation(other).click()
    expect(page.get_by_role("heading", name=f"# {other}")).to_be_visible()
    expect(alice.composer()).to_have_value("")
    alice.conversation(room).click()
    expect(alice.composer()).to_have_value("half a thought")
    alice.composer().fill("")

    conversations = page.get_by_label("Filter conversations")
    conversations.fill(other)
    expect(alice.conversation(other)).to_be_visible()
    expect(alice.conversation(room)).to_have_count(0)
    conversations.fill("")
    expect(alice.conversation(room)).to_be_visible()

    page.get_by_role("button", name="Members").click()
    details = page.get_by_role("complementary", name="Room details")
    details.get_by_role("button", name="Edit room…").click()
    dialog = page.get_by_role("dialog", name="Edit room")
    dialog.get_by_label("Topic").fill("painted blue")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(bob.page.get_by_role("region", name=f"# {room}").get_by_text(re.compile("members · .*painted blue"))).to_be_visible()
    page.keyboard.press("Escape")  # closes the details panel
    expect(details).to_be_hidden()

    page.get_by_role("button", name="Members").click()
    alice.accept_next_confirm()
    details.get_by_role("button", name="Delete room").click()
    expect(alice.conversation(room)).to_have_count(0)  # its toast: "Deleted …", or the frame's
    expect(bob.page.get_by_text("This room was deleted.")).to_be_visible()
    expect(bob.conversation(room)).to_have_count(0)


def test_new_messages_button_while_reading_older_ones(people, api_person):
    writer = api_person()
    name = unique("busy")
    room = writer.call("POST", "/rooms", {"name": name, "kind": "public"})["room"]
    for number in range(1, 41):
        writer.say(room["id"], f"filler {number:02d}")
    reader = people.new("reader").open().register()
    page = reader.page
    reader.join_public(name)
    expect(reader.message("filler 40")).to_be_in_viewport()

    page.get_by_label("Messages", exact=True).hover()
    page.mouse.wheel(0, -50_000)
    expect(reader.message("filler 40")).not_to_be_in_viewport()
    writer.say(room["id"], "fresh news")
    jump = page.get_by_role("button", name=re.compile("New messages"))
    expect(jump).to_be_visible()
    expect(reader.message("fresh news")).not_to_be_in_viewport()
    jump.click()
    expect(jump).to_be_hidden()
    expect(reader.message("fresh news")).to_be_in_viewport()


def test_a_message_not_sent_while_the_gateway_is_down_is_retried_or_discarded(people, gateway):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    name = unique("patchy")
    alice.create_room(name)
    bob.join_public(name)
    expect(bob.page.get_by_text("No messages yet. Say hello!")).to_be_visible()  # history loaded

    for person in (alice, bob):
        person.network_errors_expected = True  # refused connections while it is down
    gateway.kill()
    expect(alice.connection()).to_have_text(re.compile("reconnecting"))
    for text in ("worth keeping", "never mind"):
        alice.composer().fill(text)
        alice.composer().press("Enter")  # no socket: over REST, which fails too
        expect(alice.message(text).get_by_text("not sent")).to_be_visible()
    alice.message("never mind").get_by_role("button", name="Discard").click()
    expect(alice.message("never mind")).to_have_count(0)

    gateway.start()
    for person in (alice, bob):
        expect(person.connection()).to_have_text("Online", timeout=90_000)
    alice.message("worth keeping").get_by_role("button", name="Retry").click()
    expect(alice.message("worth keeping").get_by_text(re.compile("not sent|sending…"))).to_have_count(0)
    expect(alice.message("worth keeping")).to_have_count(1)
    expect(bob.message("worth keeping")).to_have_count(1)
    expect(bob.message("never mind")).to_have_count(0)

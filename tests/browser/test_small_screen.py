"""A phone-sized screen (390 x 844): the conversation list and the room take turns, with a way
back, and nothing is wider than the screen."""
from __future__ import annotations

from browser_env import expect
from helpers import unique


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def assert_fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"


def test_phone_shows_the_list_or_the_room_with_a_way_back(people):
    alice = people.new("alice-phone", **PHONE).open().register()
    bob = people.new("bob").open().register()
    page = alice.page
    sidebar = page.get_by_role("complementary", name="Conversations")
    expect(sidebar).to_be_in_viewport()
    assert_fits(page)

    room = unique("pocket")
    alice.create_room(room)  # the new room opens in place of the list
    heading = page.get_by_role("heading", name=f"# {room}")
    expect(heading).to_be_in_viewport()
    expect(sidebar).to_be_hidden()
    expect(alice.composer()).to_be_in_viewport()
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    assert_fits(page)
    alice.say("hello from a phone")

    bob.join_public(room)
    bob.say("hello from a desk")
    expect(alice.message("hello from a desk")).to_be_in_viewport()

    mine = alice.message("hello from a phone")  # no hover on a phone: the actions show
    mine.get_by_role("button", name="Edit message").tap()
    editor = alice.messages().get_by_role("textbox", name="Edit message")
    editor.fill("hello from a small phone")
    page.get_by_role("button", name="Save").tap()
    expect(bob.message("hello from a small phone")).to_be_visible()
    people.snapshot(alice, "room")

    page.get_by_role("button", name="Members").tap()
    details = page.get_by_role("complementary", name="Room details")
    expect(details).to_be_in_viewport()
    expect(details.get_by_role("button", name="Leave room")).to_be_in_viewport()
    assert_fits(page)
    people.snapshot(alice, "members")
    details.get_by_role("button", name="Close room details").tap()
    expect(details).to_be_hidden()

    page.get_by_role("button", name="Back to conversations").tap()
    expect(sidebar).to_be_in_viewport()
    expect(heading).to_be_hidden()
    expect(alice.conversation(room)).to_be_in_viewport()
    alice.conversation(room).tap()
    expect(heading).to_be_in_viewport()
    expect(alice.message("hello from a desk")).to_be_visible()

    page.get_by_role("button", name="Back to conversations").tap()
    page.get_by_role("button", name="New room").tap()
    create = page.get_by_role("dialog", name="New room")
    for control in (create.get_by_label("Name"), create.get_by_role("button", name="Create"),
                    create.get_by_role("button", name="Cancel")):
        expect(control).to_be_in_viewport()
    assert_fits(page)
    create.get_by_role("button", name="Cancel").tap()
    expect(create).to_be_hidden()

"""Accessibility of the login and chat screens: no serious or critical axe-core violations,
every control reachable with Tab and visibly focused, dialogs keep focus inside, close on Escape
and give focus back to what opened them."""
from __future__ import annotations

import re

import pytest

from browser_env import expect
from helpers import unique


# What the focused element is called and whether its focus can be seen (an outline or a ring).
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const style = getComputedStyle(el);
  const label = el.getAttribute('aria-label') || (el.labels && el.labels[0] && el.labels[0].textContent)
    || el.textContent || el.id;
  return {
    name: label.replace(/\\s+/g, ' ').trim().slice(0, 60),
    inDialog: !!el.closest('dialog[open]'),
    visible: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
      || style.boxShadow !== 'none',
  };
}"""


def tab_through(page, start, wanted: set, limit: int = 60) -> list[dict]:
    """From ``start``, press Tab until every name in ``wanted`` (exact, or a pattern) had
    focus; each stop must show its focus (past the last control focus leaves the page, so the
    walk stops once all were seen)."""
    stops = []
    missing = set(wanted)
    start.focus()
    for step in range(limit):
        if step:
            page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused is not None, f"focus left the page after {[s['name'] for s in stops]}"
        assert focused["visible"], f"no visible focus on {focused['name']!r}"
        stops.append(focused)
        missing -= {name for name in missing if (name.search(focused["name"])
                                                  if isinstance(name, re.Pattern)
                                                  else name == focused["name"])}
        if not missing:
            return stops
    pytest.fail(f"never reached with Tab: {missing}; stops: {[s['name'] for s in stops]}")


def test_login_screen_keyboard_and_axe(people, assert_axe_clean):
    person = people.new("keyboard").open()
    page = person.page
    form = page.get_by_role("tabpanel", name="Log in")
    expect(form.get_by_label("Username or email")).to_be_focused()
    assert_axe_clean(page)

    tab_through(page, page.get_by_role("tab", name="Log in"),
                {"Log in", "Username or email", "Password", "Keep me signed in on this device"})
    page.get_by_role("tab", name="Log in").focus()
    page.keyboard.press("ArrowRight")  # the tabs follow the ARIA tabs pattern
    expect(page.get_by_role("tab", name="Register")).to_have_attribute("aria-selected", "true")
    register = page.get_by_role("tabpanel", name="Register")
    expect(register.get_by_label("Username", exact=True)).to_be_focused()
    assert_axe_clean(page)

    # Registering with the keyboard only.
    page.keyboard.type(person.username)
    page.keyboard.press("Tab")
    page.keyboard.type(f"{person.username}@example.com")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # display name stays empty
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")
    expect(person.connection()).to_have_text("Online")


def test_chat_screen_keyboard_dialogs_and_axe(people, assert_axe_clean):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    room = unique("access")
    alice.create_room(room, topic="for everyone")
    bob.join_public(room)
    bob.say("a message from bob")
    alice.say("a message from alice")
    page = alice.page
    expect(alice.message("a message from bob")).to_be_visible()
    assert_axe_clean(page)
    page.emulate_media(color_scheme="dark")
    assert_axe_clean(page)
    page.emulate_media(color_scheme="light")

    tab_through(page, page.get_by_role("button", name="Profile"), {"Profile", "Log out", "New room", "Browse", "Message…", "Search messages", "Filter conversations",
                       re.compile(re.escape(room)), "Mute", "Members", "Edit message", "Delete message", "Message",
                       "Send"})

    page.get_by_role("button", name="Members").focus()
    page.keyboard.press("Enter")  # by keyboard, so the focus ring stays on (focus-visible)
    details = page.get_by_role("complementary", name="Room details")
    expect(details).to_be_visible()
    assert_axe_clean(page)
    tab_through(page, page.get_by_role("button", name="Members"),
                {"Close room details", "Edit room…", "Leave room", "Delete room", "Message"})
    page.get_by_role("button", name="Close room details").focus()
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()

    for opener, title in (("New room", "New room"), ("Browse", "Public rooms"),
                          ("Message…", "Direct message"), ("Profile", "Your profile"),
                          ("Mentions", "Mentions")):
        button = page.get_by_role("button", name=opener, exact=True)
        button.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name=title)
        expect(dialog).to_be_visible()
        for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:  # round and round, never outside
            page.keyboard.press(key)
            focused = page.evaluate(FOCUSED)
            assert focused and focused["inDialog"], f"{title}: focus escaped the dialog to {focused}"
            assert focused["visible"], f"{title}: no visible focus on {focused['name']!r}"
        if title == "Public rooms":
            dialog.get_by_label("Search public rooms").fill("something")  # Escape in a search box
            dialog.get_by_label("Search public rooms").focus()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(button).to_be_focused()  # back where the person was

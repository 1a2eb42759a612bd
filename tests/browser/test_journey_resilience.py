"""What the client does when the ground moves: the gateway dies mid-conversation and comes back
(the client says it is reconnecting, then shows what was said meanwhile, once), and a session
outlives many short access-token lifetimes."""
from __future__ import annotations

import re

from browser_env import expect
from helpers import unique


TOKEN_SECONDS = 8  # ACCESS_TOKEN_TTL_SECONDS of short_session_gateway


def test_gateway_killed_and_restarted_mid_conversation(people, gateway, suite, api_person):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    name = unique("outage")
    alice.create_room(name)
    bob.join_public(name)
    alice.say("before the outage")
    expect(bob.message("before the outage")).to_be_visible()
    carol = api_person(suite.url)  # on another gateway, which stays up
    room = carol.public_room(name)
    carol.call("POST", f"/rooms/{room['id']}/join")

    for person in (alice, bob):
        person.network_errors_expected = True  # refused connections while it is down
    gateway.kill()
    for person in (alice, bob):
        expect(person.connection()).to_have_text(re.compile("reconnecting"))
    meanwhile = [f"said meanwhile {n}" for n in range(1, 4)]
    for text in meanwhile:
        carol.say(room["id"], text)

    gateway.start()  # same port: the pages reconnect by themselves
    for person in (alice, bob):
        expect(person.connection()).to_have_text("Online", timeout=90_000)
        for text in meanwhile:
            expect(person.message(text)).to_have_count(1)
    bob.say("after the outage")
    expect(alice.message("after the outage")).to_have_count(1)
    texts = alice.messages().get_by_role("listitem").all_inner_texts()
    said = [line for t in texts for line in re.findall(r"said meanwhile \d|\w+ the outage", t)]
    assert said == ["before the outage", *meanwhile, "after the outage"], said


def test_session_outlives_several_short_token_lifetimes(people, short_session_gateway):
    alice = people.new("alice", origin=short_session_gateway).open().register()
    bob = people.new("bob", origin=short_session_gateway).open().register()
    name = unique("marathon")
    alice.create_room(name)
    bob.join_public(name)
    alice.say("see you in a while")
    expect(bob.message("see you in a while")).to_be_visible()

    # Time itself is what this journey tests: three token lifetimes pass with the pages open.
    alice.page.wait_for_timeout(3 * TOKEN_SECONDS * 1000)
    for person in (alice, bob):
        expect(person.connection()).to_have_text("Online")
        expect(person.page.get_by_text(re.compile("log in again"))).to_have_count(0)
    bob.say("still here")  # the socket still carries messages both ways
    expect(alice.message("still here")).to_be_visible()
    alice.say("me too")
    expect(bob.message("me too")).to_be_visible()

    alice.page.get_by_role("button", name="Browse").click()  # and REST calls still work
    dialog = alice.page.get_by_role("dialog", name="Public rooms")
    dialog.get_by_label("Search public rooms").fill(name)
    expect(dialog.get_by_role("button", name=f"Open {name}")).to_be_visible()
    alice.page.keyboard.press("Escape")
    alice.page.reload()  # the renewed session survives a reload
    expect(alice.message("still here")).to_be_visible()
    expect(alice.connection()).to_have_text("Online")

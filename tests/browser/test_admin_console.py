"""The administrators' console as an administrator meets it: hidden from everyone else; users
found by search and deactivated; a room's message deleted and the room archived; each action in
the audit log; the log archive searched by service, level, time and text. No page errors, no
serious or critical axe-core violations with the console open. And what members of an archived
room see: a composer that takes nothing until the room is unarchived."""
from __future__ import annotations

import re
import time

import requests

from browser_env import expect
from helpers import PASSWORD, unique
from parley_common.testing import SUITE_ADMIN


def ensure_suite_admin(base: str) -> None:
    """The administrator PARLEY_ADMINS names in the suite, registered once per run."""
    reply = requests.post(f"{base}/api/v1/auth/register", json={
        "username": SUITE_ADMIN, "email": f"{SUITE_ADMIN}@example.com", "password": PASSWORD},
        timeout=30)
    assert reply.status_code in (201, 409), reply.text


def test_admin_console_moderates_and_searches_logs(people, api_person, gateway, assert_axe_clean):
    ensure_suite_admin(gateway.url)  # first: the run's first account is an administrator too
    member = people.new("member").open().register()
    expect(member.page.get_by_role("button", name="Log out")).to_be_visible()
    expect(member.page.get_by_role("button", name="Administration")).to_be_hidden()  # not for everyone

    spammer = api_person()
    room_name = unique("mod")
    room = spammer.call("POST", "/rooms", {"name": room_name, "kind": "public"})["room"]
    spammer.say(room["id"], "buy cheap watches")

    admin = people.new("admin")
    admin.username = SUITE_ADMIN
    admin.open().login()
    page = admin.page
    page.get_by_role("button", name="Administration").click()
    console = page.get_by_role("dialog", name="Administration")
    expect(console).to_be_visible()
    expect(console.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")

    # Users: find the spammer, deactivate them.
    console.get_by_label("Search users").fill(spammer.username)
    users = console.get_by_role("table", name="Users")
    row = users.get_by_role("row").filter(has_text=spammer.username)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("active")
    assert_axe_clean(page)
    admin.accept_next_confirm()
    row.get_by_role("button", name="Deactivate").click()
    expect(row.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(row).to_contain_text("deactivated")
    refused = requests.post(f"{gateway.url}/api/v1/auth/login", json={
        "username": spammer.username, "password": PASSWORD}, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_deactivated"

    # Rooms: read the room (no membership needed), delete the message, archive the room.
    console.get_by_role("tab", name="Rooms").click()
    console.get_by_label("Search rooms").fill(room_name)
    rooms = console.get_by_role("table", name="Rooms")
    room_row = rooms.get_by_role("row").filter(has_text=room_name)
    expect(room_row).to_have_count(1)
    room_row.get_by_role("button", name="Messages").click()
    messages = console.get_by_role("region", name=f"Latest messages in {room_name}")
    spam = messages.get_by_role("listitem").filter(has_text="buy cheap watches")
    expect(spam).to_have_count(1)
    spam.get_by_role("button", name="Delete message").click()
    expect(messages.get_by_role("listitem").first).to_contain_text("deleted")
    expect(messages.get_by_text("buy cheap watches")).to_have_count(0)
    room_row.get_by_role("button", name="Archive").click()
    expect(room_row.get_by_role("button", name="Unarchive")).to_be_visible()
    expect(room_row).to_contain_text("archived")
    assert_axe_clean(page)
    history = requests.get(f"{gateway.url}/api/v1/admin/rooms/{room['id']}/messages",
                           headers=admin_headers(gateway.url), timeout=30).json()
    assert [(m["text"], m["deleted"]) for m in history["messages"]] == [("", True)]
    assert history["room"]["archived_at"]

    # The audit log lists all three, newest first.
    console.get_by_role("tab", name="Audit log").click()
    audit = console.get_by_role("table", name="Audit log")
    expect(audit.get_by_role("row").nth(1)).to_contain_text(f"archived room{room_name}")
    expect(audit.get_by_role("row").filter(has_text="deleted message")).not_to_have_count(0)
    expect(audit.get_by_role("row").filter(has_text=re.compile(
        rf"deactivated\s*{re.escape(spammer.username)}"))).to_have_count(1)

    # The log archive: auth's record of the deactivation.
    console.get_by_role("tab", name="Log archive").click()
    console.get_by_label("Service").select_option("auth")
    console.get_by_label("Level").select_option("info")
    console.get_by_label("Since").fill("1h")
    console.get_by_label("Event contains").fill("account_active_set")
    logs = console.get_by_role("table", name="Log records")
    found = logs.get_by_role("row").filter(has_text="account_active_set")
    deadline = time.monotonic() + 45
    while True:  # the logger archives in batches: search again until the record is in
        console.get_by_role("button", name="Search").click()
        expect(console.get_by_role("status").filter(has_text=re.compile(r"\d+ records?\."))
               ).to_be_visible()
        if found.count() or time.monotonic() > deadline:
            break
        time.sleep(1)
    expect(found.first).to_contain_text("auth")
    assert_axe_clean(page)
    people.snapshot(admin, "logs")

    # Live charts: every gateway's figures, drawn in the page and said in the "Now" table.
    console.get_by_role("tab", name="Live charts").click()
    now = console.get_by_role("table", name="Now")
    expect(now.get_by_role("row").filter(has_text="gateway-browser")).to_have_count(1)
    expect(console.locator(".admin-chart canvas")).to_have_count(5)
    expect(console.get_by_role("table", name="Queues").get_by_role("row").filter(
        has_text="rpc-auth")).to_have_count(1)
    expect(console.get_by_role("status").filter(has_text="Updated")).to_be_visible()
    first_update = console.get_by_role("status").filter(has_text="Updated").inner_text()
    expect(console.get_by_role("status").filter(has_text="Updated")).not_to_have_text(
        first_update, timeout=15_000)  # it refreshes by itself
    assert_axe_clean(page)
    people.snapshot(admin, "charts")

    console.get_by_role("button", name="Close").click()
    expect(console).to_be_hidden()


def admin_headers(base: str) -> dict:
    token = requests.post(f"{base}/api/v1/auth/login", json={
        "username": SUITE_ADMIN, "password": PASSWORD, "refresh_delivery": "body"},
        timeout=30).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_archived_room_is_read_only_for_its_members(people, api_person, gateway):
    """A member with the room open sees the composer close when an administrator archives it
    (room_updated), can still read, and can write again once it is unarchived."""
    ensure_suite_admin(gateway.url)
    owner = api_person()
    room_name = unique("arch")
    room = owner.call("POST", "/rooms", {"name": room_name, "kind": "public"})["room"]
    owner.say(room["id"], "before the archive")
    member = people.new("member").open().register()
    member.join_public(room_name)
    expect(member.message("before the archive")).to_be_visible()
    send = member.page.get_by_role("button", name="Send")

    archive = f"{gateway.url}/api/v1/admin/rooms/{room['id']}"
    headers = admin_headers(gateway.url)
    assert requests.post(f"{archive}/archive", headers=headers, timeout=30).status_code == 200
    expect(member.composer()).to_be_disabled()
    expect(send).to_be_disabled()
    expect(member.composer()).to_have_attribute("placeholder", re.compile("archived"))
    expect(member.message("before the archive")).to_be_visible()  # still readable

    member.page.reload()  # a room opened archived is read-only from the start
    expect(member.composer()).to_be_disabled()

    assert requests.post(f"{archive}/unarchive", headers=headers, timeout=30).status_code == 200
    expect(member.composer()).to_be_enabled()
    expect(send).to_be_enabled()
    member.say("after the archive")
    expect(member.message("after the archive")).to_be_visible()

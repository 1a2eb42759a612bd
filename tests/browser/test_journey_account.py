"""Accounts as a person meets them: registering (with the inline errors of a taken username and
a short password), logging in and out, a reload keeping the session, a profile change seen live
by others, deleting the account."""
from __future__ import annotations

import re

from browser_env import expect


def test_register_with_inline_errors_then_log_out_and_in(people):
    taken = people.new("taken").open().register()
    newcomer = people.new("newcomer").open()
    page = newcomer.page
    page.get_by_role("tab", name="Register").click()
    form = page.get_by_role("tabpanel", name="Register")
    form.get_by_label("Username", exact=True).fill(taken.username)  # someone has it already
    form.get_by_label("Email").fill(f"{newcomer.username}@example.com")
    form.get_by_label("Password", exact=True).fill("short")
    form.get_by_role("button", name="Create account").click()
    password = form.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")  # checked before any request
    expect(password).to_have_accessible_description(re.compile("at least 8 characters"))
    expect(password).to_be_focused()

    password.fill(newcomer.password)
    form.get_by_role("button", name="Create account").click()
    username = form.get_by_label("Username", exact=True)
    expect(username).to_have_attribute("aria-invalid", "true")  # the server's answer
    expect(username).to_have_accessible_description(re.compile("taken", re.I))
    expect(username).to_be_focused()
    expect(page.get_by_role("complementary", name="Conversations")).to_be_hidden()

    username.fill(newcomer.username)
    form.get_by_role("button", name="Create account").click()
    expect(newcomer.connection()).to_have_text("Online")
    expect(page.get_by_text(newcomer.username, exact=True)).to_be_visible()

    page.reload()  # the session survives a reload
    expect(newcomer.connection()).to_have_text("Online")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You have been logged out.")).to_be_visible()
    expect(page.get_by_role("tab", name="Log in")).to_have_attribute("aria-selected", "true")
    page.reload()  # and logging out ended it
    expect(page.get_by_role("tabpanel", name="Log in")).to_be_visible()
    expect(page.get_by_role("complementary", name="Conversations")).to_be_hidden()

    login = page.get_by_role("tabpanel", name="Log in")
    login.get_by_label("Username or email").fill(newcomer.username)
    login.get_by_label("Password", exact=True).fill("wrong password")
    login.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").filter(has_text="Wrong username or password.")).to_be_visible()
    newcomer.login()
    expect(page.get_by_text(newcomer.username, exact=True)).to_be_visible()


def test_profile_change_shows_live_and_account_deletion(people):
    alice = people.new("alice").open().register()
    bob = people.new("bob").open().register()
    alice.message_someone(bob)
    alice.say("hello from alice")
    bob.conversation(alice.username).click()  # the conversation appeared on its own
    expect(bob.message("hello from alice")).to_contain_text(alice.username)

    page = alice.page
    page.get_by_role("button", name="Profile").click()
    profile = page.get_by_role("dialog", name="Your profile")
    profile.get_by_label("Display name").fill("Alice Liddell")
    profile.get_by_role("button", name="Save").click()
    expect(profile).to_be_hidden()
    expect(bob.message("hello from alice")).to_contain_text("Alice Liddell")  # live, no reload
    expect(bob.conversation("Alice Liddell")).to_be_visible()
    expect(bob.page.get_by_role("heading", name="Alice Liddell")).to_be_visible()
    expect(page.get_by_text("Alice Liddell", exact=True).first).to_be_visible()

    # Deleting asks for the password again, in the account dialog the profile's button opens.
    page.get_by_role("button", name="Profile").click()
    profile.get_by_role("button", name="Delete account").click()
    account = page.get_by_role("dialog", name="Account and sessions")
    expect(account).to_be_visible()
    account.get_by_role("button", name="Delete my account").click()
    expect(account.get_by_text("Enter your password to confirm.")).to_be_visible()
    account.get_by_label("Password", exact=True).fill(alice.password)
    alice.accept_next_confirm()
    account.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("Your account has been deleted.")).to_be_visible()
    login = page.get_by_role("tabpanel", name="Log in")
    login.get_by_label("Username or email").fill(alice.username)
    login.get_by_label("Password", exact=True).fill(alice.password)
    login.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").filter(has_text="Wrong username or password.")).to_be_visible()

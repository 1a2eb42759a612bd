"""Avatars as people meet them: uploading a picture in the profile dialog (a bad file gets the
server's sentence), the picture shown at once beside one's messages, in the other person's
conversation list, message list and member list (loaded from this origin, under a CSP that
allows images from 'self' only), removing it (initials again), and the dialog axe-clean."""
from __future__ import annotations

import io
import re

from PIL import Image

from browser_env import expect

LOADED = "img => img.complete && img.naturalWidth > 0 && new URL(img.src).origin === location.origin"


def png(size=(300, 200)) -> bytes:
    """Blue with a yellow right half: nothing like an initial on a plain colour."""
    image = Image.new("RGB", size, (30, 120, 200))
    image.paste((250, 200, 40), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def assert_picture_shown(avatar) -> None:
    """``avatar``: a locator of one avatar; its picture loads, from this origin."""
    picture = avatar.locator("img.avatar-img")
    expect(picture).to_have_attribute("src", re.compile(r"^/api/v1/users/[^/]+/avatar\?v=[0-9a-f]+$"))
    picture.page.wait_for_function(LOADED, arg=picture.element_handle())


def test_upload_see_everywhere_remove(people, gateway, assert_axe_clean):
    alice = people.new("alice").open().register(display_name="Alice Avatar")
    bob = people.new("bob").open().register()
    csp = alice.page.request.get(gateway.url + "/").headers["content-security-policy"]
    assert "img-src 'self';" in csp, csp  # no data:, no https: — only this origin
    alice.message_someone(bob)
    alice.say("hello with a face")
    bob.conversation("Alice Avatar").click()
    expect(bob.message("hello with a face")).to_be_visible()

    page = alice.page
    page.get_by_role("button", name="Profile").click()
    profile = page.get_by_role("dialog", name="Your profile")
    chooser = profile.get_by_label("Picture")
    # Not a picture, though it says PNG: the server's sentence, next to the control.
    chooser.set_input_files(files=[{"name": "fake.png", "mimeType": "image/png",
                                    "buffer": b"this is not a picture"}])
    expect(chooser).to_have_attribute("aria-invalid", "true")
    expect(chooser).to_have_accessible_description(re.compile("not a readable PNG"))

    chooser.set_input_files(files=[{"name": "me.png", "mimeType": "image/png",
                                    "buffer": png()}])
    expect(chooser).to_have_attribute("aria-invalid", "false")
    assert_picture_shown(profile.locator("#profile-picture-preview .avatar"))
    expect(profile.get_by_role("button", name="Remove picture")).to_be_visible()
    assert_axe_clean(page)
    people.snapshot(alice, "profile-dialog")
    page.keyboard.press("Escape")
    expect(profile).to_be_hidden()

    # Alice sees her own, beside her name and her message; Bob sees it live, no reload.
    assert_picture_shown(page.locator("#me-avatar .avatar"))
    assert_picture_shown(alice.message("hello with a face").locator(".msg-avatar"))
    assert_picture_shown(bob.message("hello with a face").locator(".msg-avatar"))
    assert_picture_shown(bob.conversation("Alice Avatar").locator(".avatar"))
    bob.page.get_by_role("button", name="Members").click()
    details = bob.page.get_by_role("complementary", name="Room details")
    member = details.get_by_role("listitem").filter(has_text="Alice Avatar")
    assert_picture_shown(member.locator(".avatar"))
    people.snapshot(alice, "with-picture")
    people.snapshot(bob, "with-picture")

    # A reload shows it from the profile the server gives (and the browser's cache).
    bob.page.reload()
    expect(bob.connection()).to_have_text("Online")
    assert_picture_shown(bob.conversation("Alice Avatar").locator(".avatar"))

    # Removed: initials again, everywhere.
    page.get_by_role("button", name="Profile").click()
    profile.get_by_role("button", name="Remove picture").click()
    expect(profile.get_by_role("button", name="Remove picture")).to_be_hidden()
    expect(profile.locator("#profile-picture-preview .avatar")).to_have_text("A")
    page.keyboard.press("Escape")
    expect(bob.conversation("Alice Avatar").locator(".avatar")).to_have_text("A")
    expect(bob.conversation("Alice Avatar").locator("img")).to_have_count(0)

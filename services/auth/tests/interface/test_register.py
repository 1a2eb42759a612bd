import asyncio
import uuid

import pytest

from parley_common.errors import Conflict, ValidationFailed

PUBLIC_KEYS = {"id", "username", "display_name", "avatar_url", "created_at"}


async def register(rpc, username, email=None, password="long enough pw", **extra):
    email = email if email is not None else f"{username}@example.com"
    return await rpc.call("auth", "register", username, email, password, **extra)


async def validation_details(rpc, *args, **kwargs) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        await rpc.call("auth", "register", *args, **kwargs)
    return caught.value.details


async def test_register_returns_self_user_with_defaults(rpc, fresh):
    name = fresh("Reg")
    user = await register(rpc, name, email=f"  {name}@Example.COM ")
    assert set(user) == PUBLIC_KEYS | {"email", "is_admin"}
    assert user["username"] == name
    assert user["display_name"] == name  # defaults to the username
    assert user["avatar_url"] is None
    assert user["email"] == f"{name}@example.com"  # trimmed, domain normalized
    assert user["created_at"].endswith("Z") and len(user["id"]) == 32


async def test_register_keeps_display_name_and_refuses_a_remote_avatar(rpc, fresh):
    user = await register(rpc, fresh(), display_name="  Ada Lovelace ", avatar_url="")
    assert user["display_name"] == "Ada Lovelace" and user["avatar_url"] is None
    # Avatars are uploaded pictures (set_avatar), never links to elsewhere.
    name = fresh()
    details = await validation_details(rpc, name, f"{name}@example.com", "long enough pw",
                                       avatar_url="https://img.example.com/a.png")
    assert set(details) == {"avatar_url"}


@pytest.mark.parametrize("username", ["ab", "x" * 33, "has space", "semi;colon", "ünïcode",
                                      "at@sign", "", "tab\tname"])
async def test_bad_usernames(rpc, username):
    details = await validation_details(rpc, username, "someone@example.com", "long enough pw")
    assert set(details) == {"username"}


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "two@@example.com",
                                   "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com",  # 312 > 254
                                   "spaces in@example.com", ""])
async def test_bad_emails(rpc, fresh, email):
    details = await validation_details(rpc, fresh(), email, "long enough pw")
    assert set(details) == {"email"}


@pytest.mark.parametrize("password", ["short7!", "p" * 129, ""])
async def test_bad_password_lengths(rpc, fresh, password):
    name = fresh()
    details = await validation_details(rpc, name, f"{name}@example.com", password)
    assert set(details) == {"password"}


async def test_password_must_differ_from_username_ignoring_case(rpc, fresh):
    name = fresh("Same")
    details = await validation_details(rpc, name, f"{name}@example.com", name.upper())
    assert set(details) == {"password"}
    assert "username" in details["password"]


@pytest.mark.parametrize("field,value", [
    ("display_name", "d" * 65),
    ("display_name", "line\nbreak"),
    ("avatar_url", "ftp://example.com/a.png"),
    ("avatar_url", "javascript:alert(1)"),
    ("avatar_url", "http://"),
    ("avatar_url", "https://example.com/" + "a" * 493),  # 513 characters
    ("avatar_url", "not a url"),
    ("avatar_url", "https://img.example.com/a.png"),
    ("avatar_url", "//img.example.com/a.png"),
    ("avatar_url", "/api/v1/users/someone/avatar?v=0123"),  # not yours: you have none yet
])
async def test_bad_optional_fields(rpc, fresh, field, value):
    name = fresh()
    details = await validation_details(rpc, name, f"{name}@example.com", "long enough pw",
                                       **{field: value})
    assert set(details) == {field}


async def test_every_bad_field_is_reported_at_once(rpc):
    details = await validation_details(rpc, "x", "nope", "short", display_name="d" * 65,
                                       avatar_url="gopher://x")
    assert set(details) == {"username", "email", "password", "display_name", "avatar_url"}
    assert all(isinstance(sentence, str) and sentence for sentence in details.values())


@pytest.mark.parametrize("args,kwargs,fields", [
    ((123, "a@example.com", "long enough pw"), {}, {"username"}),
    ((None, None, None), {}, {"username", "email", "password"}),
    (("okname", ["a@example.com"], {"p": 1}), {}, {"email", "password"}),
    (("okname2", "b@example.com", "long enough pw"), {"display_name": 7}, {"display_name"}),
    (("okname3", "c@example.com", "long enough pw"), {"avatar_url": True}, {"avatar_url"}),
])
async def test_wrong_types_are_validation_errors(rpc, args, kwargs, fields):
    assert set(await validation_details(rpc, *args, **kwargs)) == fields


async def test_boundary_lengths_are_accepted(rpc, fresh):
    short = fresh("b")[:3]
    user = await register(rpc, short, password="p" * 8)
    assert user["username"] == short
    long_name = fresh("L").ljust(32, "x")
    user = await register(rpc, long_name, password="p" * 128, display_name="d" * 64)
    assert len(user["username"]) == 32 and len(user["display_name"]) == 64


async def test_duplicate_username_ignoring_case(rpc, fresh):
    name = fresh("Dup")
    await register(rpc, name)
    with pytest.raises(Conflict) as caught:
        await register(rpc, name.upper(), email=f"other-{name}@example.com")
    assert caught.value.code == "username_taken"
    assert caught.value.status == 409


async def test_duplicate_email_ignoring_case(rpc, fresh):
    name = fresh("mail")
    await register(rpc, name, email=f"{name}@example.com")
    with pytest.raises(Conflict) as caught:
        await register(rpc, fresh(), email=f"{name.upper()}@EXAMPLE.com")
    assert caught.value.code == "email_taken"


async def test_concurrent_registrations_of_one_username(rpc, fresh):
    name = fresh("race")
    results = await asyncio.gather(
        *(register(rpc, name, email=f"{name}-{i}@example.com") for i in range(10)),
        return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if not isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) and r.code == "username_taken" for r in losers), losers


async def test_concurrent_registrations_of_case_variants(rpc, fresh):
    name = fresh("case")
    variants = [name.lower(), name.upper(), name.capitalize(), name.swapcase(),
                name[:4].upper() + name[4:], name[:4] + name[4:].upper()]
    results = await asyncio.gather(
        *(register(rpc, variant, email=f"{name}-{i}@example.com")
          for i, variant in enumerate(variants)),
        return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(r.code == "username_taken" for r in results if not isinstance(r, dict)), results


async def test_concurrent_registrations_of_one_email(rpc, fresh):
    email = f"{fresh('shared')}@example.com"
    results = await asyncio.gather(
        *(register(rpc, fresh("em"), email=email if i % 2 else email.upper()) for i in range(8)),
        return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(r.code == "email_taken" for r in results if not isinstance(r, dict)), results


async def test_a_replayed_request_answers_with_the_user_it_made(rpc, fresh, auth_events):
    # What a redelivered RPC (the first replica died after committing) looks like to auth.
    name, request_id = fresh("replay"), uuid.uuid4().hex
    first = await register(rpc, name, request_id=request_id)
    again = await register(rpc, name, request_id=request_id)
    assert again == first
    await auth_events.wait_for(
        lambda key, body: key == "user_registered" and body["user"]["id"] == first["id"])
    await asyncio.sleep(0.3)  # a second event would have arrived by now
    assert len(auth_events.matching(
        lambda key, body: key == "user_registered" and body["user"]["id"] == first["id"])) == 1


async def test_concurrent_twins_of_one_request_make_one_user(rpc, fresh):
    name, request_id = fresh("twins"), uuid.uuid4().hex
    results = await asyncio.gather(*(register(rpc, name, request_id=request_id) for _ in range(6)))
    assert len({user["id"] for user in results}) == 1


async def test_another_request_for_a_taken_name_still_conflicts(rpc, fresh):
    name = fresh("newreq")
    await register(rpc, name, request_id=uuid.uuid4().hex)
    with pytest.raises(Conflict) as caught:
        await register(rpc, name, request_id=uuid.uuid4().hex)
    assert caught.value.code == "username_taken"
    # A known request id with another username is not a replay either: that name is free.
    request_id = uuid.uuid4().hex
    await register(rpc, fresh("first"), request_id=request_id)
    with pytest.raises(Conflict):
        await register(rpc, fresh("second"), request_id=request_id)


async def test_bad_request_id_is_a_validation_error(rpc, fresh):
    name = fresh()
    details = await validation_details(rpc, name, f"{name}@example.com", "long enough pw",
                                       request_id="x" * 65)
    assert set(details) == {"request_id"}


async def test_registration_event_carries_public_user(rpc, fresh, auth_events):
    user = await register(rpc, fresh("ev"))
    _, body = await auth_events.wait_for(
        lambda key, body: key == "user_registered" and body["user"]["id"] == user["id"])
    assert set(body["user"]) == PUBLIC_KEYS
    assert "argon2" not in repr(body)


async def test_nul_and_lone_surrogates_are_validation_errors(rpc, fresh):
    # The gateway refuses these too; the service must hold on its own.
    name = fresh("nul")
    with pytest.raises(ValidationFailed) as error:
        await register(rpc, name, password="surrogate \ud83d here",
                       display_name="nul \x00 here", email=f"{name}\x00@example.com")
    assert set(error.value.details) == {"password", "display_name", "email"}
    with pytest.raises(ValidationFailed) as error:
        await rpc.call("auth", "search_users", "u" * 8, "nul\x00", 10)
    assert set(error.value.details) == {"q"}
    with pytest.raises(ValidationFailed) as error:
        await rpc.call("auth", "get_user", "user\x00id", "other")
    assert "user_id" in error.value.details

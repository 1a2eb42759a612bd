import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from parley_common.errors import InvalidCredentials, ValidationFailed


def verify(token: str, public_keys: dict[str, str]) -> dict:
    """What the gateway does: pick the key by kid, accept EdDSA only, require every claim."""
    kid = jwt.get_unverified_header(token).get("kid")
    if kid not in public_keys:
        raise jwt.InvalidKeyError(f"unknown kid {kid!r}")
    return jwt.decode(token, public_keys[kid], algorithms=["EdDSA"],
                      options={"require": ["sub", "sid", "iat", "exp", "jti"]})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_login_by_username_or_email_any_case(rpc, new_user, password):
    user = await new_user()
    for login in (user["username"], user["username"].upper(), user["email"],
                  user["email"].upper(), f"  {user['username']}  "):
        reply = await rpc.call("auth", "login", login, password)
        assert reply["token_type"] == "Bearer"
        assert reply["expires_in"] == 900
        assert reply["user"] == user
        assert reply["session_id"] and reply["access_token"]


async def test_token_claims_and_header(rpc, new_user, password, auth_db):
    user = await new_user()
    before = int(time.time())
    reply = await rpc.call("auth", "login", user["username"], password, user_agent="UA/1.0")
    keys = await rpc.call("auth", "public_keys")
    claims = verify(reply["access_token"], keys)
    header = jwt.get_unverified_header(reply["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"] in keys
    assert claims["sub"] == user["id"] and claims["sid"] == reply["session_id"]
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 900
    assert len(claims["jti"]) == 32
    with auth_db.connect() as connection:
        row = connection.execute(
            text("SELECT user_id, expires_at, revoked_at, user_agent FROM sessions WHERE id = :id"),
            {"id": reply["session_id"]}).one()
    assert row.user_id == user["id"] and row.revoked_at is None and row.user_agent == "UA/1.0"
    # The session outlives its short token by the refresh credential's idle timeout.
    assert int(row.expires_at.timestamp()) == claims["iat"] + 14 * 24 * 3600
    assert reply["refresh_expires_in"] == 14 * 24 * 3600 and reply["refresh_token"]


async def test_default_key_id_is_sha256_prefix_of_raw_public_key(rpc, auth_keyfile):
    key = serialization.load_pem_private_key(auth_keyfile.read_bytes(), None)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    keys = await rpc.call("auth", "public_keys")
    kid = hashlib.sha256(raw).hexdigest()[:16]
    assert list(keys) == [kid]
    assert serialization.load_pem_public_key(keys[kid].encode()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw


async def test_tampered_forged_and_expired_tokens_fail(rpc, logged_in, auth_keyfile):
    user, reply = await logged_in()
    token = reply["access_token"]
    keys = await rpc.call("auth", "public_keys")
    claims = verify(token, keys)
    header_part, payload_part, signature_part = token.split(".")
    kid = jwt.get_unverified_header(token)["kid"]

    # a changed payload (someone else's id) under the original signature
    forged_payload = b64(json.dumps({**claims, "sub": "someone-else"}).encode())
    with pytest.raises(jwt.InvalidSignatureError):
        verify(f"{header_part}.{forged_payload}.{signature_part}", keys)

    # signed by another Ed25519 key that claims our kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                          headers={"kid": kid}), keys)

    # alg "none", and HS256 keyed with the public PEM (algorithm confusion)
    unsigned = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': kid}).encode())}.{payload_part}."
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(unsigned, keys)
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_signature = b64(hmac.new(keys[kid].encode(), f"{hs_header}.{payload_part}".encode(),
                                hashlib.sha256).digest())
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(f"{hs_header}.{payload_part}.{hs_signature}", keys)

    # expired: the genuine signing key, a lifetime that has run out
    real_key = serialization.load_pem_private_key(auth_keyfile.read_bytes(), None)
    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 1000, "exp": now - 100}, real_key,
                         algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(expired, keys)
    assert verify(token, keys)["sub"] == user["id"]  # the genuine one still passes


async def test_unknown_user_wrong_password_and_deleted_user_look_the_same(
        rpc, new_user, password):
    user = await new_user()
    deleted = await new_user()
    await rpc.call("auth", "delete_me", deleted["id"], password)
    attempts = [(user["username"], "wrong password"), ("nobody-" + user["username"][:20], password),
                ("nobody@example.com", password), (deleted["username"], password),
                (deleted["email"], password), (user["username"], ""), ("", password),
                (user["username"], "x" * 5000), (user["username"] + "\x00", password),
                (user["username"], "half a pair \ud83d")]
    seen = set()
    for login, secret in attempts:
        with pytest.raises(InvalidCredentials) as caught:
            await rpc.call("auth", "login", login, secret)
        seen.add((caught.value.code, caught.value.message, repr(caught.value.details)))
    assert seen == {("invalid_credentials", InvalidCredentials.default_message, "{}")}


@pytest.mark.parametrize("args,kwargs", [
    ((None, "password1"), {}), (("name", 12345678), {}), ((["a"], {"b": 1}), {}),
    (("name", "password1"), {"user_agent": 5}),
])
async def test_login_rejects_wrong_types(rpc, args, kwargs):
    with pytest.raises(ValidationFailed):
        await rpc.call("auth", "login", *args, **kwargs)


# --- password hash upgrades and timing, on a process with costlier argon2 parameters --------

@pytest.fixture(scope="module")
async def costly_auth(auth, rpc):
    """A user registered under the cheap test parameters, then auth restarted with costlier
    ones (time_cost 3, 32 MiB)."""
    name = "rehash" + str(int(time.time() * 1000))[-10:]
    user = await rpc.call("auth", "register", name, f"{name}@example.com", "rehash me please")
    auth.restart(ARGON2_TIME_COST="3", ARGON2_MEMORY_COST="32768", ARGON2_PARALLELISM="2")
    yield user
    auth.restart()


def stored_hash(auth_db, user_id: str) -> str:
    with auth_db.connect() as connection:
        return connection.execute(text("SELECT password_hash FROM users WHERE id = :id"),
                                  {"id": user_id}).scalar_one()


async def test_login_rehashes_with_new_parameters(rpc, costly_auth, auth_db):
    before = stored_hash(auth_db, costly_auth["id"])
    assert before.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    await rpc.call("auth", "login", costly_auth["username"], "rehash me please")
    after = stored_hash(auth_db, costly_auth["id"])
    assert after.startswith("$argon2id$v=19$m=32768,t=3,p=2$")
    # the new hash still works and is not re-hashed again
    await rpc.call("auth", "login", costly_auth["email"], "rehash me please")
    assert stored_hash(auth_db, costly_auth["id"]) == after
    with pytest.raises(InvalidCredentials):
        await rpc.call("auth", "login", costly_auth["username"], "wrong password")


async def test_unknown_user_costs_about_as_much_as_a_wrong_password(rpc, costly_auth, fresh):
    # A user whose hash has the current (costly) parameters, like the dummy hash.
    name = fresh("timing")
    await rpc.call("auth", "register", name, f"{name}@example.com", "timing password")

    async def seconds(login: str) -> float:
        started = time.perf_counter()
        with pytest.raises(InvalidCredentials):
            await rpc.call("auth", "login", login, "not the password")
        return time.perf_counter() - started

    known, unknown = [], []
    await seconds("warm-up-nobody")
    for _ in range(9):  # interleaved, so load from elsewhere hits both alike
        known.append(await seconds(name))
        unknown.append(await seconds("nobody-" + name))
    known_median, unknown_median = sorted(known)[4], sorted(unknown)[4]
    # Without the dummy verification an unknown name would answer in a fraction of the time.
    assert unknown_median > 0.5 * known_median, (known, unknown)
    assert known_median > 0.5 * unknown_median, (known, unknown)


# --- key rotation ------------------------------------------------------------------------

async def test_key_rotation_keeps_old_tokens_valid(rpc, logged_in, auth, auth_keyfile,
                                                   tmp_path):
    user, old_reply = await logged_in()
    old_keys = await rpc.call("auth", "public_keys")
    (old_kid,) = old_keys
    extra_dir = tmp_path / "jwt-public"
    extra_dir.mkdir()
    (extra_dir / f"{old_kid}.pem").write_text(old_keys[old_kid])
    new_keyfile = tmp_path / "new-jwt-ed25519.pem"
    new_keyfile.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    auth.restart(JWT_PRIVATE_KEY_FILE=str(new_keyfile), JWT_EXTRA_PUBLIC_KEYS_DIR=str(extra_dir),
                 JWT_KEY_ID="rotated-2")
    try:
        keys = await rpc.call("auth", "public_keys")
        assert set(keys) == {old_kid, "rotated-2"}
        assert verify(old_reply["access_token"], keys)["sub"] == user["id"]
        new_reply = await rpc.call("auth", "login", user["username"], "correct horse battery")
        assert jwt.get_unverified_header(new_reply["access_token"])["kid"] == "rotated-2"
        assert verify(new_reply["access_token"], keys)["sub"] == user["id"]
        # a gateway that only knows the old key rejects the new kid; the old key cannot
        # pass itself off as the new one
        with pytest.raises(jwt.InvalidKeyError):
            verify(new_reply["access_token"], old_keys)
        old_private = serialization.load_pem_private_key(auth_keyfile.read_bytes(), None)
        impostor = jwt.encode(verify(new_reply["access_token"], keys), old_private,
                              algorithm="EdDSA", headers={"kid": "rotated-2"})
        with pytest.raises(jwt.InvalidSignatureError):
            verify(impostor, keys)
    finally:
        auth.restart()

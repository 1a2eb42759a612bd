"""The small helpers auth, rooms, the gateway and the workers share from parley_common."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import create_engine, literal, select

from parley_common.backoff import Backoff
from parley_common.db import like_escape
from parley_common.timeutil import iso, parse_iso


def test_parse_iso_reads_what_iso_writes_and_refuses_the_rest():
    moment = datetime(2026, 11, 22, 10, 15, 0, 123000, tzinfo=timezone.utc)
    assert parse_iso(iso(moment)) == moment
    assert parse_iso("2026-11-22T11:15:00+01:00") == datetime(2026, 11, 22, 10, 15, tzinfo=timezone.utc)
    assert parse_iso("2026-11-22T10:15:00") == datetime(2026, 11, 22, 10, 15, tzinfo=timezone.utc)
    for wrong in (None, "", "yesterday", 1732270500, ["2026-11-22"]):
        assert parse_iso(wrong) is None


def test_like_escape_matches_wildcards_literally():
    engine = create_engine("sqlite://")
    names = ["50%_off", "500 off", "50xxoff", "a\\b"]
    with engine.connect() as connection:
        def matching(fragment: str) -> list[str]:
            pattern = f"%{like_escape(fragment)}%"
            return [name for name in names if connection.execute(
                select(literal(name).like(pattern, escape="\\"))).scalar()]

        assert matching("50%_") == ["50%_off"]
        assert matching("a\\b") == ["a\\b"]
        assert matching("off") == ["50%_off", "500 off", "50xxoff"]
    engine.dispose()


def test_backoff_doubles_to_its_cap_with_jitter_and_resets():
    backoff = Backoff(0.5, 4.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        assert nominal * 0.8 <= delay <= nominal * 1.2
    backoff.reset()
    assert backoff.next() <= 0.5 * 1.2


def test_profiles_show_only_our_own_avatar_addresses():
    """Accounts made before avatars were uploaded had remote URLs; rooms' replica may still
    hold one: rendering a profile drops it, so no client is ever sent a remote image."""
    from types import SimpleNamespace

    from parley_common.users import avatar_url, public_user

    def rendered(url):
        row = SimpleNamespace(id="u1", username="ann", display_name="Ann", avatar_url=url,
                              created_at=None)
        return public_user(row)["avatar_url"]

    own = avatar_url("u1", "0123456789abcdef")
    assert own == "/api/v1/users/u1/avatar?v=0123456789abcdef" and rendered(own) == own
    for remote in ("https://example.com/a.png", "//example.com/a.png", "javascript:x", "", None):
        assert rendered(remote) is None


def test_rpc_errors_of_non_nameko_servers_look_like_namekos_and_come_back_whole():
    """The logger answers RPCs without nameko: its error part has the shape of nameko's
    serialize() of the same exception (which also turns numbers into strings; ours keeps
    them), and callers rebuild the very error it raised."""
    from nameko.exceptions import serialize

    from parley_common.errors import NotFound, RateLimited, ValidationFailed, from_remote, to_remote

    for error in (NotFound("No such room."), ValidationFailed(details={"limit": "too big"}),
                  RateLimited("Slow down.", retry_after=3)):
        ours, namekos = to_remote(error), serialize(error)
        assert ours.keys() == namekos.keys()
        assert all(ours[key] == namekos[key] for key in ("exc_type", "exc_path", "value"))
        back = from_remote(to_remote(error))
        assert type(back) is type(error) and back.to_body() == error.to_body()


def test_replies_and_events_json_is_orjson_for_plain_data_and_the_old_encoders_otherwise():
    """lean_rpc.fast_json (every RPC reply, rooms' events): plain data decodes the same, and
    what orjson would render its own way is encoded exactly as before (stdlib, then kombu)."""
    import json
    from datetime import datetime, timezone

    import kombu.serialization

    from parley_common.lean_rpc import fast_json

    payload = {"messages": [{"id": "m1", "seq": 3, "text": "héllo \u2028 @bob", "deleted": False,
                             "reply_to": None, "mentions": ["u2"], "score": 0.5}],
               "member_ids": {"r1": ["u1", "u2"]}}
    assert json.loads(fast_json(payload)) == payload
    for payload in ({1: "an int key"}, {"big": 2 ** 70}):
        assert fast_json(payload) == json.dumps(payload, separators=(",", ":")).encode()
    dated = {"at": datetime(2026, 12, 2, tzinfo=timezone.utc)}
    assert fast_json(dated) == kombu.serialization.dumps(dated, "json")[2].encode()


def test_nameko_services_freeze_their_start_up_objects():
    """auth and rooms run after freeze_start_up_objects(): what start-up made (~100,000
    objects in rooms) is out of the collector's full collections."""
    import gc

    from parley_common.nameko_support import freeze_start_up_objects

    gc.unfreeze()
    try:
        freeze_start_up_objects()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()

"""In-process: WebSocket frames are checked with the REST validator against schemas.FRAMES and
parley_common.limits (what rooms and auth check too), the one bearer parser, and settings read
from the environment with the defaults written beside each field."""
from __future__ import annotations

import dataclasses

import pytest

from parley_common import limits
from parley_common.errors import ValidationFailed
from parley_gateway import schemas
from parley_gateway.http import check_fields
from parley_gateway.settings import Settings
from parley_gateway.tokens import bearer
from parley_gateway.ws import CLIENT_FRAME_TYPES, FRAME_VALIDATORS

ROOM = "r" * limits.MAX_ID


def problems(frame_type: str, frame: dict) -> dict[str, str]:
    """The details of the validation_failed error a frame gets ({} when it passes)."""
    try:
        check_fields(FRAME_VALIDATORS[frame_type], frame)
    except ValidationFailed as exc:
        assert exc.code == "validation_failed"
        return exc.details
    return {}


def test_every_client_frame_type_has_a_schema():
    assert CLIENT_FRAME_TYPES == {"auth", "subscribe", "unsubscribe", "send", "typing", "read",
                                  "ping"} == set(FRAME_VALIDATORS)


def test_send_frames_meet_the_limits_rest_and_rooms_apply():
    fine = {"type": "send", "room_id": ROOM, "text": "x" * limits.MAX_TEXT,
            "client_id": "c" * limits.MAX_CLIENT_ID, "ref": 1}
    assert problems("send", fine) == {}
    # surrounding spaces do not count, as for REST bodies (rooms trims before storing)
    assert problems("send", {**fine, "text": "  " + "x" * limits.MAX_TEXT + "\n"}) == {}
    too_long = {**fine, "room_id": ROOM + "r", "text": "x" * (limits.MAX_TEXT + 1),
                "client_id": "c" * (limits.MAX_CLIENT_ID + 1)}
    details = problems("send", too_long)
    assert set(details) == {"room_id", "text", "client_id"}
    # the same sentence a REST body gets for the same field
    assert details["text"] == schemas.TEXT["x-message"]
    assert set(problems("send", {"type": "send", "text": "   ", "client_id": 5})) == \
        {"room_id", "text", "client_id"}


def test_seq_fields_are_whole_numbers_of_at_least_zero():
    for after_seq in (0, 7, None):  # null: no resume (parley-cli sends it on a first visit)
        assert problems("subscribe", {"room_id": ROOM, "after_seq": after_seq}) == {}
    for bad in (-1, 1.0, 1.5, True, "3"):
        assert set(problems("subscribe", {"room_id": ROOM, "after_seq": bad})) == {"after_seq"}
        assert set(problems("read", {"room_id": ROOM, "seq": bad})) == {"seq"}
    assert problems("read", {"room_id": ROOM}) == {"seq": "seq is required."}
    assert problems("read", {"room_id": ROOM, "seq": 3}) == {}


def test_room_frames_auth_and_ping():
    for frame_type in ("unsubscribe", "typing", "subscribe"):
        assert set(problems(frame_type, {})) == {"room_id"}
        assert set(problems(frame_type, {"room_id": ""})) == {"room_id"}
    assert set(problems("auth", {"token": ""})) == {"token"}
    assert set(problems("auth", {})) == {"token"}
    assert problems("auth", {"token": "a.b.c"}) == {}
    assert problems("ping", {"anything": ["else"]}) == {}  # unknown fields are ignored


def test_bearer_is_parsed_one_way_for_rest_and_sockets():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc  ") == "abc"
    for header in (None, "", "Bearer", "Bearer   ", "Basic abc", "abc"):
        assert bearer(header) is None, header


def test_settings_come_from_the_environment_with_one_default_each(monkeypatch):
    for setting in dataclasses.fields(Settings):
        if "env" in setting.metadata:
            monkeypatch.delenv(setting.metadata["env"], raising=False)
    for name in ("AMQP_URI", "REDIS_URL", "REDIS_PREFIX", "TRUSTED_PROXIES", "AMQP_PASSWORD",
                 "AMQP_PASSWORD_FILE", "REDIS_PASSWORD", "REDIS_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    defaults, from_env = Settings(), Settings.from_env()
    assert dataclasses.replace(from_env, instance_id=defaults.instance_id) == defaults

    monkeypatch.setenv("PORT", "9090")
    monkeypatch.setenv("WS_FRAMES_PER_SECOND", "2.5")
    monkeypatch.setenv("TRUST_PROXY_HEADERS", "yes")
    monkeypatch.setenv("POST_BATCH_MAX", "1000")  # rooms takes no more than its maximum
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    settings = Settings.from_env()
    assert settings.port == 9090 and settings.ws_frames_per_second == 2.5
    assert settings.trust_proxy_headers is True
    assert settings.post_batch_max == limits.MAX_POSTS_PER_CALL
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8"]
    monkeypatch.setenv("PORT", "not a number")
    with pytest.raises(ValueError):
        Settings.from_env()


def test_client_frames_are_counted_by_type_through_a_cached_child():
    """count_frame_in adds to ws_frames_in{type} exactly as labels(type=...).inc() did, the
    child looked up once per type; the null metrics take the call too."""
    from parley_gateway.metrics import NULL_METRICS, Metrics

    metrics = Metrics()
    for frame_type in ("send", "send", "subscribe", "send"):
        metrics.count_frame_in(frame_type)
    value = metrics.registry.get_sample_value
    assert value("parley_gateway_ws_frames_in_total", {"type": "send"}) == 3
    assert value("parley_gateway_ws_frames_in_total", {"type": "subscribe"}) == 1
    assert list(metrics._frames_in) == ["send", "subscribe"]
    NULL_METRICS.count_frame_in("send")

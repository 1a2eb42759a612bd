"""Events' JSON (amqp.py event_body): orjson for plain data, the encoder it replaced for the
rest, so no event changes shape."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from parley_common.lean_rpc import fast_json
from parley_rooms.amqp import event_body


def test_plain_data_is_the_same_json():
    payload = {"messages": [{"id": "m1", "seq": 3, "text": "héllo \u2028 @bob", "deleted": False,
                             "reply_to": None, "mentions": ["u2"]}],
               "member_ids": {"r1": ["u1", "u2"]}}
    assert json.loads(event_body(payload)) == payload == json.loads(fast_json(payload))


def test_what_orjson_would_render_its_own_way_goes_to_the_old_encoder():
    for payload in ({"at": datetime(2026, 12, 2, tzinfo=timezone.utc)},  # kombu's form
                    {1: "an int key"}, {"big": 2 ** 70}):
        assert event_body(payload) == fast_json(payload)

"""auth.events go through the outbox (parley_common.outbox): committed with their change,
deleted once the broker confirmed them, and relayed if the process died in between."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from sqlalchemy import text

from parley_common.timeutil import iso, utcnow


def outbox_rows(auth_db, fragment: str) -> int:
    with auth_db.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM outbox WHERE payload LIKE :f"),
                                  {"f": f"%{fragment}%"}).scalar()


async def test_published_events_leave_nothing_in_the_outbox(rpc, logged_in, auth_events, auth_db):
    user, login = await logged_in()
    await rpc.call("auth", "update_me", user["id"], display_name="Outbox Tester")
    await rpc.call("auth", "logout", user["id"], login["session_id"])
    await auth_events.wait_for(lambda key, body: key == "session_revoked"
                               and body["session_id"] == login["session_id"])
    # Each call released its rows once the broker had confirmed the events.
    assert outbox_rows(auth_db, user["id"]) == 0


async def test_the_relay_publishes_what_a_dead_publisher_left(auth_events, auth_db):
    # What auth leaves behind when it dies between a logout's commit and its publish.
    session_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    payload = {"session_id": session_id, "user_id": user_id,
               "expires_at": iso(utcnow() + timedelta(minutes=15))}
    with auth_db.begin() as connection:
        connection.execute(
            text("INSERT INTO outbox (id, event_type, payload, position, created_at) "
                 "VALUES (:id, 'session_revoked', :payload, 0, :created_at)"),
            {"id": uuid.uuid4().hex, "payload": json.dumps(payload),
             "created_at": utcnow() - timedelta(hours=1)})
    _, body = await auth_events.wait_for(
        lambda key, body: key == "session_revoked" and body["session_id"] == session_id)
    assert body == payload
    # The relay deletes the row after the broker's confirm, which may come after our consumer
    # got the event: looked at after a few more relay ticks (and still exactly one event).
    await asyncio.sleep(1.0)
    assert outbox_rows(auth_db, session_id) == 0
    assert len(auth_events.matching(lambda key, body: key == "session_revoked"
                                    and body["session_id"] == session_id)) == 1

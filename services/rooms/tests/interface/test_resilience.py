"""Database connections dying under the service (a PostgreSQL restart or failover): calls
fail as `unavailable` (503, retry) at worst, never `internal_error`, and recover at once."""
from __future__ import annotations

from parley_common.errors import ParleyError


async def test_killed_database_connections_cost_at_most_a_retry(rooms):
    owner = await rooms.user()
    room = await rooms.room(owner)
    await rooms.post(owner, room, "before")
    killed = rooms.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert killed[0][0] >= 3  # at least one pooled connection per replica
    outcomes = []
    for index in range(12):
        try:
            await rooms.call("post_message", owner["id"], room["id"], f"after {index}", f"after-{index}")
            outcomes.append("ok")
        except ParleyError as exc:
            outcomes.append(exc.code)
    assert set(outcomes) <= {"ok", "unavailable"}, outcomes
    assert outcomes[-3:] == ["ok", "ok", "ok"], outcomes
    # the failed attempts left no gap: a retry of each succeeds and seqs stay 1..N
    for index, outcome in enumerate(outcomes):
        if outcome != "ok":
            await rooms.call("post_message", owner["id"], room["id"], f"after {index}", f"after-{index}")
    page = await rooms.call("list_messages", owner["id"], room["id"])
    assert [m["seq"] for m in page["messages"]] == list(range(1, 14))

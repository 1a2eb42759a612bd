"""Sockets of revoked sessions are closed even when the ``session_revoked`` event never
reached this instance (consumer reconnecting, a logout that raced the socket's auth): every
WS_REVOCATION_CHECK_SECONDS the sessions this gateway holds sockets for are looked up in the
shared revocation cache in one pipeline, and their sockets closed with 4001."""
from __future__ import annotations

import asyncio

import redis.exceptions

from parley_common.logs import get_logger, redacted

from .hub import CLOSE_SESSION_REVOKED, Hub

log = get_logger("parley_gateway.revocation")


async def revoked_sessions(redis_client, keys, session_ids: list[str]) -> list[str]:
    pipe = redis_client.pipeline(transaction=False)
    for session_id in session_ids:
        pipe.exists(keys.revoked(session_id))
    found = await pipe.execute()
    return [sid for sid, hit in zip(session_ids, found) if hit]


async def sweep(hub: Hub, redis_client, keys) -> int:
    session_ids = list(hub.by_session)
    if not session_ids:
        return 0
    closed = 0
    for session_id in await revoked_sessions(redis_client, keys, session_ids):
        closed += await hub.close_session(session_id, CLOSE_SESSION_REVOKED)
        log.info("ws_revoked_session_swept", session=redacted(session_id))
    return closed


async def run_periodically(hub: Hub, redis_client, keys, interval: float) -> None:
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep(hub, redis_client, keys)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("revocation_sweep_skipped", error=repr(exc))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("revocation_sweep_failed")

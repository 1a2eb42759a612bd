"""The realtime side's wiring, in one place: the hub (sockets), the event consumer, presence
and metrics, and the life of each.

``setup_realtime`` builds every object when the app is created and hands each one its
collaborators explicitly (the WebSocket handler gets a :class:`Realtime`; nothing looks
anything up in the app). Each resource has one ``cleanup_ctx`` (start, then stop in reverse
order): the event consumer (retried until the broker answers), presence (instance heartbeat;
removes this instance's connections when it stops, publishing through the consumer, so it
stops first), the revocation sweep and the hub's heartbeat sweep. Draining the sockets (1001)
is the one ``on_shutdown`` hook: aiohttp runs it before it waits for, then cancels, the
WebSocket handlers; the cleanup contexts run after that.
"""
from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web

from parley_common.backoff import Backoff
from parley_common.logs import get_logger
from parley_common.rpc import AsyncRpcClient

from . import revocation
from .appkeys import EVENTS, HUB
from .budget import Budgets
from .events import EventConsumer
from .hub import DEFAULT_HEARTBEAT_SECONDS, Hub
from .metrics import Metrics, NullMetrics
from .posting import PostBatcher
from .presence import Presence
from .settings import Settings
from .tokens import TokenVerifier
from .ws import WS_PATH, websocket_handler

log = get_logger("parley_gateway.realtime")


@dataclass(frozen=True)
class Realtime:
    """The collaborators of every WebSocket session (ws.py)."""
    settings: Settings
    metrics: Metrics | NullMetrics
    rpc: AsyncRpcClient
    tokens: TokenVerifier
    posts: PostBatcher
    hub: Hub
    budgets: Budgets
    events: EventConsumer
    presence: Presence


def setup_realtime(app: web.Application, *, settings, metrics, rpc, redis, keys, tokens,
                   posts) -> Realtime:
    """Build the realtime side, add its route and the life cycle of each of its resources."""
    hub = Hub(settings, metrics)
    events = EventConsumer(hub, rpc=rpc, tokens=tokens, amqp_uri=settings.amqp_uri,
                           instance=settings.instance_id, send_queue=settings.ws_send_queue,
                           metrics=metrics)
    # Presence publishes on this consumer's connection; the consumer tells presence about
    # membership changes of the users connected here.
    presence = Presence(redis, keys, settings.instance_id, events.publish, rpc,
                        settings.heartbeat_seconds)
    events.presence = presence
    realtime = Realtime(settings=settings, metrics=metrics, rpc=rpc, tokens=tokens, posts=posts,
                        hub=hub, budgets=Budgets(settings), events=events, presence=presence)
    app[HUB] = hub
    app[EVENTS] = events
    app.router.add_get(WS_PATH, functools.partial(websocket_handler, realtime))
    app.cleanup_ctx.append(functools.partial(_event_consumer, events))
    app.cleanup_ctx.append(functools.partial(_presence, presence, settings.drain_seconds))
    app.cleanup_ctx.append(functools.partial(
        _task, "revocation-sweep", lambda: revocation.run_periodically(
            hub, redis, keys, settings.ws_revocation_check_seconds)))
    app.cleanup_ctx.append(functools.partial(
        _task, "ws-heartbeat", lambda: hub.run_heartbeat(
            getattr(settings, "ws_heartbeat", DEFAULT_HEARTBEAT_SECONDS))))
    app.on_shutdown.append(functools.partial(_drain_sockets, hub, settings.drain_seconds))
    return realtime


async def _event_consumer(events: EventConsumer, app: web.Application) -> AsyncIterator[None]:
    backoff = Backoff(0.5, 10.0)
    while True:  # the broker may come up after us (compose, swarm): retry with back-off
        try:
            await events.start()
            break
        except Exception as exc:
            delay = backoff.next()
            log.warning("event_consumer_unavailable", error=repr(exc), retry_in=round(delay, 2))
            await events.close()
            await asyncio.sleep(delay)
    yield
    try:
        await asyncio.wait_for(events.close(), 3)
    except Exception:
        pass


async def _presence(presence: Presence, drain_seconds: float,
                    app: web.Application) -> AsyncIterator[None]:
    presence.start()
    yield
    try:
        await asyncio.wait_for(presence.stop(), max(float(drain_seconds) / 2, 1.0))
    except asyncio.TimeoutError:
        log.warning("presence_stop_timeout")


async def _task(name: str, run, app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(run(), name=name)
    yield
    task.cancel()
    await asyncio.wait([task], timeout=1.0)


async def _drain_sockets(hub: Hub, drain_seconds: float, app: web.Application) -> None:
    """Close every socket with 1001 before aiohttp stops waiting for the handlers."""
    try:
        await asyncio.wait_for(hub.shutdown(), float(drain_seconds))
    except asyncio.TimeoutError:
        log.warning("ws_drain_timeout", remaining=len(hub.connections))
    log.info("ws_drained")

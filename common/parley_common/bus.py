"""The RabbitMQ topology of the suite: one place for every exchange and queue name."""
from __future__ import annotations

RPC_EXCHANGE = "nameko-rpc"
AUTH_EVENTS = "auth.events"
ROOMS_EVENTS = "rooms.events"
PRESENCE_EVENTS = "presence.events"
LOG_EXCHANGE = "parley.logs"

# Log queues: the archive takes everything, the error queue only what needs a human.
LOG_ARCHIVE_QUEUE = "logs.archive"
LOG_ERRORS_QUEUE = "logs.errors"
LOG_QUEUE_BINDINGS = {
    LOG_ARCHIVE_QUEUE: ["#"],
    LOG_ERRORS_QUEUE: ["*.error", "*.critical"],
}

EVENT_EXCHANGES = (AUTH_EVENTS, ROOMS_EVENTS, PRESENCE_EVENTS)

# Presence events (published by gateways and the cleaner).
PRESENCE_ONLINE = "online"
PRESENCE_OFFLINE = "offline"
PRESENCE_TYPING = "typing"

PERSISTENT = 2
TRANSIENT = 1


def log_routing_key(service: str, level: str) -> str:
    return f"{service}.{level.lower()}"


def gateway_events_queue(instance: str) -> str:
    return f"gateway-events-{instance}"


def declare_log_topology_pika(channel) -> None:
    """Idempotent: publishers and consumers both call it, so start order never loses logs."""
    channel.exchange_declare(LOG_EXCHANGE, exchange_type="topic", durable=True)
    for queue, keys in LOG_QUEUE_BINDINGS.items():
        channel.queue_declare(queue, durable=True)
        for key in keys:
            channel.queue_bind(queue, LOG_EXCHANGE, routing_key=key)


def declare_event_exchanges_pika(channel) -> None:
    for name in EVENT_EXCHANGES:
        channel.exchange_declare(name, exchange_type="topic", durable=True)

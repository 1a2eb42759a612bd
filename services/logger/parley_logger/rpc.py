"""``logger.query_logs``: the archive query of ``python -m parley_logger.query``, answered over
RabbitMQ in nameko's RPC wire protocol (docs/internals.md), so the gateway's admin console
can search the archive without reaching ``logs-db`` (only the logger owns it).

A pika consumer of the durable queue ``rpc-logger`` (bound to ``nameko-rpc`` with
``logger.*``), one request at a time. Read-only, so a redelivered request is simply answered
again; a request whose caller gave up (its TTL, the caller's timeout) expires in the queue.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

import pika
from sqlalchemy.orm import sessionmaker

from parley_common import bus
from parley_common.errors import NotFound, ParleyError, ValidationFailed, to_remote
from parley_common.logs import get_logger
from parley_common.text import storable
from parley_common.worker import Delivery, QueueConsumer

from .query import _levels, _min_level, _names, as_dict, build_query, parse_time

QUEUE = "rpc-logger"
MAX_LIMIT = 500
MAX_TEXT = 200

log = get_logger("logger.rpc")


def query_args(filters: dict) -> argparse.Namespace:
    """The query CLI's arguments from ``{service, instance, level, min_level, since, until,
    event, limit}`` (strings as on the command line; limit a number); ValidationFailed naming
    each bad one."""
    if not isinstance(filters, dict):
        raise ValidationFailed(details={"filters": "must be an object"})
    parsers = {"service": _names, "instance": _names, "level": _levels,
               "min_level": _min_level, "since": parse_time, "until": parse_time}
    values: dict[str, Any] = {name: None for name in (*parsers, "event")}
    errors: dict[str, str] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if name not in (*parsers, "event", "limit"):
            errors[name] = "is not a filter of the log archive"
        elif name == "limit":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
                errors[name] = f"must be a whole number from 1 to {MAX_LIMIT}"
        elif not isinstance(value, str) or len(value) > MAX_TEXT or not storable(value):
            errors[name] = f"must be a string of at most {MAX_TEXT} characters"
        elif name == "event":
            values[name] = value.strip() or None
        elif value.strip():
            try:
                values[name] = parsers[name](value)
            except argparse.ArgumentTypeError as exc:
                errors[name] = str(exc)
    if values["level"] and values["min_level"]:
        errors["min_level"] = "give level or min_level, not both"
    if values["since"] and values["until"] and values["since"] > values["until"]:
        errors["since"] = "is after until"
    if errors:
        raise ValidationFailed(details=errors)
    return argparse.Namespace(**values, limit=filters.get("limit") or 100)


class QueryConsumer(QueueConsumer):
    queue = QUEUE
    prefetch = 4
    batch_size = 1

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self.channel = None
        self.counts = {"queries": 0}

    def attach(self, channel) -> None:
        channel.exchange_declare(bus.RPC_EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(QUEUE, durable=True)
        channel.queue_bind(QUEUE, bus.RPC_EXCHANGE, routing_key="logger.*")
        self.channel = channel

    def stats(self) -> dict:
        return dict(self.counts) if self.counts["queries"] else {}

    def handle_batch(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self._answer(delivery)

    def _answer(self, delivery: Delivery) -> None:
        properties = delivery.properties
        reply_to = getattr(properties, "reply_to", None)
        try:
            result = {"result": self._call(delivery), "error": None}
        except ParleyError as exc:
            result = {"result": None, "error": to_remote(exc)}
        self.counts["queries"] += 1
        if not reply_to:
            return  # nobody to answer (a caller that does not wait)
        self.channel.basic_publish(
            bus.RPC_EXCHANGE, reply_to,
            json.dumps(result, ensure_ascii=False, default=str, separators=(",", ":")).encode(),
            pika.BasicProperties(content_type="application/json", content_encoding="utf-8",
                                 correlation_id=getattr(properties, "correlation_id", None),
                                 delivery_mode=bus.TRANSIENT))

    def _call(self, delivery: Delivery) -> Any:
        method = delivery.routing_key.partition(".")[2]
        if method == "ping":
            return "pong"
        if method != "query_logs":
            raise NotFound(f"The logger has no method {method!r}.")
        try:
            request = json.loads(delivery.body)
            args, kwargs = request.get("args") or [], request.get("kwargs") or {}
        except (ValueError, AttributeError):
            raise ValidationFailed(details={"request": "is not a JSON RPC request"}) from None
        filters = args[0] if args else kwargs.get("filters", {})
        query = build_query(query_args(filters))
        with self.sessions() as session:
            return [as_dict(record) for record in session.scalars(query)]

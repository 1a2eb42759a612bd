"""The live figures of the administrators' console: every gateway samples its own metrics
every few seconds into Redis (``gwstats:<instance>``, a short list with a TTL, so a gateway
that is gone drops out by itself), and ``GET /api/v1/admin/stats`` on any gateway reads every
instance's samples plus the broker's queue depths.

A sample: ``{ts, sockets, messages, rpc_p50, rpc_p99, lag_p50, lag_p99}``; ``messages`` is the
running count of messages posted through this gateway (WebSocket sends and REST posts), so a
rate is the difference of two samples; the percentiles (seconds) cover the last minute.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import deque

import aio_pika

from parley_common.logs import get_logger

from .metrics import Metrics

log = get_logger("parley_gateway.console_stats")

SAMPLE_SECONDS = 5.0
SAMPLES_KEPT = 60            # five minutes of samples per gateway
WINDOW_SAMPLES = 12          # percentiles over the last minute
POST_ROUTE = "/api/v1/rooms/{room_id}/messages"
# The queues worth watching: RPC requests waiting for auth / rooms / logger, logs to archive.
QUEUES = ("rpc-auth", "rpc-rooms", "rpc-logger", "logs.archive", "logs.errors")


def _histogram_buckets(metrics_family) -> dict[float, float]:
    """Cumulative count per upper bound, summed over every label set."""
    buckets: dict[float, float] = {}
    for family in metrics_family.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def quantile(older: dict[float, float], newer: dict[float, float], q: float) -> float | None:
    """The q-quantile (an upper bucket bound, seconds) of the observations between two
    cumulative histograms; None when nothing was observed."""
    bounds = sorted(newer)
    counts = [newer[b] - older.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    for bound, count in zip(bounds, counts):
        if count >= q * total:
            return None if bound == float("inf") else bound
    return None


def _gauge(gauge) -> float:
    return sum(sample.value for family in gauge.collect() for sample in family.samples)


def _messages_posted(metrics: Metrics) -> float:
    total = 0.0
    for family in metrics.ws_frames_in.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("type") == "send":
                total += sample.value
    for family in metrics.http_requests.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("route") == POST_ROUTE \
                    and labels.get("method") == "POST" and labels.get("status") in ("200", "201"):
                total += sample.value
    return total


class StatsSampler:
    """Samples this gateway's metrics into Redis every SAMPLE_SECONDS."""

    def __init__(self, redis, keys, instance: str, metrics: Metrics):
        self.redis, self.keys, self.instance, self.metrics = redis, keys, instance, metrics
        self._history: deque = deque(maxlen=WINDOW_SAMPLES + 1)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="console-stats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def sample(self) -> dict:
        rpc = _histogram_buckets(self.metrics.rpc_latency)
        lag = _histogram_buckets(self.metrics.event_lag)
        self._history.append((rpc, lag))
        old_rpc, old_lag = self._history[0]
        return {"ts": round(time.time(), 3),
                "sockets": int(_gauge(self.metrics.ws_connections)),
                "messages": _messages_posted(self.metrics),
                "rpc_p50": quantile(old_rpc, rpc, 0.5), "rpc_p99": quantile(old_rpc, rpc, 0.99),
                "lag_p50": quantile(old_lag, lag, 0.5), "lag_p99": quantile(old_lag, lag, 0.99)}

    async def _loop(self) -> None:
        key = self.keys.gateway_stats(self.instance)
        while True:
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.rpush(key, json.dumps(self.sample(), separators=(",", ":")))
                    pipe.ltrim(key, -SAMPLES_KEPT, -1)
                    pipe.expire(key, int(SAMPLE_SECONDS * 6))
                    await pipe.execute()
            except Exception as exc:  # the cache away for a moment: the console shows a gap
                log.warning("console_stats_failed", error=repr(exc))
            await asyncio.sleep(SAMPLE_SECONDS)


async def gateway_samples(redis, keys) -> dict[str, list[dict]]:
    """Every live gateway's samples, by instance."""
    found: dict[str, list[dict]] = {}
    async for key in redis.scan_iter(match=keys.glob(keys.GATEWAY_STATS), count=200):
        instance = keys.part(keys.GATEWAY_STATS, key)
        if instance is None:
            continue
        raw = await redis.lrange(key, 0, -1)
        found[instance] = [json.loads(item) for item in raw]
    return dict(sorted(found.items()))


async def queue_depths(amqp_uri: str) -> dict[str, int | None]:
    """Messages ready in each watched queue (None: the queue does not exist). A passive declare
    of a missing queue closes its channel, so each queue gets a fresh one."""
    depths: dict[str, int | None] = {}
    connection = await asyncio.wait_for(aio_pika.connect(amqp_uri), 5)
    try:
        for name in QUEUES:
            channel = await connection.channel()
            try:
                queue = await asyncio.wait_for(channel.declare_queue(name, passive=True), 5)
                depths[name] = queue.declaration_result.message_count
            except (aio_pika.exceptions.ChannelClosed, aio_pika.exceptions.AMQPError):
                depths[name] = None
            finally:
                if not channel.is_closed:
                    await channel.close()
    finally:
        await connection.close()
    return depths

"""/healthz (liveness), /readyz (readiness), /metrics (Prometheus), /api/v1/openapi.json."""
from __future__ import annotations

import asyncio

from aiohttp import web

from parley_common.errors import ParleyError, Unavailable

from . import schemas as s
from .appkeys import EVENTS, METRICS, OPENAPI, REDIS, RPC, TOKENS
from .http import Ctx, Endpoint, json_response

READY_TIMEOUT = 2.0
RETRY_AFTER = 5


async def healthz(ctx: Ctx):
    return json_response({"status": "ok"})


async def _service_answers(rpc, service: str) -> str:
    try:
        await rpc.call(service, "ping", timeout=READY_TIMEOUT)
    except Unavailable:
        return "not answering"
    except ParleyError:
        pass  # it answered (even with an error): it is up and consuming its queue
    return "ok"


async def _cache_answers(redis) -> str:
    try:
        await asyncio.wait_for(redis.ping(), READY_TIMEOUT)
    except Exception:
        return "not answering"
    return "ok"


async def readiness_checks(app: web.Application) -> dict[str, str]:
    """Each check's state, "ok" or what is wrong; all run at once, each within READY_TIMEOUT."""
    rpc = app[RPC]
    checks = {"broker": "ok" if rpc.connected else "not connected"}
    cache, auth, rooms = await asyncio.gather(
        _cache_answers(app[REDIS]), _service_answers(rpc, "auth"), _service_answers(rpc, "rooms"))
    checks.update(cache=cache, auth=auth, rooms=rooms)
    checks["events"] = "ok" if app[EVENTS].consuming else "not consuming"
    checks["keys"] = "ok" if app[TOKENS].has_keys else "not loaded"
    return checks


async def readyz(ctx: Ctx):
    checks = await readiness_checks(ctx.app)
    failed = sorted(name for name, state in checks.items() if state != "ok")
    if failed:
        raise Unavailable(f"Not ready: {', '.join(failed)}.", {"checks": checks, "failed": failed},
                          retry_after=RETRY_AFTER)
    return json_response({"status": "ready", "checks": checks})


async def metrics(ctx: Ctx):
    registry = ctx.app[METRICS]
    # Readiness as gauges, fresh at every scrape (Prometheus alerts on it; see deploy/prometheus).
    registry.record_readiness(await readiness_checks(ctx.app))
    return web.Response(body=registry.render(), headers={"Content-Type": registry.content_type})


async def openapi_json(ctx: Ctx):
    return json_response(ctx.app[OPENAPI])


ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, "Liveness: 200 while the process runs.", "operations",
             auth=False, responses={200: s.obj(status={"type": "string", "enum": ["ok"]})}),
    Endpoint("GET", "/readyz", readyz,
             "Readiness: 200 when broker, cache, auth and rooms answer, else 503.", "operations",
             auth=False, responses={200: s.obj(status={"type": "string", "enum": ["ready"]},
                                               checks={"type": "object"})},
             errors=(503,), description="The 503 body names each failed check in "
                                        "details.checks and details.failed."),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics of this instance (readiness "
             "checks included: they run at each request, as for /readyz).", "operations",
             auth=False, responses={200: {"type": "string"}},
             content_type="text/plain"),
    Endpoint("GET", "/api/v1/openapi.json", openapi_json, "This document.", "operations",
             auth=False, responses={200: {"type": "object"}}),
]

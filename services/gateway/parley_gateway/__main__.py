"""python -m parley_gateway [run|healthcheck]"""
from __future__ import annotations

import gc
import os
import sys
import urllib.request

from aiohttp import web

from parley_common.logs import configure_logging, get_logger

from .settings import Settings


def run() -> int:
    configure_logging("gateway")
    settings = Settings.from_env()
    from .app import create_app

    app = create_app(settings)
    app.on_startup.append(_freeze_start_up_objects)  # last: after every other start-up hook
    _use_uvloop()
    shown_host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    log = get_logger("parley_gateway")
    log.info("gateway_starting", url=f"http://{shown_host}:{settings.port}",
             instance=settings.instance_id)
    print(f"Parley gateway serving at http://{shown_host}:{settings.port}", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, shutdown_timeout=settings.drain_seconds,
                handle_signals=True, access_log=None, print=None)
    log.info("gateway_stopped")
    return 0


def _use_uvloop() -> None:
    """uvloop's event loop (libuv): cheaper socket writes and callbacks than asyncio's.
    GATEWAY_UVLOOP=0 keeps asyncio's default loop."""
    if os.environ.get("GATEWAY_UVLOOP", "1") == "0":
        return
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


async def _freeze_start_up_objects(app: web.Application) -> None:
    """Move everything alive after start-up (modules, app, settings) out of the collector's
    reach: full collections then only scan what came later, which shortens gen-2 pauses."""
    gc.collect()
    gc.freeze()


def healthcheck() -> int:
    settings = Settings.from_env()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/healthz", timeout=4) as r:
            return 0 if r.status == 200 else 1
    except Exception:
        return 1


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command == "run":
        return run()
    if command == "healthcheck":
        return healthcheck()
    print("usage: python -m parley_gateway [run|healthcheck]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

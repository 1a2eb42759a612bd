"""The web client's static files: index.html at /, everything else under /static/.

Caching is "no-cache + revalidate": browsers always ask, and aiohttp answers 304 when the
ETag / Last-Modified still match, so a deploy is picked up at once without versioned URLs.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from parley_common.errors import NotFound

CACHE_CONTROL = "no-cache"


def _file(path: Path) -> web.FileResponse:
    response = web.FileResponse(path)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def setup_webclient(app: web.Application, static_dir: Path) -> None:
    root = static_dir.resolve()

    async def index(request: web.Request) -> web.StreamResponse:
        page = root / "index.html"
        if not page.is_file():
            raise NotFound("The web client is not installed.")
        return _file(page)

    async def asset(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        try:
            target = (root / relative).resolve()
            # Never outside the static directory (../ tricks, symlinks out of it).
            found = target.is_relative_to(root) and target.is_file()
        except (OSError, ValueError):  # e.g. a name too long for the filesystem
            found = False
        if not found:
            raise NotFound("There is no such file.")
        return _file(target)

    app.router.add_get("/", index, name="webclient")
    app.router.add_get("/index.html", index)
    app.router.add_get("/static/{path:.+}", asset, name="static")

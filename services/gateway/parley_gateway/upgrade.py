"""The WebSocket opening handshake, answered through aiohttp, then the socket handed over to
a hub Connection (hub.py) for the rest of its life.

aiohttp answers the upgrade request like any other (middlewares, response headers, access
log), with a 101 built here from the request's key (RFC 6455 §4.2.2). Then the transport gets
the Connection as its protocol (``transport.set_protocol``) and aiohttp forgets the request:
its request handler, parsed request, handler coroutine and WebSocket reader/queue are freed
instead of living as long as the socket (most of what an idle socket used to cost). A client
must wait for the 101 before sending (§4.1), so no frame is in aiohttp's buffers then.
"""
from __future__ import annotations

import base64
import binascii
import hashlib

from aiohttp import hdrs, web

from .hub import Connection

_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _ACCEPT_GUID).digest()).decode()


def handshake_headers(request: web.Request) -> dict[str, str]:
    """The 101's headers, or 400 for a request that is not a WebSocket upgrade (426 with the
    version we speak for another protocol version), as aiohttp's WebSocketResponse does."""
    headers = request.headers
    if headers.get(hdrs.UPGRADE, "").strip().lower() != "websocket":
        raise web.HTTPBadRequest(text="Expected an Upgrade: websocket header.")
    if "upgrade" not in {token.strip().lower()
                         for token in headers.get(hdrs.CONNECTION, "").split(",")}:
        raise web.HTTPBadRequest(text="Expected a Connection: upgrade header.")
    version = headers.get(hdrs.SEC_WEBSOCKET_VERSION, "")
    if version not in ("13", "8", "7"):
        raise web.HTTPBadRequest(text=f"Unsupported WebSocket version: {version}",
                                 headers={hdrs.SEC_WEBSOCKET_VERSION: "13"})
    key = headers.get(hdrs.SEC_WEBSOCKET_KEY, "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except (binascii.Error, ValueError):
        raise web.HTTPBadRequest(text=f"Invalid Sec-WebSocket-Key: {key!r}") from None
    return {hdrs.UPGRADE: "websocket", hdrs.CONNECTION: "upgrade",
            hdrs.SEC_WEBSOCKET_ACCEPT: accept_key(key)}


async def accept(request: web.Request, conn: Connection) -> web.StreamResponse:
    """Answer the upgrade (101) and hand the socket to ``conn``; the handler returns the
    response at once. Raises HTTPBadRequest for a request that is not an upgrade, and
    ConnectionResetError when the client went away first."""
    response = web.StreamResponse(status=101, headers=handshake_headers(request))
    response.force_close()  # no keep-alive: this HTTP exchange is the connection's last
    await response.prepare(request)
    await response.write_eof()  # a 101 has no body: this only marks the response done
    transport, handler = request.transport, request.protocol
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away during the handshake")
    transport.set_protocol(conn)
    conn.connection_made(transport)
    # aiohttp's end of the request must not close the socket it no longer owns: it drops
    # a connection whose transport is gone (connection_lost), so it stops tracking it and
    # frees its per-connection state, while the transport lives on with ``conn``.
    handler.transport = None
    handler.connection_lost(None)
    return response

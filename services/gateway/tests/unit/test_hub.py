"""The hub's connection mechanics in-process, against a real aiohttp server and client (no
suite): token-expiry close, one serialization per fan-out, queue overflow isolation."""
from __future__ import annotations

import asyncio
import json
from collections import deque
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from parley_gateway import upgrade
from parley_gateway.hub import (CLOSE_ABNORMAL, CLOSE_TRY_AGAIN_LATER, CLOSE_UNAUTHENTICATED,
                                Frame, Hub)


class RecordingTransport:
    """A transport that keeps what is written to it."""

    def __init__(self):
        self.writes = []

    def write(self, data):
        self.writes.append(data)

    def is_closing(self):
        return False


@pytest.fixture
async def hub_server():
    """A server whose every socket becomes a hub connection of user ``u<n>``."""
    hub = Hub(SimpleNamespace(ws_send_queue=4, drain_seconds=2))
    connected: asyncio.Queue = asyncio.Queue()

    async def handler(request):
        conn = hub.new_connection()
        response = await upgrade.accept(request, conn)  # the socket is conn's from now on
        conn.user_id, conn.session_id = request.query["user"], request.query["user"] + "-s"
        hub.register(conn)
        hub.subscribe(conn, "room")
        await connected.put(conn)
        return response

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield SimpleNamespace(hub=hub, connected=connected, http=http,
                              url=str(server.make_url("/ws")))
    await server.close()


async def test_token_expiry_closes_4401(hub_server):
    ws = await hub_server.http.ws_connect(hub_server.url + "?user=a")
    conn = await hub_server.connected.get()
    conn.expire_at(0.2)
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_UNAUTHENTICATED


async def test_fan_out_shares_one_serialized_frame(hub_server):
    sockets = [await hub_server.http.ws_connect(hub_server.url + f"?user=u{i}") for i in range(3)]
    for _ in sockets:
        await hub_server.connected.get()
    frame = Frame.of("message", _room="room", _seq=1, message={"id": "m1", "seq": 1})
    assert hub_server.hub.deliver(frame, hub_server.hub.subscribers("room")) == 3
    for ws in sockets:
        assert json.loads((await asyncio.wait_for(ws.receive(), 5)).data) == {
            "type": "message", "message": {"id": "m1", "seq": 1}}
        await ws.close()


async def test_overflowing_queue_closes_only_that_socket(hub_server):
    hub = hub_server.hub
    good_ws = await hub_server.http.ws_connect(hub_server.url + "?user=good")
    good = await hub_server.connected.get()
    bad_ws = await hub_server.http.ws_connect(hub_server.url + "?user=bad")
    bad = await hub_server.connected.get()
    # the bad connection's transport is over its high-water mark (as with a client that
    # stopped reading): frames wait in its bounded backlog
    bad.protocol.pause_writing()
    for seq in range(1, 7):
        hub.deliver(Frame.of("message", _room="room", _seq=seq, message={"seq": seq}), [good, bad])
        await asyncio.sleep(0.01)  # a healthy writer keeps up
    assert bad.close_code == CLOSE_TRY_AGAIN_LATER and not good.closing
    seqs = [json.loads((await asyncio.wait_for(good_ws.receive(), 5)).data)["message"]["seq"]
            for _ in range(6)]
    assert seqs == [1, 2, 3, 4, 5, 6]
    msg = await asyncio.wait_for(bad_ws.receive(), 5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await good_ws.close()


async def test_prepared_frames_of_every_length_form_decode(hub_server):
    """wire.py builds the frame header itself: 7-bit, 16-bit and 64-bit lengths, and a burst
    written as one transport.write, must all decode in a standard client."""
    ws = await hub_server.http.ws_connect(hub_server.url + "?user=sizes", max_msg_size=0)
    await hub_server.connected.get()
    # JSON sizes around the 125/126 and 65535/65536 boundaries of RFC 6455's length forms
    texts = [x * n for x, n in (("a", 40), ("b", 96), ("c", 65_480), ("d", 65_520), ("é", 70_000))]
    for seq, text in enumerate(texts, 1):  # one loop turn: one write carrying all five
        hub_server.hub.deliver(Frame.of("message", _room="room", _seq=seq,
                                        message={"seq": seq, "text": text}),
                               hub_server.hub.subscribers("room"))
    lengths = set()
    for seq, text in enumerate(texts, 1):
        msg = await asyncio.wait_for(ws.receive(), 5)
        lengths.add(len(msg.data.encode()))
        assert json.loads(msg.data) == {"type": "message", "message": {"seq": seq, "text": text}}
    assert min(lengths) < 126 and any(126 <= n < 65536 for n in lengths) and max(lengths) >= 65536
    await ws.close()


async def test_heartbeat_sweep_drops_a_silent_socket_and_keeps_one_that_pongs(hub_server):
    """One hub-wide sweep replaces aiohttp's per-socket ping timers: a socket silent for a
    sweep is pinged at the next and dropped at the one after unless something (its pong)
    arrived; a client that answers pings stays."""
    hub = hub_server.hub
    silent_ws = await hub_server.http.ws_connect(hub_server.url + "?user=silent", autoping=False)
    silent = await hub_server.connected.get()
    alive_ws = await hub_server.http.ws_connect(hub_server.url + "?user=alive")  # autoping
    alive = await hub_server.connected.get()
    alive_reader = asyncio.create_task(alive_ws.receive())  # aiohttp answers pings while reading
    sweep = asyncio.create_task(hub.run_heartbeat(0.2))  # a sweep every 0.1 s
    try:
        ping = await asyncio.wait_for(silent_ws.receive(), 5)
        assert ping.type == aiohttp.WSMsgType.PING
        for _ in range(100):
            if silent.conn_id not in hub.connections:
                break
            await asyncio.sleep(0.05)
        # no pong: dropped without a close frame (1006, transport aborted)
        assert silent.close_code == CLOSE_ABNORMAL
        assert silent.transport.is_closing()
        msg = await asyncio.wait_for(silent_ws.receive(), 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR)
        await asyncio.sleep(0.6)  # several more sweeps: the answering socket was pinged too
        assert alive.conn_id in hub.connections and not alive.closing
        assert not alive_reader.done()
    finally:
        sweep.cancel()
        alive_reader.cancel()
    await alive_ws.close()


async def test_token_expiry_shares_hub_timers_and_a_renewal_moves_the_deadline(hub_server):
    hub = hub_server.hub
    ws = await hub_server.http.ws_connect(hub_server.url + "?user=renewing")
    conn = await hub_server.connected.get()
    conn.expire_at(0.2)
    conn.expire_at(60)  # a refreshed token: the earlier deadline no longer applies
    await asyncio.sleep(1.5)
    assert not conn.closing
    assert [conn] == [c for conns in hub._expiring.values() for c in conns]
    await ws.close()
    for _ in range(100):
        if conn.conn_id not in hub.connections:
            break
        await asyncio.sleep(0.02)
    assert not any(hub._expiring.values())  # a finished socket leaves no deadline behind


async def test_event_acks_are_one_multiple_ack_per_loop_turn():
    """The events handled in one loop turn are acknowledged with one basic.ack(multiple) for
    the highest tag; acks only ever rise (an ack below one already sent would be a channel
    error), per channel."""
    from parley_gateway.events import EventConsumer

    class Channel:
        is_closed = False

        def __init__(self):
            self.acks = []

        async def basic_ack(self, tag, multiple=False, wait=True):
            self.acks.append((tag, multiple))

    first, second = Channel(), Channel()
    consumer = EventConsumer(Hub(SimpleNamespace(ws_send_queue=4, drain_seconds=2)),
                             rpc=None, tokens=None, amqp_uri="", instance="t")

    def handled(channel, tag):
        consumer._ack(SimpleNamespace(delivery_tag=tag, channel=channel))

    for tag in (2, 1, 3):
        handled(first, tag)
    handled(second, 7)
    await asyncio.sleep(0.01)
    assert first.acks == [(3, True)] and second.acks == [(7, True)]
    handled(first, 2)  # handled late, already covered by the multiple ack of 3
    await asyncio.sleep(0.01)
    assert first.acks == [(3, True)]
    handled(first, 4)
    await asyncio.sleep(0.01)
    assert first.acks == [(3, True), (4, True)]


async def test_room_delivery_keeps_every_rule_of_push():
    """deliver_to_room appends to an open socket's batch inline and sends every other socket
    through push(): the sender is skipped, a closing socket gets nothing, a replaying room's
    frame is held back, a resumed socket drops what it replayed, a paused transport's frames
    go to its backlog; one write per socket per turn."""
    hub = Hub(SimpleNamespace(ws_send_queue=4, drain_seconds=2))

    def socket(name):
        conn = hub.new_connection()
        conn.conn_id = name
        conn.transport = RecordingTransport()
        hub.subscribe(conn, "r")
        return conn

    plain, sender, closing, replaying, resumed, paused = (
        socket(n) for n in ("plain", "sender", "closing", "replaying", "resumed", "paused"))
    closing.closing = True
    replaying.replaying["r"] = []
    resumed.replayed_to["r"] = 1
    paused.writing_paused = True
    paused.backlog = deque()  # as the transport paused earlier
    first, second = (Frame.of("message", _room="r", _seq=seq, message={"seq": seq})
                     for seq in (1, 2))
    assert hub.deliver_to_room(first, "r", skip="sender") == 5
    assert hub.deliver_to_room(second, "r", skip="sender") == 5
    await asyncio.sleep(0)
    assert plain.transport.writes == [first.wire + second.wire]  # one write for the turn
    assert sender.transport.writes == closing.transport.writes == []
    assert replaying.transport.writes == [] and replaying.replaying["r"] == [first, second]
    assert resumed.transport.writes == [second.wire]  # seq 1 was already replayed
    assert paused.transport.writes == [] and list(paused.backlog) == [first, second]


async def test_a_post_batch_reaches_a_room_as_one_joined_run_with_every_rule_of_push():
    """messages_posted: a room's frames of the batch, in seq order, are joined once and the
    same bytes object is written to each plain socket of the room; the sender skips its own
    message, a replaying room holds them back, a paused transport backlogs them, and a
    mention goes out after the batch's earlier messages and before its later ones."""
    from parley_gateway.events import EventConsumer

    hub = Hub(SimpleNamespace(ws_send_queue=8, drain_seconds=2))
    consumer = EventConsumer(hub, rpc=None, tokens=None, amqp_uri="", instance="t")

    def socket(name, room="r"):
        conn = hub.new_connection()
        conn.conn_id, conn.user_id, conn.session_id = name, "u-" + name, name + "-s"
        conn.transport = RecordingTransport()
        hub.register(conn)
        hub.subscribe(conn, room)
        return conn

    plain, mentioned, sender, replaying, paused = (
        socket(n) for n in ("plain", "mentioned", "sender", "replaying", "paused"))
    elsewhere = socket("elsewhere", room="q")
    replaying.replaying["r"] = []
    paused.writing_paused = True
    consumer.ordering.baseline("r", 0)
    consumer.ordering.baseline("q", 0)
    hub.acked_by["m2"] = "sender"
    author = {"id": "u-author"}
    messages = [{"id": "m1", "room_id": "r", "seq": 1, "author": author},
                {"id": "q1", "room_id": "q", "seq": 1, "author": author},
                {"id": "m2", "room_id": "r", "seq": 2, "author": author,
                 "mentions": ["u-mentioned"]},
                {"id": "m3", "room_id": "r", "seq": 3, "author": author}]
    await consumer._on_messages_posted({"messages": messages})
    await asyncio.sleep(0)
    r1, q1, r2, r3 = (Frame.of("message", _room=m["room_id"], _seq=m["seq"], message=m)
                      for m in messages)
    mention = Frame.of("mention", room_id="r", message=messages[2])
    assert plain.transport.writes == [r1.wire + r2.wire + r3.wire]
    assert mentioned.transport.writes == [r1.wire + mention.wire + r2.wire + r3.wire]
    assert sender.transport.writes == [r1.wire + r3.wire]  # m2 is in its ack
    assert elsewhere.transport.writes == [q1.wire]
    assert replaying.transport.writes == [] and replaying.replaying["r"] == [r1, r2, r3]
    assert paused.transport.writes == [] and [f.seq for f in paused.backlog] == [1, 2, 3]
    assert consumer._runs is None
    # Two messages of one room to plain sockets: one bytes object built for all of them.
    other = socket("other")
    await consumer._on_messages_posted({"messages": [
        {"id": "m4", "room_id": "r", "seq": 4}, {"id": "m5", "room_id": "r", "seq": 5}]})
    await asyncio.sleep(0)
    assert plain.transport.writes[1] is other.transport.writes[0]


async def test_a_request_that_is_not_an_upgrade_is_refused_400(hub_server):
    """upgrade.py answers the handshake itself: a plain GET, an unknown version or a bad key
    is 400 (the version we speak is named), and nothing reaches the hub."""
    url = hub_server.url.replace("ws://", "http://") + "?user=plain"
    key = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    async with hub_server.http.get(url) as response:
        assert response.status == 400
    old_version = {**key, "Sec-WebSocket-Version": "12",
                   "Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAA=="}
    async with hub_server.http.get(url, headers=old_version) as response:
        assert response.status == 400 and response.headers["Sec-WebSocket-Version"] == "13"
    async with hub_server.http.get(url, headers={**key, "Sec-WebSocket-Key": "short"}) as response:
        assert response.status == 400
    assert hub_server.connected.empty()


def test_the_accept_key_of_rfc_6455():
    from parley_gateway.upgrade import accept_key
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # §1.3

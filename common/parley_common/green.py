"""Import first in a nameko process: eventlet must patch the stdlib before anything opens a
socket, and psycopg2 must cooperate with eventlet or one query would stall every worker."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

try:
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
except ImportError:  # SQLite-only installs have no psycopg2
    pass


def _read_frames_in_chunks() -> None:
    """py-amqp reads each AMQP frame with three recv calls of exactly the bytes it wants
    (the 7-byte header, the payload, the end octet): an RPC request (method, header and body
    frames) took ten syscalls, each a trip through eventlet's green socket. Here a recv asks
    for at least READ_CHUNK bytes; what arrives beyond the frame waits in py-amqp's own read
    buffer (``_read_buffer``, which the stock code keeps for partial reads), so one recv
    usually brings a whole request. Everything else is py-amqp 5's ``TCPTransport._read``.
    Safe because every reader of these connections (nameko's consumer, kombu publishers,
    confirm waits) reads through ``read_frame`` and never polls the socket for data first."""
    import errno
    import socket

    import amqp
    from amqp.transport import TCPTransport

    if not amqp.__version__.startswith("5.") or not hasattr(TCPTransport, "_read"):
        return  # another py-amqp: keep its own reader (this one copies 5.x's)

    READ_CHUNK = 4096  # a few small messages; larger frames are still read in one recv

    def _read(self, n, initial=False, _errnos=(errno.EAGAIN, errno.EINTR)):
        recv = self._quick_recv
        rbuf = self._read_buffer
        try:
            while len(rbuf) < n:
                try:
                    s = recv(max(n - len(rbuf), READ_CHUNK))
                except OSError as exc:
                    if exc.errno in _errnos:
                        if initial and self.raise_on_initial_eintr:
                            raise socket.timeout()
                        continue
                    raise
                if not s:
                    raise OSError("Server unexpectedly closed connection")
                rbuf += s
        except:  # noqa: E722  (as py-amqp: keep what was read, whatever interrupted)
            self._read_buffer = rbuf
            raise
        result, self._read_buffer = rbuf[:n], rbuf[n:]
        return result

    TCPTransport._read = _read


_read_frames_in_chunks()

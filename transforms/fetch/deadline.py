"""The total deadline of one fetch: a watchdog that shuts the fetch's socket down when its time is up."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

# Socket timeouts bound each read, not a response: a server sending a byte a second never trips them. So every
# fetch has a Deadline that shuts its connection's socket down when the time is up, which ends any read.
_WATCH_LOCK = threading.Lock()
_current = threading.local()  # the Deadline of the fetch running on this thread


def _shutdown(sock) -> None:
    # socket.socket's own shutdown, not SSLSocket's, which would drop the TLS state under the reading thread.
    # A socket object that is closed has no file descriptor any more, so this never reaches a reused one.
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class Deadline:
    """Ends one fetch's reads at its deadline by shutting down the socket it is reading from."""

    def __init__(self, seconds: float):
        self.fired = False
        self._done = False
        self._conn = self._sock = None
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.name = "fetch-deadline"
        self._timer.daemon = True
        self._timer.start()

    def attach(self, conn, sock) -> None:
        """`conn` now reads for this fetch from `sock` (a pooled connection passes from fetch to fetch)."""
        with _WATCH_LOCK:
            conn._fetch_deadline = self
            self._conn, self._sock = conn, sock
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with _WATCH_LOCK:
            if self._done:
                return
            self.fired = True
            if self._conn is not None and getattr(self._conn, "_fetch_deadline", None) is self:
                _shutdown(self._sock)

    def finish(self) -> None:
        with _WATCH_LOCK:
            self._done = True
            self._conn = self._sock = None
        self._timer.cancel()


@contextlib.contextmanager
def running(seconds: float) -> Iterator[Deadline]:
    """A Deadline for the fetch run inside the block on this thread; connections it uses come under it."""
    watch = Deadline(seconds)
    outer = getattr(_current, "deadline", None)
    _current.deadline = watch
    try:
        yield watch
    finally:
        _current.deadline = outer
        watch.finish()


def _watch(conn) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None and conn.sock is not None:
        deadline.attach(conn, conn.sock)


def watched(base):
    """`base` (a urllib3 connection class) with its socket put under the running fetch's Deadline."""

    class Watched(base):
        """Puts its socket under the running fetch's deadline: after connecting, and before each response (a
        kept-alive connection serves later fetches). TLS handshakes need no watch: Python bounds a whole
        handshake by the socket timeout, which is at most the time left."""

        def connect(self):
            super().connect()
            _watch(self)

        def getresponse(self, *args, **kwargs):
            _watch(self)
            return super().getresponse(*args, **kwargs)

    Watched.__name__ = f"Watched{base.__name__}"
    return Watched

"""A deadline that holds from connect to the last body byte: the ``Watchdog`` shuts the connection of the request
running on its thread when the deadline passes. Socket timeouts bound each read, not their sum, so a server that
drips one header line or byte at a time would never trip them. Used by the URL fetcher and by the bulk command's
endpoint client (which must not import the SSRF rules it does not apply).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # urllib3 itself is imported on the first request that needs it
    import urllib3

_WATCHED = threading.local()  # the watchdog of the fetch running on this thread


class Watchdog:
    """Shuts the socket of this thread's request when the deadline passes: timeouts bound each socket read,
    not their sum, and a server that drips one header line or byte at a time would never trip them."""

    def __init__(self, deadline: float) -> None:
        self.connection: Any = None  # set by _WatchedConnection.request
        # The connection's socket, kept here: http.client drops conn.sock once the headers of an answer that ends
        # the connection are read, while the body is still read from that socket.
        self.sock: socket.socket | None = None
        self.deadline = deadline
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        _WATCHED.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _WATCHED.watchdog = None

    @staticmethod
    def current() -> Watchdog | None:
        """The watchdog of the request running on this thread, if any."""
        return getattr(_WATCHED, "watchdog", None)

    def _fire(self) -> None:
        self.fired = True
        sock = self.sock or getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _watched(connection_class: Any) -> Any:
    """A urllib3 connection class that tells this thread's watchdog which connection its request uses."""

    class _WatchedConnection(connection_class):  # type: ignore[misc, valid-type]  # a class made at run time
        def connect(self) -> None:
            super().connect()
            watchdog = Watchdog.current()
            if watchdog is not None:
                watchdog.sock = self.sock

        def request(self, *args: Any, **kwargs: Any) -> Any:
            watchdog = Watchdog.current()
            if watchdog is not None:
                if watchdog.fired:  # a retry after the deadline: not started
                    raise TimeoutError("the request's deadline has passed")
                watchdog.connection, watchdog.sock = self, self.sock  # a kept connection: connect() is not called
            return super().request(*args, **kwargs)

    return _WatchedConnection


def watched_pool_manager(**kwargs: Any) -> urllib3.PoolManager:
    """A urllib3 PoolManager whose requests a ``Watchdog`` on the calling thread can cut off at its deadline
    (also used by the bulk command's endpoint client)."""
    import urllib3  # imported on the first URL request: requests carrying the image never pay for it

    class HTTPPool(urllib3.HTTPConnectionPool):
        ConnectionCls = _watched(urllib3.connection.HTTPConnection)

    class HTTPSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = _watched(urllib3.connection.HTTPSConnection)

    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}
    return manager

"""A deadline that holds from connect to the last body byte: the ``Watchdog`` shuts the connection of the request
running on its thread when the deadline passes. Socket timeouts bound each read, not their sum, so a server that
drips one header line or byte at a time would never trip them. Used by the URL fetcher and by the bulk command's
endpoint client (which must not import the SSRF rules it does not apply).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
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

    def __enter__(self) -> Watchdog:
        _WATCHED.watchdog = self
        _alarm.arm(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _alarm.disarm(self)
        _WATCHED.watchdog = None

    @staticmethod
    def current() -> Watchdog | None:
        """The watchdog of the request running on this thread, if any."""
        return getattr(_WATCHED, "watchdog", None)

    def fire(self) -> None:
        self.fired = True
        sock = self.sock or getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Alarm:
    """One thread that fires every armed watchdog whose deadline has passed. A thread started per request (a
    ``threading.Timer``) cost each URL fetch 0.3-0.4 ms, most of it in handing the GIL to the new thread
    (docs/performance.md). This one starts once and sleeps at most ``IDLE_WAKE_SECONDS``, so arming a watchdog
    wakes it only when its deadline comes sooner than that."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed: list[tuple[float, int, Watchdog]] = []  # a heap, soonest deadline first
        self._order = itertools.count()  # ties broken by arrival: watchdogs themselves do not compare
        self._wakes_at = 0.0
        self._thread: threading.Thread | None = None

    def arm(self, watchdog: Watchdog) -> None:
        with self._changed:
            heapq.heappush(self._armed, (watchdog.deadline, next(self._order), watchdog))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
                self._thread.start()
            elif watchdog.deadline < self._wakes_at:
                self._changed.notify()

    def disarm(self, watchdog: Watchdog) -> None:
        with self._changed:
            self._armed = [entry for entry in self._armed if entry[2] is not watchdog]
            heapq.heapify(self._armed)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._armed and self._armed[0][0] <= now:
                    heapq.heappop(self._armed)[2].fire()
                soonest = self._armed[0][0] if self._armed else math.inf
                self._wakes_at = min(soonest, now + IDLE_WAKE_SECONDS)
                self._changed.wait(self._wakes_at - now)


IDLE_WAKE_SECONDS = 1.0
_alarm = _Alarm()


def _new_alarm_after_fork() -> None:
    global _alarm
    _alarm = _Alarm()  # a forked child has none of its parent's threads, and perhaps its lock held


os.register_at_fork(after_in_child=_new_alarm_after_fork)


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

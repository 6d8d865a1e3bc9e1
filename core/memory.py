"""Bounds on the memory that decoded images take in one process (one function instance, all its threads).

A decoded image costs about 4 bytes per pixel (Pillow keeps RGB as RGBX), and a second copy while it is
converted: a 36-megapixel photo is ~150-300 MB until it is resized. ``PixelBudget`` lets at most a set number of
decoded pixels exist at once across the threads (the others wait their turn), and ``release_freed_memory``
hands what a big decode freed back to the system: glibc keeps freed memory in per-thread arenas otherwise,
so an 8-thread server would hold ~140 MB per thread long after the request.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Callable, Iterator

from .errors import ServiceBusy

RETRY_AFTER_SECONDS = 2  # about one large decode: what a shed client should wait before trying again


class PixelBudget:
    """At most ``capacity`` decoded pixels at once. A large image that does not fit waits only while no other
    large one waits; a second is answered 503 at once (load shed), so that waiting requests never hold every
    server thread and small images keep being served. Images up to a third of the budget (a 12-16 MP phone
    photo) always wait their turn: they are quick."""

    def __init__(self, capacity: int, wait_seconds: float = 20.0) -> None:
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self.large = capacity // 3
        self._free = capacity
        self._large_waiting = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget while the block runs; an image larger than the whole budget runs alone."""
        pixels = min(pixels, self.capacity)
        with self._changed:
            if self._free < pixels:
                self._wait(pixels)
            self._free -= pixels
        try:
            yield
        finally:
            with self._changed:
                self._free += pixels
                self._changed.notify_all()

    def _wait(self, pixels: int) -> None:
        """Wait for ``pixels`` to be free (the lock held), or refuse: ServiceBusy with Retry-After."""
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        large = pixels > self.large
        if large and self._large_waiting:
            raise ServiceBusy(
                f"the instance is decoding other large images; retry in {RETRY_AFTER_SECONDS}s", headers=retry
            )
        self._large_waiting += large
        try:
            if not self._changed.wait_for(lambda: self._free >= pixels, self.wait_seconds):
                raise ServiceBusy(
                    f"the instance is decoding other large images; retry (waited "
                    f"{self.wait_seconds:g}s for {pixels} pixels of decode memory)",
                    headers=retry,
                )
        finally:
            self._large_waiting -= large


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Return freed heap memory of every arena to the system (a few ms); False where unsupported."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

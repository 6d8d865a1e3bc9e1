"""Progress of a bulk run: tqdm's bar on a terminal, plain lines in logs."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """tqdm's bar (rate, ETA) on a terminal; a plain line every few seconds otherwise (logs, CI)."""

    def __init__(self, total: int, already: int, every: float = 5.0) -> None:
        self.total, self.count, self.every = total, 0, every
        self.started = self.last = time.monotonic()
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", dynamic_ncols=True, file=sys.stderr)
        elif already:
            print(f"resuming: {already} images already answered", file=sys.stderr, flush=True)

    def update(self) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= self.every or self.count == self.total:
            self.last = now
            rate = self.count / max(now - self.started, 1e-9)
            eta = (self.total - self.count) / rate if rate else 0
            print(
                f"{self.count}/{self.total} images ({100 * self.count / max(self.total, 1):.0f}%), "
                f"{rate:.1f} images/s, ETA {eta:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> float:
        if self.bar is not None:
            self.bar.close()
        return time.monotonic() - self.started

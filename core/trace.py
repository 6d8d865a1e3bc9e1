"""What a request's one log line reports about it, filled in as the request goes: the parsed request, each step's
milliseconds, the image's bytes and size, the verdicts. The service makes one per request; the classifier adds its
steps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .request import PredictRequest


@dataclass
class Trace:
    request: PredictRequest | None = None
    ms: dict[str, float] = field(default_factory=dict)  # step -> milliseconds
    image_bytes: int = 0  # of every image, fetched or sent
    image_size: list[int] | None = None  # (width, height) of the last image, as decoded
    verdicts: dict[str, int] = field(default_factory=dict)  # verdict -> images (novelty.py); a drift alarm
    clothing_distance: float | None = None  # of the last image

    def judged(self, verdict: str | None, distance: float | None) -> None:
        if verdict is not None:
            self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        if distance is not None:
            self.clothing_distance = round(distance, 3)

    def lap(self, step: str, since: float) -> float:
        """Add the time since ``since`` to ``step``; the time now, for the next step."""
        now = time.perf_counter()
        self.ms[step] = round(self.ms.get(step, 0.0) + (now - since) * 1000, 3)
        return now

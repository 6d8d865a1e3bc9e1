"""Runtime settings, read from environment variables once per process (see README, "Configuration").

Every value is validated when the settings are made (at start-up), and an error names the environment variable
and the values it accepts, so a bad deployment is one clear log line, not a failure in every request.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "model" / "clothing-model.json"


def _parse(name: str, default, kind):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is invalid: {exc}") from None


def _float(name: str, default: float) -> float:
    return _parse(name, default, float)


def _int(name: str, default: int) -> int:
    return _parse(name, default, int)


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"environment variable {name}={value!r} is invalid: use 1/true/yes/on or 0/false/no/off")
    return word in ("1", "true", "yes", "on")


def _networks(name: str):
    return _parse(
        name,
        (),
        lambda value: tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
        ),
    )


@dataclass(frozen=True)
class Settings:
    manifest_path: Path = DEFAULT_MANIFEST
    # Non-public networks a URL may still point to (tests' loopback server, private deployments).
    fetch_allow_networks: tuple = field(default_factory=tuple)
    fetch_connect_timeout: float = 3.0
    fetch_total_timeout: float = 10.0
    fetch_max_redirects: int = 3
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 16
    model_threads: int = 1
    # Decoded pixels all threads may hold at once (~8 bytes each while decoding): the instance's image memory.
    decode_budget_pixels: int = 48_000_000
    # JPEGs up to this size decode at full size (pixels exactly as Keras'); larger ones at reduced DCT scale.
    jpeg_exact_max_pixels: int = 16_000_000
    # Opt-in: decode every JPEG at reduced DCT scale (faster; pixels differ from keras_image_helper's).
    jpeg_draft: bool = False
    log_level: str = "INFO"

    def __post_init__(self):
        for name, (variable, accepts, rule) in RULES.items():
            value = getattr(self, name)
            if not rule(value):
                raise ValueError(f"environment variable {variable}={value!r} is out of range: {accepts}")

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            manifest_path=Path(os.environ.get("MODEL_MANIFEST", DEFAULT_MANIFEST)),
            fetch_allow_networks=_networks("FETCH_ALLOW_NETWORKS"),
            fetch_connect_timeout=_float("FETCH_CONNECT_TIMEOUT", cls.fetch_connect_timeout),
            fetch_total_timeout=_float("FETCH_TOTAL_TIMEOUT", cls.fetch_total_timeout),
            fetch_max_redirects=_int("FETCH_MAX_REDIRECTS", cls.fetch_max_redirects),
            max_image_bytes=_int("MAX_IMAGE_BYTES", cls.max_image_bytes),
            max_image_pixels=_int("MAX_IMAGE_PIXELS", cls.max_image_pixels),
            max_body_bytes=_int("MAX_BODY_BYTES", cls.max_body_bytes),
            max_batch=_int("MAX_BATCH", cls.max_batch),
            model_threads=_int("MODEL_THREADS", cls.model_threads),
            decode_budget_pixels=_int("DECODE_BUDGET_PIXELS", cls.decode_budget_pixels),
            jpeg_exact_max_pixels=_int("JPEG_EXACT_MAX_PIXELS", cls.jpeg_exact_max_pixels),
            jpeg_draft=_flag("JPEG_DRAFT", cls.jpeg_draft),
            log_level=os.environ.get("LOG_LEVEL", cls.log_level).strip().upper(),
        )


def _positive_seconds(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _at_least(low: int):
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= low


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# field -> (environment variable, what it accepts, check)
RULES = {
    "fetch_connect_timeout": ("FETCH_CONNECT_TIMEOUT", "seconds, a finite number > 0", _positive_seconds),
    "fetch_total_timeout": ("FETCH_TOTAL_TIMEOUT", "seconds, a finite number > 0", _positive_seconds),
    "fetch_max_redirects": ("FETCH_MAX_REDIRECTS", "an integer >= 0", _at_least(0)),
    "max_image_bytes": ("MAX_IMAGE_BYTES", "an integer >= 1", _at_least(1)),
    "max_image_pixels": ("MAX_IMAGE_PIXELS", "an integer >= 1", _at_least(1)),
    "max_body_bytes": ("MAX_BODY_BYTES", "an integer >= 1", _at_least(1)),
    "max_batch": ("MAX_BATCH", "an integer >= 1", _at_least(1)),
    "model_threads": ("MODEL_THREADS", "an integer >= 1", _at_least(1)),
    "decode_budget_pixels": ("DECODE_BUDGET_PIXELS", "an integer >= 1", _at_least(1)),
    "jpeg_exact_max_pixels": ("JPEG_EXACT_MAX_PIXELS", "an integer >= 1", _at_least(1)),
    "log_level": ("LOG_LEVEL", "one of " + ", ".join(LOG_LEVELS), lambda value: value in LOG_LEVELS),
}

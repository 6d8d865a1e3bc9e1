"""Runtime settings, read from environment variables once per process (docs/configuration.md).

Each setting is declared once, as a field whose metadata names its environment variable, how to read it and
what it accepts. Every value is validated when the settings are made (at start-up), and an error names the
variable and the values it accepts, so a bad deployment is one clear log line, not a failure in every request.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .addresses import IPNetwork
from .cors import parse_origins

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "model" / "clothing-model.json"
# JPEGs above this many pixels decode at reduced DCT scale by default; below it, Keras' exact pixels.
JPEG_EXACT_MAX_PIXELS = 2_000_000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word not in TRUE + FALSE:
        raise ValueError("use 1/true/yes/on or 0/false/no/off")
    return word in TRUE


def _networks(text: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _positive_seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= low


PREFIX_RULE = "a folder of keys: non-empty, ending with '/', not starting with one"


BUCKET_RULE = "a bucket or container name: 3-63 lower-case letters, digits, '-', '.', '_', or empty"
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")  # S3's, Cloud Storage's and Blob Storage's rules meet


def _is_bucket(value: object) -> bool:
    return isinstance(value, str) and (value == "" or BUCKET_NAME.fullmatch(value) is not None)


def _is_prefix(value: object) -> bool:
    return isinstance(value, str) and len(value) > 1 and value.endswith("/") and not value.startswith("/")


def setting(
    default: object,
    variable: str,
    parse: Callable[[str], Any],
    accepts: str = "",
    rule: Callable[[Any], bool] | None = None,
) -> Any:
    """A field read from ``variable`` with ``parse``; ``rule`` (with its wording ``accepts``) checks the value."""
    return field(default=default, metadata={"variable": variable, "parse": parse, "accepts": accepts, "rule": rule})


def seconds(default: float, variable: str) -> Any:
    return setting(default, variable, float, "seconds, a finite number > 0", _positive_seconds)


def positive(default: int, variable: str) -> Any:
    return setting(default, variable, int, "an integer >= 1", _at_least(1))


@dataclass(frozen=True)
class Settings:
    manifest_path: Path = setting(DEFAULT_MANIFEST, "MODEL_MANIFEST", Path)
    # Non-public networks a URL may still point to (tests' loopback server, private deployments).
    fetch_allow_networks: tuple[IPNetwork, ...] = setting((), "FETCH_ALLOW_NETWORKS", _networks)
    fetch_connect_timeout: float = seconds(3.0, "FETCH_CONNECT_TIMEOUT")
    fetch_total_timeout: float = seconds(10.0, "FETCH_TOTAL_TIMEOUT")
    fetch_max_redirects: int = setting(3, "FETCH_MAX_REDIRECTS", int, "an integer >= 0", _at_least(0))
    max_image_bytes: int = positive(10 * 1024 * 1024, "MAX_IMAGE_BYTES")
    max_image_pixels: int = positive(40_000_000, "MAX_IMAGE_PIXELS")
    max_body_bytes: int = positive(16 * 1024 * 1024, "MAX_BODY_BYTES")
    max_batch: int = positive(16, "MAX_BATCH")
    model_threads: int = positive(1, "MODEL_THREADS")
    # Decoded pixels all threads may hold at once (~8 bytes each while decoding): the instance's image memory.
    decode_budget_pixels: int = positive(48_000_000, "DECODE_BUDGET_PIXELS")
    # JPEGs up to this size decode at full size (pixels exactly as Keras'); larger ones at reduced DCT scale, the
    # smallest that covers the model's input: the size chosen by accuracy at phone sizes (docs/performance.md).
    jpeg_exact_max_pixels: int = positive(JPEG_EXACT_MAX_PIXELS, "JPEG_EXACT_MAX_PIXELS")
    # Opt-in: decode every JPEG at full size, Keras' pixels at every size (slower on big photos).
    jpeg_exact: bool = setting(False, "JPEG_EXACT", _flag)
    # Opt-in: decode every JPEG at reduced DCT scale (faster; pixels differ from keras_image_helper's).
    jpeg_draft: bool = setting(False, "JPEG_DRAFT", _flag)
    # Web pages on other sites allowed to call the API (core/cors.py): exact origins, comma-separated, or "*".
    cors_allow_origins: tuple[str, ...] = setting((), "CORS_ALLOW_ORIGINS", parse_origins)
    # "emf": a CloudWatch Embedded Metric Format line per request on stdout (core/metrics.py; serverless.yml sets it).
    metrics: str = setting(
        "off", "METRICS", lambda text: text.strip().lower(), "off or emf", lambda value: value in ("off", "emf")
    )
    # Storage triggers (core/storage.py): the keys classified, and where their results go.
    storage_uploads_prefix: str = setting("uploads/", "STORAGE_UPLOADS_PREFIX", str, PREFIX_RULE, _is_prefix)
    storage_results_prefix: str = setting("results/", "STORAGE_RESULTS_PREFIX", str, PREFIX_RULE, _is_prefix)
    # Azure's blob trigger: "eventgrid" (an Event Grid subscription delivers BlobCreated: the only kind Flex
    # Consumption runs, and the fastest on every plan) or "polling" (the host scans the container's logs: no
    # subscription, minutes of delay; for `func start` on Azurite, which sends no events).
    storage_blob_trigger: str = setting(
        "eventgrid",
        "STORAGE_BLOB_TRIGGER",
        lambda text: text.strip().lower(),
        "eventgrid or polling",
        lambda value: value in ("eventgrid", "polling"),
    )
    # The bucket a backfill worker reads (core/backfill.py) when its work does not name one.
    storage_bucket: str = setting("", "STORAGE_BUCKET", str.strip, BUCKET_RULE, _is_bucket)
    log_level: str = setting(
        "INFO",
        "LOG_LEVEL",
        lambda text: text.strip().upper(),
        "one of " + ", ".join(LOG_LEVELS),
        lambda value: value in LOG_LEVELS,
    )

    def __post_init__(self) -> None:
        if self.jpeg_exact and self.jpeg_draft:
            raise ValueError("environment variables JPEG_EXACT and JPEG_DRAFT are both on: they exclude each other")
        for spec in fields(self):
            rule, value = spec.metadata["rule"], getattr(self, spec.name)
            if rule is not None and not rule(value):
                raise ValueError(
                    f"environment variable {spec.metadata['variable']}={value!r} is out of range: "
                    f"{spec.metadata['accepts']}"
                )

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str]) -> list[str]:
        """A warning for each variable named like a setting (the same first word: ``MODEL_``, ``FETCH_``, ...) that
        is none, with the closest known name: a misspelled setting would otherwise be ignored without a word."""
        known = [spec.metadata["variable"] for spec in fields(cls)]
        prefixes = {name.split("_", 1)[0] + "_" for name in known if "_" in name}
        warnings = []
        for name in sorted(environ):
            if name in known or not name.startswith(tuple(prefixes)):
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(sorted(known))}"
            warnings.append(f"environment variable {name} is not a setting of this service and is ignored{hint}")
        return warnings

    @classmethod
    def from_env(cls) -> Settings:
        """The settings from the environment; a variable named like a setting that is none is warned about."""
        for warning in cls.unknown_variables(os.environ):
            logging.getLogger("core").warning(warning)
        values = {}
        for spec in fields(cls):
            text = os.environ.get(spec.metadata["variable"])
            if text is None or (isinstance(spec.default, (bool, tuple)) and not text.strip()):
                continue  # unset (or an empty list/flag): the default
            try:
                values[spec.name] = spec.metadata["parse"](text)
            except ValueError as exc:
                raise ValueError(
                    f"environment variable {spec.metadata['variable']}={text!r} is invalid: {exc}"
                ) from None
        return cls(**values)

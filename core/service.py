"""The cloud-neutral service: an HTTP-shaped request in, a status code and a JSON body out.

Adapters (AWS, GCP, Azure, the CLI) only translate their platform's request into ``handle_http`` (or
``handle_payload``) arguments and the returned ``Response`` back; every decision about requests lives here, so
all clouds answer alike. Read this file top to bottom to follow a request:

1. ``handle_http`` / ``handle_payload``: GET (usage or the page), OPTIONS and other methods are answered at once;
   a POST goes on to ``_predict``. Both go through ``_respond``, every request's one exit: errors become JSON,
   and every answer gets its request id and one log line.
2. ``_predict``: parse and validate (``_parse_http`` / ``_parse_payload``, rules in request.py), fetch the URLs
   (``_fetch_all``, fetch.py), then each image through ``_classify_one``: decode (images.py, within the memory
   budget of memory.py), then the model's preprocess, predict and postprocess (model.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import MethodNotAllowed, ModelError, PayloadTooLarge, ServiceBusy, ServiceError
from .fetch import fetch_image_bytes
from .images import load_image, open_image
from .limits import FRONT_DOORS
from .manifest import Manifest
from .memory import PixelBudget, release_freed_memory
from .model import Classifier
from .page import page, wants_html
from .request import (
    PredictRequest,
    Source,
    check_media_type,
    decode_base64_body,
    from_payload,
    from_raw_image,
    is_raw_image,
    media_type,
    options_from_query,
    parse_json_body,
)
from .settings import Settings

log = logging.getLogger("core")
ALLOW = "GET, HEAD, POST, OPTIONS"
FETCH_CONCURRENCY = 8  # a batch's URLs fetched at once (the batch limit is 16 by default)
# URL fetches in flight on the instance, all requests together: each is a thread (and its watchdog's), so past
# this a batch's further URLs are answered 503 service_busy at once instead of growing the process without bound.
FETCH_SLOTS = 32
TRIM_AFTER_PIXELS = 4_000_000  # decodes this large hand their memory back to the system when done
JSON_HEADERS = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}

Scores = dict[str, float]  # {label: score}, the answer for one image


@dataclass
class Response:
    status: int
    body: Any  # JSON-serialisable, the page's HTML (str), or None (no body)
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))

    def body_text(self) -> str:
        """The body as sent: "" for none, the page's HTML as it is, JSON for everything else."""
        if self.body is None:
            return ""
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


@dataclass
class _Trace:
    """What the log line reports about a request, filled in as it goes."""

    request: PredictRequest | None = None
    timings: dict[str, Any] = field(default_factory=dict)  # step -> ms (floats), plus image_bytes / image_size


class Service:
    def __init__(self, settings: Settings | None = None, classifier: Classifier | None = None) -> None:
        # A bad environment variable must not crash the adapter (a platform error page, a traceback):
        # the service starts with defaults, says so once, and answers every request with a 500 until it is fixed.
        self._config_error: str | None = None
        if settings is None:
            try:
                settings = Settings.from_env()
            except ValueError as exc:
                self._config_error = str(exc)
                settings = Settings()
        _configure_logging(settings.log_level)
        if self._config_error:
            log.error("configuration error, every request will be answered 500: %s", self._config_error)
        self.settings = settings
        self.classifier = classifier or Classifier(settings.manifest_path, settings.model_threads)
        self.pixel_budget = PixelBudget(settings.decode_budget_pixels)
        self._fetch_slots = threading.BoundedSemaphore(FETCH_SLOTS)
        self._cold = True

    # -- 1. entry points and the one exit ---------------------------------------------------------------------
    def handle_http(
        self,
        method: str,
        body: bytes | str | None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        cloud: str = "local",
        request_id: str | None = None,
        base64_body: bool = False,
        accept: str | None = None,
        front_door: str | None = None,
        declared_length: int | None = None,
    ) -> Response:
        """Answer one HTTP request; never raises. ``base64_body``: the platform delivered the body base64-encoded
        (API Gateway's ``isBase64Encoded``). ``accept``: the Accept header; a browser's GET gets the page.
        ``front_door``: the platform's entrance the request came through (limits.py), for the usage JSON.
        ``declared_length``: the Content-Length, where the adapter refused to read a body over MAX_BODY_BYTES."""
        method = (method or "POST").upper()
        raw = body.encode("utf-8") if isinstance(body, str) else body or b""

        def answer(trace: _Trace) -> Response:
            if method in ("GET", "HEAD"):  # HEAD: GET's status and headers; the platforms send no body for it
                if wants_html(accept):
                    html, headers = page()
                    return Response(200, html, dict(headers))
                return Response(200, self.usage(front_door))
            if method == "OPTIONS":
                return Response(204, None, {"Allow": ALLOW})
            if method != "POST":
                raise MethodNotAllowed(
                    f"method {method} is not allowed; use POST (GET shows usage)", headers={"Allow": ALLOW}
                )
            if declared_length is not None and declared_length > self.settings.max_body_bytes:
                raise PayloadTooLarge(f"the request body is larger than {self.settings.max_body_bytes} bytes")
            return self._predict(trace, lambda: self._parse_http(raw, content_type, query or {}, base64_body))

        return self._respond(answer, method, cloud, request_id)

    def answer_error(
        self, error: ServiceError, method: str, cloud: str = "local", request_id: str | None = None
    ) -> Response:
        """A request an adapter refused before it could be handled (a path that is not the function's, headers
        that contradict each other): the same JSON error, request id and log line as every other answer."""

        def refuse(trace: _Trace) -> Response:
            raise error

        return self._respond(refuse, (method or "POST").upper(), cloud, request_id)

    def handle_payload(self, payload: object, cloud: str = "local", request_id: str | None = None) -> Response:
        """Answer an already-decoded JSON request (direct invocations, the CLI); never raises."""
        return self._respond(
            lambda trace: self._predict(trace, lambda: self._parse_payload(payload)), "INVOKE", cloud, request_id
        )

    def usage(self, front_door: str | None = None) -> dict[str, Any]:
        manifest = self._loaded_manifest()
        return {
            "usage": 'POST JSON {"url": "https://..."} or {"image": "<base64>"} (batches: "urls" / '
            '"images", options: "top_k", "probabilities"), or the image itself as image/*',
            "model": {
                "name": manifest.name,
                "version": manifest.version,
                "labels": list(manifest.labels),
                "input_size": list(manifest.input_size),  # (height, width): larger photos gain nothing past ~3x
            },
            "limits": self.limits(front_door),
        }

    def limits(self, front_door: str | None = None) -> dict[str, Any]:
        """The largest request and image a client may send through ``front_door``: the platform's limits
        (limits.py) and the service's own settings, whichever is smaller."""
        settings = self.settings
        door = FRONT_DOORS.get(front_door or "")
        body, raw, json_image = settings.max_body_bytes, settings.max_image_bytes, settings.max_image_bytes
        if door is not None:
            body = min(body, door.max_request_bytes)
            raw = min(raw, door.max_raw_image_bytes or 0)
            json_image = min(json_image, door.max_json_image_bytes)
        return {
            "front_door": door.key if door else None,
            "max_request_bytes": body,
            "max_image_bytes": {"raw": raw, "base64_json": json_image},
            "max_image_pixels": settings.max_image_pixels,
            "max_batch": settings.max_batch,
        }

    def _respond(
        self, answer: Callable[[_Trace], Response], method: str, cloud: str, request_id: str | None
    ) -> Response:
        """Every request's one exit: errors become JSON, and each answer gets its request id and a log line."""
        request_id = request_id or uuid.uuid4().hex
        started = time.perf_counter()
        trace = _Trace()
        cold, self._cold = self._cold, False
        try:
            if self._config_error:
                raise ModelError(f"configuration error: {self._config_error}")
            response = answer(trace)
        except ServiceError as error:
            response = Response(error.status, error.to_dict())
            response.headers.update(error.headers)
        except ModelError as error:
            log.error("%s (request %s)", error, request_id)
            response = _internal_error(request_id)
        except Exception:  # never a traceback to the client; the log has it
            log.exception("unexpected failure (request %s)", request_id)
            response = _internal_error(request_id)
        response.headers["X-Request-Id"] = request_id
        response.headers["Vary"] = "Accept"  # GET answers the page or JSON by Accept: caches must key on it
        _log_request(request_id, method, cloud, trace, response, cold, started)
        return response

    # -- 2. a prediction: parse, fetch, classify each image ------------------------------------------------------
    def _predict(self, trace: _Trace, parse: Callable[[], PredictRequest]) -> Response:
        request = trace.request = parse()
        # One fetch budget for the whole request, so a batch of slow URLs cannot outlive the function.
        deadline = time.monotonic() + self.settings.fetch_total_timeout
        images = self._fetch_all(request.sources, trace.timings, deadline)
        results = [self._classify_one(image, request, trace.timings) for image in images]
        if not request.batch:
            if isinstance(results[0], ServiceError):
                raise results[0]
            return Response(200, results[0])
        # The batch rule: a failed item is its error object, in its place; the request still succeeds.
        return Response(200, [r.to_dict() if isinstance(r, ServiceError) else r for r in results])

    def _parse_http(
        self, body: bytes, content_type: str | None, query: Mapping[str, str], base64_body: bool
    ) -> PredictRequest:
        kind = media_type(content_type)
        check_media_type(kind)
        if len(body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"the request body is larger than {self.settings.max_body_bytes} bytes")
        if base64_body:
            body = decode_base64_body(body)
        options = options_from_query(query)  # validated for every body, so a bad ?top_k= is always a 400
        if is_raw_image(kind):
            return from_raw_image(
                body,
                options,
                num_labels=len(self._loaded_manifest().labels),
                max_image_bytes=self.settings.max_image_bytes,
            )
        payload = parse_json_body(body)
        return self._parse_payload({**options, **payload})

    def _parse_payload(self, payload: object) -> PredictRequest:
        return from_payload(
            payload,
            num_labels=len(self._loaded_manifest().labels),
            max_batch=self.settings.max_batch,
            max_image_bytes=self.settings.max_image_bytes,
        )

    def _fetch_all(
        self, sources: tuple[Source, ...], timings: dict[str, Any], deadline: float
    ) -> list[bytes | ServiceError]:
        """Each source's image bytes, or the ServiceError it failed with; a batch's URLs are fetched at once."""

        def fetch(source: Source) -> bytes | ServiceError:
            if not isinstance(source.value, str):  # image bytes, or the item's validation error
                return source.value
            try:
                return fetch_image_bytes(source.value, self.settings, deadline)
            except ServiceError as error:
                return error

        urls = sum(source.kind == "url" for source in sources)
        t = time.perf_counter()
        if urls > 1:
            images = self._fetch_batch(sources, fetch, min(urls, FETCH_CONCURRENCY))
        else:  # one URL: fetched in the request's own thread
            images = [fetch(source) for source in sources]
        if urls:
            _lap(timings, "fetch", t)
        return images

    def _fetch_batch(
        self, sources: tuple[Source, ...], fetch: Callable[[Source], bytes | ServiceError], wanted: int
    ) -> list[bytes | ServiceError]:
        """A batch's sources through a pool of as many threads as the instance's fetch slots allow (up to
        ``wanted``); with none free, each URL is answered 503 at once (load shed)."""
        slots = 0
        while slots < wanted and self._fetch_slots.acquire(blocking=False):
            slots += 1
        try:
            if not slots:
                busy = ServiceBusy(
                    f"the instance is fetching {FETCH_SLOTS} URLs already; retry in a few seconds",
                    headers={"Retry-After": "5"},
                )
                return [busy if source.kind == "url" else fetch(source) for source in sources]
            with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="fetch") as pool:
                return list(pool.map(fetch, sources))
        finally:
            for _ in range(slots):
                self._fetch_slots.release()

    def _classify_one(
        self, data: bytes | ServiceError, request: PredictRequest, timings: dict[str, Any]
    ) -> Scores | ServiceError:
        """One image's bytes -> {label: score}, or the ServiceError it failed with."""
        if isinstance(data, ServiceError):
            return data
        try:
            timings["image_bytes"] = timings.get("image_bytes", 0) + len(data)
            t = time.perf_counter()
            image = open_image(
                data,
                self.settings.max_image_pixels,
                self._draft_size(),
                None if self.settings.jpeg_draft else self.settings.jpeg_exact_max_pixels,
            )
            pixels = image.size[0] * image.size[1]
            timings["image_size"] = list(image.size)  # as decoded
            with self.pixel_budget.hold(pixels):  # decoded, the image exists only inside this block
                image = load_image(image)
                t = _lap(timings, "decode", t)
                batch = self.classifier.preprocess(image)
                del image
            if pixels >= TRIM_AFTER_PIXELS:
                release_freed_memory()
            t = _lap(timings, "preprocess", t)
            scores = self.classifier.predict(batch)
            _lap(timings, "inference", t)
            return self.classifier.postprocess(scores, request.top_k, request.probabilities)
        except ServiceError as error:
            return error

    # -- the model's facts -------------------------------------------------------------------------------------
    def _loaded_manifest(self) -> Manifest:
        """The model's manifest, loading (and checking the hash of) the model on first use."""
        return self.classifier.loaded_manifest()

    def _draft_size(self) -> tuple[int, int]:
        """The smallest size a JPEG may be decoded at: the model's input size (width, height)."""
        height, width = self._loaded_manifest().input_size
        return width, height


# -- helpers of the exit ---------------------------------------------------------------------------------------
def _internal_error(request_id: str) -> Response:
    return Response(
        500,
        {
            "error": {
                "type": "internal_error",
                "request_id": request_id,
                "message": "the service failed unexpectedly; quote the request id",
            }
        },
    )


def _log_request(
    request_id: str, method: str, cloud: str, trace: _Trace, response: Response, cold: bool, started: float
) -> None:
    """The request's one JSON log line."""
    request, timings = trace.request, trace.timings
    level = logging.ERROR if response.status >= 500 else logging.WARNING if response.status >= 400 else logging.INFO
    record = {
        "severity": logging.getLevelName(level),  # Cloud Logging reads it; CloudWatch and Azure show it
        "request_id": request_id,
        "cloud": cloud,
        "method": method,
        "input": request.input_kind if request else None,
        "items": len(request.sources) if request else 0,
        "status": response.status,
        "cold_start": cold,
        "ms": {k: v for k, v in timings.items() if isinstance(v, float)},
        "total_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if "image_bytes" in timings:
        record["image_bytes"], record["image_size"] = timings["image_bytes"], timings.get("image_size")
    if response.status >= 400:
        record["error"] = response.body["error"]["type"]
    log.log(level, json.dumps(record))


def _lap(timings: dict[str, Any], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = round(timings.get(name, 0.0) + (now - since) * 1000, 3)
    return now


def _configure_logging(level: str) -> None:
    """One JSON line per request at INFO. Lambda and Azure give the root logger a handler (used as is);
    where nobody configured logging (functions-framework, the CLI), write the lines to stderr ourselves."""
    if log.level == logging.NOTSET:
        log.setLevel(level)
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False


@lru_cache(maxsize=1)
def get_service() -> Service:
    """The process-wide service (the model loads on its first request, then stays warm)."""
    return Service()

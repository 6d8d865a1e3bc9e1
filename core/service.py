"""The cloud-neutral service: a ``Request`` in, a ``Response`` out (http.py).

Adapters (AWS, GCP, Azure, the command line) only translate their platform's request into a ``Request`` and the
``Response`` back; every decision about requests lives here, so all clouds answer alike. Read this file top to
bottom to follow a request:

1. ``handle``: every request's one exit around one dispatch: errors become JSON, and every answer gets its
   request id and one log line. ``_dispatch``: GET/HEAD (usage or the page), OPTIONS and other methods are
   answered at once; a POST, or a JSON payload with no HTTP around it, goes on to ``_predict``.
2. ``_predict``: parse and validate (``_parse_http`` / ``_parse_payload``, rules in request.py), fetch the URLs
   (``_fetch_all``, fetch.py), then each image through the classifier (model.py: decode within the memory
   budget, preprocess, predict, postprocess).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from .cors import CorsPolicy
from .errors import ConfigurationError, MethodNotAllowed, ModelError, PayloadTooLarge, ServiceBusy, ServiceError
from .fetch import drop_connections, fetch_image_bytes
from .http import Request, Response
from .limits import FRONT_DOORS
from .manifest import Manifest
from .memory import PixelBudget
from .metrics import emf_record, write_emf
from .model import Classifier, DecodeRules
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

Scores = dict[str, float]  # {label: score}, the answer for one image


@dataclass
class Trace:
    """What the log line reports about a request, filled in as it goes."""

    request: PredictRequest | None = None
    ms: dict[str, float] = field(default_factory=dict)  # step -> milliseconds
    image_bytes: int = 0  # of every image, fetched or sent
    image_size: list[int] | None = None  # (width, height) of the last image, as decoded

    def lap(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.ms[step] = round(self.ms.get(step, 0.0) + (now - since) * 1000, 3)
        return now


class Service:
    def __init__(self, settings: Settings | None = None, classifier: Classifier | None = None) -> None:
        # A bad environment variable must not crash the adapter (a platform error page, a traceback):
        # the service starts with defaults, says so once, and answers every request with a 500 until it is fixed.
        self.config_error: str | None = None
        if settings is None:
            try:
                settings = Settings.from_env()
            except ValueError as exc:
                self.config_error = str(exc)
                settings = Settings()
        if self.config_error:
            log.error("configuration error, every request will be answered 500: %s", self.config_error)
        self.settings = settings
        self.classifier = classifier or Classifier(settings.manifest_path, settings.model_threads)
        self.pixel_budget = PixelBudget(settings.decode_budget_pixels)
        self._fetch_slots = threading.BoundedSemaphore(FETCH_SLOTS)
        self.cors = CorsPolicy(settings.cors_allow_origins)
        self._cold = True

    def warm(self) -> None:
        """Load the model and run it once, at init (the entry points call this when imported), so that the first
        request pays for neither. A broken model is logged here and then answered with a JSON 500 on every
        request, as a bad setting is: never a crash of the runtime."""
        if self.config_error:
            return
        try:
            self.classifier.warm()
        except ModelError as error:
            log.error("the model did not load at init; every request will be answered 500 until it does: %s", error)

    def restored(self) -> None:
        """After a SnapStart restore: this is a new instance, whose first request is a cold start, with no
        connections from the snapshot. (The model, loaded before the snapshot, is ready as it was.)"""
        self._cold = True
        drop_connections()
        log.info(json.dumps({"severity": "INFO", "event": "restored", "message": "a new instance from a snapshot"}))

    # -- 1. the one exit, and the dispatch ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        return self._answer(request, self._dispatch)

    def refuse(self, request: Request, error: ServiceError) -> Response:
        """A request an adapter refused before it could be handled (a path that is not the function's, an event
        field it cannot read): the same JSON error, request id and log line as every other answer."""

        def raise_it(request: Request, trace: Trace) -> Response:
            raise error

        return self._answer(request, raise_it)

    def _answer(self, request: Request, dispatch: Callable[[Request, Trace], Response]) -> Response:
        request_id = request.request_id or uuid.uuid4().hex
        started = time.perf_counter()
        trace = Trace()
        cold, self._cold = self._cold, False
        origin = None
        try:
            # Every header the service reads is read in here, so a bad one (two different Origins) is a JSON 400
            if not request.direct:
                origin = request.headers.get("origin")
            if self.config_error:
                raise ConfigurationError(f"configuration error: {self.config_error}")
            response = dispatch(request, trace)
        except ServiceError as error:
            response = Response.json(error.status, error.to_dict(), error.headers)
        except (ModelError, ConfigurationError) as error:  # the operator's problem: logged, a 500 to the client
            log.error("%s (request %s)", error, request_id)
            response = _internal_error(request_id)
        except Exception:  # never a traceback to the client; the log has it
            log.exception("unexpected failure (request %s)", request_id)
            response = _internal_error(request_id)
        response.headers["X-Request-Id"] = request_id
        response.headers["Vary"] = "Accept"  # GET answers the page or JSON by Accept: caches must key on it
        if not request.direct:
            response.headers.update(self.cors.answer_headers(origin, response.headers["Vary"]))
        record = _log_request(request_id, request, trace, response, cold, started)
        if self.settings.metrics == "emf":
            write_emf(emf_record(record))
        return response

    def _dispatch(self, request: Request, trace: Trace) -> Response:
        if request.direct:  # JSON with no HTTP around it: a direct invocation, the command line
            return self._predict(self._parse_payload(request.payload), trace)
        method = request.method.upper()
        if method in ("GET", "HEAD"):  # HEAD: GET's status and headers; the platforms send no body for it
            if wants_html(request.accept):
                html, headers = page()
                return Response.html(html, headers)
            return Response.json(200, self.usage(request.front_door))
        if method == "OPTIONS":  # a browser's CORS preflight, or a plain question about methods
            return Response.empty(204, {"Allow": ALLOW, **self.cors.preflight_headers(request.headers.get("origin"))})
        if method != "POST":
            raise MethodNotAllowed(
                f"method {method} is not allowed; use POST (GET shows usage)", headers={"Allow": ALLOW}
            )
        return self._predict(self._parse_http(request), trace)

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
            body = min(body, door.max_body_bytes)
            raw = min(raw, door.max_raw_image_bytes or 0)
            json_image = min(json_image, door.max_json_image_bytes)
        return {
            "front_door": door.key if door else None,
            "max_request_bytes": body,
            "max_image_bytes": {"raw": raw, "base64_json": json_image},
            "max_image_pixels": settings.max_image_pixels,
            "max_batch": settings.max_batch,
        }

    # -- 2. a prediction: parse, fetch, classify each image ------------------------------------------------------
    def _predict(self, request: PredictRequest, trace: Trace) -> Response:
        trace.request = request
        # One fetch budget for the whole request, so a batch of slow URLs cannot outlive the function.
        deadline = time.monotonic() + self.settings.fetch_total_timeout
        images = self._fetch_all(request.sources, trace, deadline)
        results = [self._classify(image, request, trace) for image in images]
        if not request.batch:
            if isinstance(results[0], ServiceError):
                raise results[0]
            return Response.json(200, results[0])
        # The batch rule: a failed item is its error object, in its place; the request still succeeds.
        return Response.json(200, [r.to_dict() if isinstance(r, ServiceError) else r for r in results])

    def _parse_http(self, request: Request) -> PredictRequest:
        kind = media_type(request.content_type)
        check_media_type(kind)
        limit = self.settings.max_body_bytes
        if max(len(request.body), request.declared_length or 0) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        body = decode_base64_body(request.body) if request.base64_body else request.body
        options = options_from_query(request.query)  # validated for every body, so a bad ?top_k= is always a 400
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

    def _fetch_all(self, sources: tuple[Source, ...], trace: Trace, deadline: float) -> list[bytes | ServiceError]:
        """Each source's image bytes, or the ServiceError it failed with; a batch's URLs are fetched at once."""

        def fetch(source: Source) -> bytes | ServiceError:
            if source.kind != "url":  # image bytes, or the item's validation error
                return cast(bytes | ServiceError, source.value)
            try:
                return fetch_image_bytes(cast(str, source.value), self.settings, deadline)
            except ServiceError as error:
                return error

        urls = sum(source.kind == "url" for source in sources)
        t = time.perf_counter()
        if urls > 1:
            images = self._fetch_batch(sources, fetch, min(urls, FETCH_CONCURRENCY))
        else:  # one URL: fetched in the request's own thread
            images = [fetch(source) for source in sources]
        if urls:
            trace.lap("fetch", t)
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

    def _classify(self, data: bytes | ServiceError, request: PredictRequest, trace: Trace) -> Scores | ServiceError:
        """One image's bytes -> {label: score}, or the ServiceError it failed with."""
        if isinstance(data, ServiceError):
            return data
        try:
            return self.classifier.classify(
                data, request.top_k, request.probabilities, self._decode_rules(), self.pixel_budget, trace
            )
        except ServiceError as error:
            return error

    # -- the model's facts -------------------------------------------------------------------------------------
    def _loaded_manifest(self) -> Manifest:
        """The model's manifest, loading (and checking the hash of) the model on first use."""
        return self.classifier.loaded_manifest()

    def _decode_rules(self) -> DecodeRules:
        height, width = self._loaded_manifest().input_size
        settings = self.settings
        return DecodeRules(
            max_pixels=settings.max_image_pixels,
            draft_size=(width, height),  # a JPEG is never decoded below the model's input size
            draft_above_pixels=None if settings.jpeg_draft else settings.jpeg_exact_max_pixels,
        )


# -- helpers of the exit ---------------------------------------------------------------------------------------
def _internal_error(request_id: str) -> Response:
    return Response.json(
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
    request_id: str, request: Request, trace: Trace, response: Response, cold: bool, started: float
) -> dict[str, Any]:
    """The request's one JSON log line; returned, for the metrics."""
    predicted = trace.request
    level = logging.ERROR if response.status >= 500 else logging.WARNING if response.status >= 400 else logging.INFO
    record: dict[str, Any] = {
        "severity": logging.getLevelName(level),  # Cloud Logging reads it; CloudWatch and Azure show it
        "request_id": request_id,
        "caller": request.caller,
        "method": "INVOKE" if request.direct else request.method.upper(),
        "input": predicted.input_kind if predicted else None,
        "items": len(predicted.sources) if predicted else 0,
        "status": response.status,
        "cold_start": cold,
        "ms": trace.ms,
        "total_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if trace.image_bytes:
        record["image_bytes"], record["image_size"] = trace.image_bytes, trace.image_size
    if response.status >= 400:
        record["error"] = response.body["error"]["type"]
    # Lambda's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON) nests a dict message as an object in its own JSON
    # line; a string would arrive there as one escaped string. Everywhere else the line is the JSON text.
    log.log(level, record if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON" else json.dumps(record))
    return record


def configure_logging(level: str) -> None:
    """One JSON line per request at ``level``. Lambda and Azure give the root logger a handler (used as is); where
    nobody configured logging (functions-framework, the command line), the lines go to stderr. Called by the
    entry points (``get_service``, the command line), not by a Service: a test's Service leaves logging alone."""
    if log.level == logging.NOTSET:
        log.setLevel(level)
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False


@lru_cache(maxsize=1)
def get_service() -> Service:
    """The process-wide service of the entry points (the model loads on its first request, then stays warm)."""
    service = Service()
    configure_logging(service.settings.log_level)
    return service

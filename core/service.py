"""The cloud-neutral service: a ``Request`` in, a ``Response`` out (contract.py).

Adapters (AWS, GCP, Azure, the command line) only translate their platform's request into a ``Request`` and the
``Response`` back; every decision about requests is made in core/, so all clouds answer alike. The service itself
only dispatches; read this file top to bottom to follow a request:

1. ``handle``: every request's one exit: errors become JSON, and every answer gets its request id, CORS headers
   and one log line (logs.py). ``_dispatch``: GET/HEAD (usage or the page), OPTIONS and other methods are answered
   at once; a POST, or a JSON payload with no HTTP around it, goes on to ``_predict``.
2. ``_predict``: parse and validate (request.py), fetch the URLs (fetch.py), then each image through the classifier
   (model.py: decode within the memory budget, preprocess, predict, postprocess).
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import lru_cache
from typing import Any

from .contract import Request, Response
from .cors import CorsPolicy
from .errors import ConfigurationError, MethodNotAllowed, ModelError, ServiceError
from .fetch import Fetched, Fetcher, drop_connections
from .limits import FRONT_DOORS
from .logs import configure_logging, log_event, log_request
from .memory import PixelBudget
from .metrics import emf_record, write_emf
from .model import Classifier, DecodeRules
from .page import page, wants_html
from .request import ParseRules, PredictRequest, parse_request
from .settings import Settings
from .trace import Trace

log = logging.getLogger("core")
ALLOW = "GET, HEAD, POST, OPTIONS"

Answer = dict[str, Any]  # {label: score}, or with ``details`` the answer with its verdict, for one image


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
        self.fetcher = Fetcher(settings)
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
        log_event("restored", message="a new instance from a snapshot")

    # -- 1. the one exit, and the dispatch ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        return self._answer(request)

    def refuse(self, request: Request, error: ServiceError) -> Response:
        """A request an adapter refused before it could be handled (a path that is not the function's, an event
        field it cannot read): the same JSON error, request id and log line as every other answer."""
        return self._answer(request, refused=error)

    def _answer(self, request: Request, refused: ServiceError | None = None) -> Response:
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
            if refused is not None:
                raise refused
            response = self._dispatch(request, trace)
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
        record = log_request(request_id, request, trace, response, cold, started)
        if self.settings.metrics == "emf":
            write_emf(emf_record(record))
        return response

    def _dispatch(self, request: Request, trace: Trace) -> Response:
        method = "POST" if request.direct else request.method.upper()
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
        return self._predict(parse_request(request, self._parse_rules()), trace)

    def usage(self, front_door: str | None = None) -> dict[str, Any]:
        manifest = self.classifier.loaded_manifest()
        return {
            "usage": 'POST JSON {"url": "https://..."} or {"image": "<base64>"} (batches: "urls" / '
            '"images", options: "top_k", "probabilities", "details"), or the image itself as image/*',
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
        images = self.fetcher.fetch_each(request.sources, deadline)
        fetching = any(source.kind == "url" for source in request.sources)
        results = []
        try:
            while True:  # each image classified as it arrives, its bytes dropped before the next is taken
                waited = time.perf_counter()
                image = next(images, None)
                if fetching:
                    trace.lap("fetch", waited)  # the time spent waiting on URLs, over the whole batch
                if image is None:
                    break
                results.append(self._classify(image, request, trace))
                del image
        finally:
            images.close()  # on a failure too: the fetch threads are joined and their slots given back
        if not request.batch:
            if isinstance(results[0], ServiceError):
                raise results[0]
            return Response.json(200, results[0])
        # The batch rule: a failed item is its error object, in its place; the request still succeeds.
        return Response.json(200, [r.to_dict() if isinstance(r, ServiceError) else r for r in results])

    def _classify(self, data: Fetched, request: PredictRequest, trace: Trace) -> Answer | ServiceError:
        """One image's bytes -> its answer, or the ServiceError it failed with."""
        if isinstance(data, ServiceError):
            return data
        try:
            return self.classifier.classify(
                data, request.top_k, request.probabilities, self._decode_rules(), self.pixel_budget, trace,
                details=request.details,
            )  # fmt: skip
        except ServiceError as error:
            return error

    # -- the model's facts, as parsing and decoding need them ------------------------------------------------------
    def _parse_rules(self) -> ParseRules:
        settings = self.settings
        return ParseRules(
            max_batch=settings.max_batch,
            max_image_bytes=settings.max_image_bytes,
            max_body_bytes=settings.max_body_bytes,
            label_count=lambda: len(self.classifier.loaded_manifest().labels),
        )

    def _decode_rules(self) -> DecodeRules:
        settings = self.settings
        return DecodeRules.for_input(
            self.classifier.loaded_manifest().input_size,
            settings.max_image_pixels,
            exact_max_pixels=None if settings.jpeg_draft else settings.jpeg_exact_max_pixels,
            exact=settings.jpeg_exact,
        )


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


@lru_cache(maxsize=1)
def get_service() -> Service:
    """The process-wide service of the entry points (the model loads on its first request, then stays warm)."""
    service = Service()
    configure_logging(service.settings.log_level)
    return service

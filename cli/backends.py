"""Who answers each image: the local model in worker processes, or a deployed endpoint over HTTP."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.contract import Request
from core.limits import SMALLEST

from .inputs import payload_for
from .rows import Row, error_row, row_for
from .signing import Signer

if TYPE_CHECKING:
    import urllib3

RETRY_STATUSES = (429, 500, 502, 503, 504)
# The least an endpoint's advertised image limit is believed: a photo scaled to fit less (0, -1, `true`) would
# lose the detail the model needs; below this the smallest platform's limit is kept instead.
MIN_BELIEVED_IMAGE_BYTES = 64 * 1024
MAX_RETRY_AFTER = 30.0  # seconds: an endpoint's Retry-After is followed up to this (one said 100000)
MAX_ANSWER_BYTES = 1024 * 1024  # an answer is ~300 bytes of scores; a larger one is not an answer
PROBE_SECONDS = 30.0  # the endpoint's GET (a cold start included) before any image


class Unreachable(Exception):
    """No connection to the endpoint can be made: said once, before any image."""


# -- workers: the local model ------------------------------------------------------------------------------
_SERVICE: Any = None  # the worker process's Service
_LOAD_ERROR: str | None = None  # why the worker's model did not load: the same in every worker


def start_local_worker(manifest: str | None = None, level: str = "CRITICAL") -> None:
    """A worker process's service, with the model loaded now (its runtime's notices kept off the terminal), so
    that a model that cannot load is found by ``check_local_model`` before any photo."""
    global _SERVICE, _LOAD_ERROR
    import dataclasses
    import logging
    import signal
    from pathlib import Path

    from core.errors import ModelError
    from core.logs import configure_logging
    from core.service import Service
    from core.settings import Settings

    from .quiet import runtime_notices_dropped

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool cleanly
    # A JSON line per image would drown the progress bar; the row says what the log line would.
    configure_logging(level)
    logging.getLogger("core").setLevel(level)
    settings = Settings.from_env()  # the parent checked it
    if manifest:
        settings = dataclasses.replace(settings, manifest_path=Path(manifest))
    _SERVICE = Service(settings)
    try:
        with runtime_notices_dropped():
            _SERVICE.classifier.load()
    except ModelError as error:
        _LOAD_ERROR = str(error)


def check_local_model() -> tuple[str | None, list[str]]:
    """(why the model cannot answer, or None; its labels), as a worker found them."""
    if _LOAD_ERROR is not None:
        return _LOAD_ERROR, []
    return None, list(_SERVICE.classifier.loaded_manifest().labels)


def classify_locally(item: str, top_k: int) -> Row:
    try:
        payload = payload_for(item, top_k)
    except OSError as exc:
        return error_row(item, f"file_error: {exc.strerror}")
    assert _SERVICE is not None, "the worker's initializer creates the service"
    response = _SERVICE.handle(Request.invocation(payload, caller="bulk"))
    return row_for(item, response.status, response.body)


# -- workers: a deployed endpoint -----------------------------------------------------------------------
@dataclass
class Endpoint:
    url: str
    headers: dict[str, str]
    timeout: float
    retries: int
    # The largest image a JSON request may carry: what the endpoint's usage JSON says, else the smallest
    # platform's (core/limits.py).
    max_image_bytes: int = SMALLEST.max_json_image_bytes
    sign: Signer | None = None  # --aws-sign: SigV4 on every try (signing.py)
    # Ask for the verdict (``details``) unless the endpoint's usage lists its options without it: a deployment
    # from before the verdict refuses the unknown field, and its rows then simply have no verdict.
    details: bool = True

    def headers_for(self, method: str, body: bytes) -> dict[str, str]:
        return self.sign(method, self.url, body, dict(self.headers)) if self.sign else self.headers

    def probe(self, http: urllib3.PoolManager) -> dict[str, Any] | None:
        """The endpoint's GET (usage: its limits, its model's labels), or None when it gives no JSON object.
        Raises Unreachable when no connection can be made at all: every image would fail alike."""
        import urllib3

        from core.deadline import Watchdog

        try:
            with Watchdog(time.monotonic() + min(self.timeout, PROBE_SECONDS)) as watchdog:
                answer = http.request(
                    "GET",
                    self.url,
                    headers=self.headers_for("GET", b""),
                    retries=False,
                    redirect=False,
                    preload_content=False,
                )
                data = _read_answer(answer, watchdog.deadline)
            usage = json.loads(data or b"")
        except urllib3.exceptions.NewConnectionError as exc:  # refused, no such host: not a slow start
            raise Unreachable(f"cannot connect to the endpoint: {connection_problem(exc, self.url)}") from None
        except Exception:  # an older deployment, a gateway's page, a slow answer: the images will tell
            return None
        return usage if isinstance(usage, dict) else None

    def learn_limits(self, usage: dict[str, Any] | None) -> None:
        """Keep the largest image the endpoint's front door lets through, as its usage says (else the default),
        and whether it knows ``details``."""
        limit = dig(usage, "limits", "max_image_bytes", "base64_json")
        if type(limit) is int and limit >= MIN_BELIEVED_IMAGE_BYTES:  # not a bool, a float or a string
            self.max_image_bytes = limit
        options = dig(usage, "usage")
        if isinstance(options, str) and "options" in options:
            self.details = '"details"' in options

    def pool(self) -> urllib3.PoolManager:
        from core.deadline import watched_pool_manager

        return watched_pool_manager(maxsize=64, retries=False, timeout=self.timeout)

    def classify(self, http: urllib3.PoolManager, item: str, top_k: int) -> Row:
        """One image through the endpoint: retried on 429/5xx, timeouts and dropped connections (never on other
        4xx), with backoff or the endpoint's Retry-After (at most MAX_RETRY_AFTER seconds)."""
        try:
            payload = json.dumps(payload_for(item, top_k, self.max_image_bytes, self.details)).encode()
        except OSError as exc:
            return error_row(item, f"file_error: {exc.strerror}")
        failure, wait_seconds = "", 0.0
        for attempt in range(self.retries + 1):
            time.sleep(wait_seconds)
            outcome = self._attempt(http, payload)
            if isinstance(outcome, tuple):
                status, headers, data = outcome
                if status not in RETRY_STATUSES:
                    return _row_from_answer(item, status, headers, data)
                failure, wait_seconds = (
                    _why_retried(status, headers, data),
                    _retry_after(headers.get("Retry-After"), attempt),
                )
            else:
                failure, wait_seconds = outcome, _retry_after(None, attempt)
        return error_row(item, f"endpoint_error: gave up after {self.retries} retries: {failure}")

    def _attempt(self, http: urllib3.PoolManager, payload: bytes) -> tuple[int, Any, bytes | None] | str:
        """One POST, within ``timeout`` seconds from sending to the answer's last byte (a watchdog shuts the
        connection then: a server dripping a byte a second cannot outlast it). (status, headers, body or None
        when over MAX_ANSWER_BYTES), or why it failed."""
        import urllib3

        from core.deadline import Watchdog

        with Watchdog(time.monotonic() + self.timeout) as watchdog:
            try:
                # Redirects are not followed: the request carries the caller's keys, which must never reach
                # another host.
                response = http.request(
                    "POST",
                    self.url,
                    body=payload,
                    headers=self.headers_for("POST", payload),
                    redirect=False,
                    preload_content=False,
                )
                complete = False
                try:
                    data = _read_answer(response, watchdog.deadline)
                    complete = data is not None
                finally:
                    if not complete:  # bytes left unread: this connection must not serve the next request
                        response.close()
                    response.release_conn()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if watchdog.fired:
                    return f"no whole answer within --timeout {self.timeout:g}s"
                return connection_problem(exc, self.url)
        if watchdog.fired:
            return f"no whole answer within --timeout {self.timeout:g}s"
        return response.status, response.headers, data


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds before the next try: the endpoint's Retry-After (seconds or a date), else exponential backoff."""
    import urllib3

    if value:
        try:
            return min(max(urllib3.Retry().parse_retry_after(value), 0.0), MAX_RETRY_AFTER)
        except urllib3.exceptions.InvalidHeader:
            pass
    return min(0.5 * 2**attempt, 10.0)


def dig(value: Any, *keys: str) -> Any:
    """``value[key][key]...`` of a JSON answer, or None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _why_retried(status: int, headers: Any, data: bytes | None) -> str:
    """The status, and what the answer said of itself (its error type, message, request id) if anything."""
    error = _row_from_answer("", status, headers, data)["error"]
    return f"HTTP {status}" + (f": {error}" if error.partition(": ")[2].strip() else "")


def _row_from_answer(item: str, status: int, headers: Any, data: bytes | None) -> Row:
    if 300 <= status < 400:
        return row_for(item, status, redirect_error(status, headers.get("Location")))
    if data is None:
        return error_row(item, f"endpoint_error: an answer over {MAX_ANSWER_BYTES} bytes is not label scores")
    try:
        body = json.loads(data)
    except ValueError:
        text = data[:200].decode(errors="replace")
        body = text if status == 200 else {"error": {"type": f"http_{status}", "message": text}}
    return row_for(item, status, body)


def _read_answer(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes | None:
    """The answer's body, or None past MAX_ANSWER_BYTES (read no further). read1: one socket read per call, so
    the deadline is checked however slowly the bytes come."""
    data = bytearray()
    while chunk := response.read1(64 * 1024):
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            return None
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took longer than the deadline")
    return bytes(data)


def connection_problem(exc: BaseException, url: str) -> str:
    """Why a request failed, in words: urllib3 names its connection object ("_WatchedConnection(host=...,
    port=...): Failed to establish a new connection: [Errno 111] Connection refused"); the user wants the host and
    the reason. Never the URL's query (an Azure ?code= key)."""
    import re

    text = str(exc)
    match = re.match(r"^\w+\(host='?([^,']*)'?, port=(\d+)\): (.*)$", text, re.S)
    if match:
        host, port, reason = match.groups()
        reason = reason.removeprefix("Failed to establish a new connection: ")
        text = f"{host}:{port}: {reason}"
    return without_query(text, url)[:200]


def without_query(text: str, url: str) -> str:
    """``text`` with the URL's query (an Azure ``?code=`` key, say) and what urllib3 quotes of it removed."""
    from urllib.parse import urlsplit

    query = urlsplit(url).query
    return text.replace("?" + query, "?...").replace(query, "...") if query else text


def check_endpoint(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint (said once, before any work), or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        return f"--endpoint is not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"--endpoint must start with https:// (or http://), not {parts.scheme or 'nothing'}://"
    if not parts.hostname:
        return "--endpoint has no host name"
    if parts.port == 0:
        return "--endpoint's port must be from 1 to 65535"
    return None


def redirect_error(status: int, location: str | None) -> dict[str, Any]:
    return {
        "error": {
            "type": "endpoint_redirect",
            "message": f"the endpoint answered HTTP {status} (to {str(location)[:200]}); redirects are not followed, "
            "so that keys are never sent to another host: give the final URL as --endpoint",
        }
    }


def endpoint_headers(args: argparse.Namespace) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if args.api_key:
        headers["x-api-key"] = args.api_key  # AWS API Gateway (--param="apiKey=true")
    if args.function_key:
        headers["x-functions-key"] = args.function_key  # Azure Functions
    if args.identity_token:
        headers["Authorization"] = f"Bearer {args.identity_token}"  # GCP: gcloud auth print-identity-token
    return headers

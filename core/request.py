"""Turn what a client sent (JSON object, or a raw image body) into a validated PredictRequest: ``parse_request``
is the one call, with the limits that apply (``ParseRules``); every parsing rule lives in this module.

JSON fields: exactly one of ``url`` / ``image`` (base64 of the file) / ``urls`` / ``images`` (lists, for a
batch); optional ``top_k`` (1..number of labels), ``probabilities`` and ``details`` (bools), which may also come
from the query string (JSON fields win). A raw body with ``Content-Type: image/*`` (or ``application/octet-stream``)
is one image; its options come from the query string.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .contract import Request
from .errors import BadRequest, InvalidImage, PayloadTooLarge, ServiceError, UnsupportedMediaType

SOURCE_FIELDS = ("url", "image", "urls", "images")
KNOWN_FIELDS = frozenset(SOURCE_FIELDS + ("top_k", "probabilities", "details"))
FLAGS = ("probabilities", "details")  # the options that are true or false


@dataclass(frozen=True)
class Source:
    kind: str  # "url", "bytes", or "error" (a batch item that failed validation)
    value: str | bytes | ServiceError  # the URL, the image bytes, or the item's error


@dataclass(frozen=True)
class PredictRequest:
    sources: tuple[Source, ...]
    batch: bool
    top_k: int | None = None
    probabilities: bool = False
    details: bool = False  # the answer with its verdict (model.py's ``Classifier.describe``), not the flat scores

    @property
    def input_kind(self) -> str:
        return next((s.kind for s in self.sources if s.kind != "error"), "none")


@dataclass(frozen=True)
class ParseRules:
    """The limits a request is parsed within: the service's settings, and the model's label count (``top_k``)."""

    max_batch: int
    max_image_bytes: int
    max_body_bytes: int
    # Asked only once a request's media type and size pass: it loads the model on first use, so a request the
    # service refuses on its face never waits for (or fails on) the model.
    label_count: Callable[[], int]


# binascii's strict mode (Python 3.11+) refuses anything but clean standard base64; older Pythons take the lenient
# path for every image.
STRICT = {"strict_mode": True} if sys.version_info >= (3, 11) else {}


def parse_request(request: Request, rules: ParseRules) -> PredictRequest:
    """A POST's body, or a direct invocation's JSON payload, as a validated PredictRequest (a ServiceError if not).
    Order matters: the media type first, then the body's size (before decoding anything), then the query's options
    (checked for every body, so a bad ``?top_k=`` is always a 400), then the body."""
    if request.direct:  # JSON with no HTTP around it: a direct invocation, the command line
        return from_payload(request.payload, rules)
    kind = media_type(request.content_type)
    check_media_type(kind)
    if max(len(request.body), request.declared_length or 0) > rules.max_body_bytes:
        raise PayloadTooLarge(f"the request body is larger than {rules.max_body_bytes} bytes")
    body = decode_base64_body(request.body) if request.base64_body else request.body
    options = options_from_query(request.query)
    if is_raw_image(kind):
        return from_raw_image(body, options, rules)
    return from_payload({**options, **parse_json_body(body)}, rules)


# The separators a JSON body may hold ('{', '[', ','), counted before parsing: a request is one object of a few
# fields and at most MAX_BATCH items, so thousands never come from a client, while 16 MiB of ``[{}, {}, ...]``
# would build millions of objects (~400 MB) before the batch limit could be checked. URLs with commas still fit.
MAX_JSON_SEPARATORS = 4096


def parse_json_body(body: bytes | str) -> dict[str, Any]:
    """Decode a JSON request body into an object, with a 400 for anything else."""
    if isinstance(body, str):
        separators = body.count("{") + body.count("[") + body.count(",")
    else:
        separators = body.count(b"{") + body.count(b"[") + body.count(b",")
    if separators > MAX_JSON_SEPARATORS:
        raise BadRequest(
            f"the JSON holds {separators} separators ('{{', '[', ','); a request has a few fields and at most "
            f"its batch limit of items, so more than {MAX_JSON_SEPARATORS} are refused before parsing"
        )
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the request body is not valid UTF-8") from None
    if not body or not body.strip():
        raise BadRequest('empty request body: send JSON like {"url": "https://..."}')
    try:
        payload = json.loads(body)
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest('the JSON must be an object, like {"url": "https://..."}')
    return payload


def from_payload(payload: object, rules: ParseRules) -> PredictRequest:
    """Validate a decoded JSON object."""
    num_labels = rules.label_count()
    if not isinstance(payload, dict):
        raise BadRequest('the request must be a JSON object, like {"url": "https://..."}')
    unknown = sorted(set(payload) - KNOWN_FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(map(str, unknown))[:200]}; known: {', '.join(sorted(KNOWN_FIELDS))}"
        )
    present = [name for name in SOURCE_FIELDS if name in payload]
    if len(present) != 1:
        raise BadRequest(
            "send exactly one of 'url', 'image', 'urls', 'images'" + (f" (got {', '.join(present)})" if present else "")
        )
    name = present[0]
    value = payload[name]
    batch = name in ("urls", "images")
    if batch:
        if not isinstance(value, list) or not value:
            raise BadRequest(f"'{name}' must be a non-empty list")
        if len(value) > rules.max_batch:
            raise BadRequest(f"'{name}' has {len(value)} items; the limit is {rules.max_batch}")
        values = value
    else:
        values = [value]
    options = _options(payload, num_labels)

    def parse(item: object) -> Source:
        if name in ("url", "urls"):
            return Source("url", _url(item, name))
        return Source("bytes", _base64(item, name, rules.max_image_bytes))

    if not batch:
        return PredictRequest((parse(value),), False, *options)
    return PredictRequest(tuple(_item(parse, v) for v in values), True, *options)


def _item(parse: Callable[[object], Source], value: object) -> Source:
    """One batch item; a bad one is answered in its place (the batch rule: docs/api.md)."""
    try:
        return parse(value)
    except ServiceError as error:
        return Source("error", error)


def from_raw_image(body: bytes, query_options: Mapping[str, Any], rules: ParseRules) -> PredictRequest:
    """A request whose body is the image file itself; its options come from the query string."""
    num_labels = rules.label_count()
    if not body:
        raise InvalidImage("the image is empty (0 bytes)")
    if len(body) > rules.max_image_bytes:
        raise PayloadTooLarge(f"the image is {len(body)} bytes; the limit is {rules.max_image_bytes}")
    return PredictRequest((Source("bytes", bytes(body)),), False, *_options(query_options, num_labels))


def options_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """``top_k`` / ``probabilities`` / ``details`` from a query string, typed; validated with the JSON fields'
    rules."""
    options: dict[str, Any] = {}
    if "top_k" in query:
        value = query["top_k"]
        # As strict as JSON's integers: ASCII digits only (int() would take "1_0", "+3", " 3" and other scripts).
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise BadRequest("'top_k' must be an integer")
        options["top_k"] = int(value)
    for name in FLAGS:
        if name in query:
            flag = str(query[name]).lower()
            if flag not in ("true", "false", "1", "0"):
                raise BadRequest(f"'{name}' must be true or false")
            options[name] = flag in ("true", "1")
    return options


def decode_base64_body(body: bytes) -> bytes:
    """A body the platform delivered base64-encoded (API Gateway's isBase64Encoded), decoded strictly."""
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "the request body is marked base64-encoded (isBase64Encoded) but is not valid base64"
        ) from None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_raw_image(kind: str) -> bool:
    return kind.startswith("image/") or kind == "application/octet-stream"


# Bodies read as JSON. curl's -d sends application/x-www-form-urlencoded unless told otherwise, so it is
# read as JSON too (a form-encoded body then fails as invalid JSON, with a clear message).
JSON_MEDIA_TYPES = frozenset(("", "application/json", "text/plain", "application/x-www-form-urlencoded"))


def check_media_type(kind: str) -> None:
    if kind not in JSON_MEDIA_TYPES and not is_raw_image(kind) and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type '{kind[:100]}' is not supported: send application/json or the image itself as image/*"
        )


def _options(payload: Mapping[str, Any], num_labels: int) -> tuple[int | None, bool, bool]:
    top_k = payload.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise BadRequest("'top_k' must be an integer")
        if not 1 <= top_k <= num_labels:
            raise BadRequest(f"'top_k' must be between 1 and {num_labels}")
    for name in FLAGS:
        if not isinstance(payload.get(name, False), bool):
            raise BadRequest(f"'{name}' must be true or false")
    return top_k, payload.get("probabilities", False), payload.get("details", False)


def _url(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{name}' must hold non-empty URL strings")
    if len(value) > 8192:
        raise BadRequest("the URL is too long (more than 8192 characters)")
    return value.strip()


def _lenient_base64(value: str, name: str) -> bytes:
    """Base64 as people paste it: wrapped lines, missing padding, or the URL-safe alphabet."""
    value = "".join(value.split())  # `base64 file.jpg` wraps lines
    padded = value + "=" * (-len(value) % 4)
    try:
        # Standard alphabet, else URL-safe; validate=True so stray characters are an error, not dropped.
        return base64.b64decode(padded, altchars=b"-_" if ("-" in value or "_" in value) else None, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"'{name}' is not valid base64") from None


def _base64(value: object, name: str, max_image_bytes: int) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must hold base64 strings of image files")
    if value.startswith("data:"):  # tolerate data URLs: data:image/png;base64,....
        value = value.split(",", 1)[-1]
    if not value.strip():  # as a raw body of 0 bytes: an image that is empty, not a malformed request
        raise InvalidImage("the image is empty (0 bytes)")
    if len(value) > (max_image_bytes + 2) // 3 * 4 + 64:
        raise PayloadTooLarge(f"the image is larger than {max_image_bytes} bytes")
    try:  # the usual case: clean, padded, standard base64, checked and decoded in one pass without a copy
        data = binascii.a2b_base64(value, **STRICT) if STRICT else _lenient_base64(value, name)
    except (binascii.Error, ValueError):
        data = _lenient_base64(value, name)
    if len(data) > max_image_bytes:
        raise PayloadTooLarge(f"the image is {len(data)} bytes; the limit is {max_image_bytes}")
    return data

"""The boundary between the platforms and the service: one ``Request`` in, one ``Response`` out.

Every adapter (AWS event shapes, functions-framework, Azure, the command line) builds a ``Request`` from what its
platform hands it and renders the ``Response`` back; reading one more header is a change here and in the
service, never in the adapters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest

JSON = "application/json"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


class _Fields(Mapping[str, str]):
    """Names given one or more values (a list, or the same name twice), as the platforms hand them over; reading a
    name that came with values the service cannot choose between raises a 400 (``_refuse``) rather than letting the
    platform's order decide."""

    fold_case = False

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            if not isinstance(name, str) or value is None:
                continue
            for one in value if isinstance(value, list) else [value]:
                if one is not None:
                    self._values.setdefault(self._key(name), []).append(str(one))

    def _key(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def _refuse(self, name: str, values: list[str]) -> str | None:
        raise NotImplementedError

    def __getitem__(self, name: str) -> str:
        values = self._values[self._key(name)]
        problem = self._refuse(self._key(name), values)
        if problem:
            raise BadRequest(problem)
        return values[-1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Headers(_Fields):
    """Request headers by case-insensitive name. A name given different values (``Content-Type`` and
    ``content-type`` keys, or a multi-value list) would let their order decide: reading it raises a 400."""

    fold_case = True

    def _refuse(self, name: str, values: list[str]) -> str | None:
        if len(set(values)) > 1:
            return f"the request has {len(values)} different '{name}' headers; send one"
        return None


class Query(_Fields):
    """Query parameters by name. A parameter given twice is refused (400) whatever its values, because the front
    doors disagree on which one wins (the first, the last, or both joined by a comma) and every door must give
    the same answer."""

    def _refuse(self, name: str, values: list[str]) -> str | None:
        if len(values) > 1:
            return f"the query string has {len(values)} '{name}' parameters; send one"
        return None


@dataclass(frozen=True)
class Request:
    """One request, whatever platform it came from: ``method``, ``headers``, ``query``, ``body``; or, when
    ``direct``, ``payload``: an already-decoded JSON request with no HTTP around it (a direct Lambda invocation,
    the command line; any JSON value, null included)."""

    method: str = "POST"
    headers: Headers = field(default_factory=Headers)
    query: Mapping[str, str] = field(default_factory=lambda: Query())
    body: bytes = b""
    direct: bool = False
    payload: Any = None
    request_id: str | None = None
    caller: str = "local"  # who called, for the log: aws, gcp, azure, cli, bulk, local
    front_door: str | None = None  # the platform's entrance (limits.py), for the usage JSON
    base64_body: bool = False  # the platform delivered the body base64-encoded (API Gateway's isBase64Encoded)
    declared_length: int | None = None  # the Content-Length, where the adapter left an oversized body unread

    @classmethod
    def invocation(cls, payload: Any, caller: str, request_id: str | None = None) -> Request:
        return cls(direct=True, payload=payload, caller=caller, request_id=request_id, front_door=None)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def accept(self) -> str | None:
        return self.headers.get("accept")


@dataclass
class Response:
    """``body`` is the answer's value: a JSON value, the page's HTML, or None (no body); ``media_type`` says which,
    and ``body_text`` renders it."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = JSON

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, value, {"Content-Type": JSON, **NOSNIFF, **(headers or {})}, JSON)

    @classmethod
    def html(cls, text: str, headers: Mapping[str, str]) -> Response:
        return cls(200, text, dict(headers), "text/html")

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, None, dict(headers or {}), None)

    def body_text(self) -> str:
        """The body as sent: "" for none, the page's HTML as it is, JSON for a JSON value."""
        if self.media_type == JSON:
            return json.dumps(self.body)
        return "" if self.body is None else str(self.body)

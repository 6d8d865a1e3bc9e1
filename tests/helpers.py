"""Requests for the service as the adapters build them (core/http.py), for tests that call it directly."""

from __future__ import annotations

from typing import Any

from core.http import Headers, Request


def http(
    method: str,
    body: bytes | str = b"",
    content_type: str | None = None,
    query: dict[str, str] | None = None,
    accept: str | None = None,
    **fields: Any,
) -> Request:
    headers = {name: value for name, value in (("Content-Type", content_type), ("Accept", accept)) if value}
    return Request(
        method=method,
        headers=Headers(headers),
        query=query or {},
        body=body.encode() if isinstance(body, str) else body,
        **fields,
    )


def invocation(payload: Any) -> Request:
    return Request.invocation(payload, caller="test")

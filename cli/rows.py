"""One output row of the bulk command per image: what it holds, and how an answer becomes one."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]  # one output row: FIELDS
FIELDS = ("path", "label", "score", "top_k", "error")


def error_row(item: str, message: str) -> Row:
    return {"path": item, "label": "", "score": "", "top_k": [], "error": message[:500]}


def is_scores(body: object) -> bool:
    """The API's answer for one image: {label: number}, at least one."""
    return (
        isinstance(body, dict)
        and bool(body)
        and all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in body.items())
    )


def row_for(item: str, status: int, body: Any) -> Row:
    if status == 200 and is_scores(body):
        best = next(iter(body.items()))
        return {
            "path": item,
            "label": best[0],
            "score": round(float(best[1]), 6),
            "top_k": [[label, round(float(score), 6)] for label, score in body.items()],
            "error": "",
        }
    if status == 200:  # a gateway's page, another service, a truncated answer: never a crash
        return error_row(item, f"endpoint_error: HTTP 200 without label scores: {str(body)[:200]}")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = f"{error.get('type', 'http_' + str(status))}: {error.get('message', body)}"
    if isinstance(error.get("request_id"), str):  # "quote the request id": the row carries it
        message += f" (request id {error['request_id']})"
    return error_row(item, message)

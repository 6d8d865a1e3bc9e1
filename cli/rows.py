"""One output row of the bulk command per image: what it holds, and how an answer becomes one."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

Row = dict[str, Any]  # one output row: FIELDS
FIELDS = ("path", "label", "score", "top_k", "verdict", "clothing_distance", "error")
# The rows of a run before the verdict existed: read back on resume, their verdict and distance unknown (None).
OLD_FIELDS = ("path", "label", "score", "top_k", "error")
# The service's verdicts (core/novelty.py's VERDICTS, restated: importing it loads numpy, which the endpoint client
# never needs), in the order the summary counts them.
VERDICTS = ("clothing", "not_sure", "not_clothing")
MAX_VERDICT = 100  # characters: a verdict is a word; an endpoint's longer text is cut, never a huge cell


def error_row(item: str, message: str) -> Row:
    return {
        "path": item,
        "label": "",
        "score": "",
        "top_k": [],
        "verdict": None,
        "clothing_distance": None,
        "error": message[:500],
    }


def is_scores(body: object) -> bool:
    """The API's answer for one image: {label: number}, at least one."""
    return (
        isinstance(body, dict)
        and bool(body)
        and all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in body.items())
    )


def is_distance(value: object) -> TypeGuard[float]:
    """A clothing_distance as a row keeps it: a finite number (JSON Lines cannot hold NaN or infinity; an integer
    of hundreds of digits from a hostile endpoint is no distance either)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def scores_of(body: object) -> tuple[Any, str | None, float | None]:
    """(scores, verdict, clothing_distance) of an answer. The details answer ({"scores": ..., "verdict": ...})
    carries them; a flat {label: score} (a deployment that predates details, a stand-in) has neither, and so does a
    details answer from a model whose manifest lacks the statistics. A verdict or a distance of the wrong type is
    left out rather than trusted into a cell."""
    if not (isinstance(body, dict) and "scores" in body):
        return body, None, None
    verdict, distance = body.get("verdict"), body.get("clothing_distance")
    return (
        body["scores"],
        verdict[:MAX_VERDICT] if isinstance(verdict, str) and verdict else None,
        round(float(distance), 4) if is_distance(distance) else None,
    )


def row_for(item: str, status: int, body: Any) -> Row:
    scores, verdict, distance = scores_of(body)
    if status == 200 and is_scores(scores):
        best = next(iter(scores.items()))
        return {
            "path": item,
            "label": best[0],
            "score": round(float(best[1]), 6),
            "top_k": [[label, round(float(score), 6)] for label, score in scores.items()],
            "verdict": verdict,
            "clothing_distance": distance,
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

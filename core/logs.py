"""The request's one JSON log line, and where it goes.

One line per request, whatever the answer, with the fields an operator filters on (status, error type, input kind,
cold start, per-step milliseconds); metrics.py turns the same record into CloudWatch's EMF.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from .contract import Request, Response
from .trace import Trace

log = logging.getLogger("core")


def log_request(
    request_id: str, request: Request, trace: Trace, response: Response, cold: bool, started: float
) -> dict[str, Any]:
    """Write the request's log line; the record is returned, for the metrics."""
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
    # Every image's verdict, asked for or not: a rising "not_clothing" rate means the traffic changed.
    if trace.verdicts:
        record["verdicts"], record["clothing_distance"] = trace.verdicts, trace.clothing_distance
    if response.status >= 400:
        record["error"] = response.body["error"]["type"]
    # Lambda's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON) nests a dict message as an object in its own JSON
    # line; a string would arrive there as one escaped string. Everywhere else the line is the JSON text.
    log.log(level, record if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON" else json.dumps(record))
    return record


def log_event(event: str, **fields: Any) -> None:
    """An INFO line about something other than a request (a restore, a skipped object), in the same JSON form."""
    log.info(json.dumps({"severity": "INFO", "event": event, **fields}))


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

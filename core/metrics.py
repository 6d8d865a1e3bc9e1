"""Metrics on AWS without an API call: one CloudWatch Embedded Metric Format (EMF) record per request, a JSON line
that CloudWatch Logs turns into metrics as it ingests the function's log.

Written straight to stdout, not through ``logging``: Lambda's Python runtime formats log records (a
``[INFO]\\t<time>\\t<request id>\\t`` prefix in its text format, the message as a string inside its own JSON object
in its JSON format), and either would hide the record from CloudWatch; a line on stdout reaches the log as it is
in both. Chosen over the official ``aws-embedded-metrics`` (+178 ms import, aiohttp, +3.5 MB zipped) and
Powertools' metrics (+41 ms, +1.3 MB) by the numbers: these few lines cost nothing (docs/observability.md).

One dimension, the function, and few metrics, so that CloudWatch bills a handful of custom metrics; what is
not worth a metric (the status, the request id) rides along as a property, searchable in Logs Insights.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

NAMESPACE = "ServerlessClassifier"
# log line's "ms" step -> metric name (milliseconds)
STAGES = {"fetch": "FetchTime", "decode": "DecodeTime", "preprocess": "PreprocessTime", "inference": "InferenceTime"}
# verdict (novelty.py) -> metric counting the images that got it; NotClothing's share of the three is the drift
# alarm (docs/observability.md)
VERDICT_METRICS = {"clothing": "Clothing", "not_sure": "NotSure", "not_clothing": "NotClothing"}
_write_lock = threading.Lock()


def emf_record(log_record: dict[str, Any], function: str | None = None) -> dict[str, Any]:
    """The EMF record for one request, from its log line (``logs.log_request``)."""
    status = int(log_record["status"])
    values: dict[str, tuple[float, str]] = {
        "Latency": (log_record["total_ms"], "Milliseconds"),
        "Requests": (1, "Count"),
        "Images": (log_record["items"], "Count"),
        "ClientErrors": (int(400 <= status < 500), "Count"),
        "ServerErrors": (int(status >= 500), "Count"),
        "ColdStart": (int(bool(log_record["cold_start"])), "Count"),
    }
    verdicts = log_record.get("verdicts", {})
    if verdicts:
        values.update({metric: (verdicts.get(v, 0), "Count") for v, metric in VERDICT_METRICS.items()})
    for step, ms in log_record["ms"].items():
        if step in STAGES:
            values[STAGES[step]] = (ms, "Milliseconds")
    record: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        "Function": function or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        "status": status,
        "request_id": log_record["request_id"],
    }
    record.update({name: value for name, (value, _) in values.items()})
    return record


def write_emf(record: dict[str, Any]) -> None:
    """One line on stdout, whole (threads never interleave their lines)."""
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()

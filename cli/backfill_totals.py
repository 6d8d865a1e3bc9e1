"""The end of a backfill, whatever cloud ran it: the workers' tallies (core/backfill.py's ``Tally.as_dict()``)
added up, shown as a few lines (or one JSON object), with an estimate of what the run cost at list prices."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Seconds of one photo's work on Lambda's 1,024 MB when the run gives no measured durations: four S3 round trips
# (GET result, GET photo, HEAD, PUT result: about 20 ms each in-region) and a full-size phone photo's decode and
# inference at 1,024 MB's CPU share (about 60 ms), rounded up. A photo skipped costs one small GET of its result.
ASSUMED_SECONDS_PER_PHOTO = 0.15
ASSUMED_SECONDS_PER_SKIP = 0.01


@dataclass
class Totals:
    """Every worker's tally, added up."""

    classified: int = 0
    skipped: int = 0
    ignored: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # a key, or a batch/task, -> why
    labels: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    workers: int = 0  # tallies read (Step Functions child executions, Cloud Run tasks, Azure shards)
    worker_seconds: float = 0.0  # their summed running time, where the engine reports it
    notes: list[str] = field(default_factory=list)  # what the summary could not read, and why

    def add(self, tally: dict[str, Any], seconds: float | None = None) -> None:
        """One worker's tally; a malformed one is a note, not a crash (the run itself is done by then)."""
        if not isinstance(tally, dict) or "classified" not in tally:
            self.notes.append(f"a worker's output is not a tally: {json.dumps(tally)[:200]}")
            return
        self.workers += 1
        self.classified += int(tally.get("classified", 0))
        self.skipped += int(tally.get("skipped", 0))
        self.ignored += int(tally.get("ignored", 0))
        failed = tally.get("failed") or {}
        self.failed.update({str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {})
        self.labels.update({str(k): int(v) for k, v in (tally.get("labels") or {}).items()})
        self.verdicts.update({str(k): int(v) for k, v in (tally.get("verdicts") or {}).items()})
        self.errors.update({str(k): int(v) for k, v in (tally.get("errors") or {}).items()})
        if seconds is not None:
            self.worker_seconds += seconds

    @property
    def photos(self) -> int:
        return self.classified + self.skipped + len(self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "classified": self.classified,
            "skipped": self.skipped,
            "ignored": self.ignored,
            "failed": self.failed,
            "labels": dict(self.labels.most_common()),
            "verdicts": dict(self.verdicts.most_common()),
            "errors": dict(self.errors),
            "workers": self.workers,
            "notes": self.notes,
        }


def show(totals: Totals, status: str, seconds: float, cost: dict[str, Any], as_json: bool) -> None:
    """The summary on stderr: lines for a person, or with ``as_json`` one JSON object for a script."""
    if as_json:
        summary = {"status": status, "seconds": round(seconds, 1), **totals.as_dict(), "cost_estimate": cost}
        print(json.dumps(summary, indent=2), file=sys.stderr)
        return
    print("\n".join(lines(totals, status, seconds, cost)), file=sys.stderr)


def lines(totals: Totals, status: str, seconds: float, cost: dict[str, Any]) -> list[str]:
    out = [
        f"{status} in {seconds:.0f} s: {totals.classified} classified, {totals.skipped} skipped (answered already for "
        f"this model), {len(totals.failed)} failed, {totals.ignored} ignored (not photos to classify)"
    ]
    if totals.labels:
        out.append("labels: " + ", ".join(f"{label} {n}" for label, n in totals.labels.most_common()))
    if totals.verdicts:
        out.append("verdicts: " + ", ".join(f"{verdict} {n}" for verdict, n in totals.verdicts.most_common()))
    if totals.errors:
        out.append("photos answered with an error: " + ", ".join(f"{k} {n}" for k, n in totals.errors.most_common()))
    for key, why in list(totals.failed.items())[:10]:
        out.append(f"failed: {key}: {why}")
    if len(totals.failed) > 10:
        out.append(f"... {len(totals.failed) - 10} more failures (--summary-json lists them all)")
    out.extend(f"note: {note}" for note in totals.notes)
    if cost:
        items = ", ".join(f"{name} ${value:.4f}" for name, value in cost["items"].items())
        out.append(f"cost estimate: ${cost['total']:.4f} ({items}); {cost['basis']}")
    return out


def _photo_seconds(totals: Totals, memory_gb: float) -> tuple[float, str]:
    """The run's compute seconds: measured where the engine gave durations, else the assumed time per photo."""
    if totals.worker_seconds > 0:
        return totals.worker_seconds, "measured durations"
    assumed = totals.classified * ASSUMED_SECONDS_PER_PHOTO + totals.skipped * ASSUMED_SECONDS_PER_SKIP
    return assumed, f"an assumed {ASSUMED_SECONDS_PER_PHOTO} s per photo at {memory_gb:g} GB"


# us-east-1 list prices (Lambda's as docs/performance.md records them; the others 2025 list prices), not fetched
# live: estimates, not a bill; the free tiers are left out.
AWS_PRICES = {
    "state_transition": 0.025 / 1000,  # Step Functions Standard, the parent run
    "express_request": 1.00 / 1_000_000,  # each child execution of the Distributed Map (EXPRESS)
    "express_gb_second": 0.00001667,  # child duration, billed at 64 MB
    "lambda_gb_second": 0.0000166667,  # x86_64 (arm64: 0.0000133334)
    "lambda_request": 0.20 / 1_000_000,
    "s3_get": 0.0004 / 1000,  # GET and HEAD
    "s3_put": 0.005 / 1000,  # PUT and LIST
}


def aws_cost(totals: Totals, children: int, memory_gb: float = 1.0) -> dict[str, Any]:
    """Step Functions, Lambda and S3 for this run. Per photo: a GET of its result (answered already?), and for
    each one classified a GET and a HEAD of the photo and a PUT of its result; a LIST per 1,000 keys."""
    p = AWS_PRICES
    seconds, basis = _photo_seconds(totals, memory_gb)
    listed = totals.photos + totals.ignored
    items = {
        "step functions": (children + 3) * p["state_transition"]
        + children * p["express_request"]
        + seconds * 0.0625 * p["express_gb_second"],
        "lambda": seconds * memory_gb * p["lambda_gb_second"] + children * p["lambda_request"],
        "s3 requests": (totals.photos + 2 * totals.classified) * p["s3_get"]
        + (totals.classified + listed / 1000) * p["s3_put"],
    }
    return _priced(items, f"us-east-1 list prices, {basis}; an estimate, not a bill")


# Google Cloud (Tier 1 regions, e.g. us-central1) and Azure (East US) 2025 list prices, not fetched live: estimates.
GCP_PRICES = {"vcpu_second": 0.000018, "gib_second": 0.000002, "class_a": 0.005 / 1000, "class_b": 0.0004 / 1000}
AZURE_PRICES = {"vcpu_second": 0.000024, "gib_second": 0.000003, "write": 0.065 / 10_000, "read": 0.005 / 10_000}


def job_cost(cloud: str, totals: Totals, vcpus: float = 1.0, gib: float = 2.0) -> dict[str, Any]:
    """A Cloud Run job's or a Container Apps job's compute and storage requests for this run."""
    seconds, basis = _photo_seconds(totals, gib)
    reads = totals.photos + 2 * totals.classified
    writes = totals.classified + totals.workers + (totals.photos + totals.ignored) / 1000
    if cloud == "gcp":
        p = GCP_PRICES
        items = {
            "cloud run": seconds * (vcpus * p["vcpu_second"] + gib * p["gib_second"]),
            "storage requests": reads * p["class_b"] + writes * p["class_a"],
        }
        where = "Google Cloud Tier 1 list prices"
    else:
        p = AZURE_PRICES
        items = {
            "container apps": seconds * (vcpus * p["vcpu_second"] + gib * p["gib_second"]),
            "storage requests": reads * p["read"] + writes * p["write"],
        }
        where = "Azure East US list prices"
    return _priced(items, f"{where}, {vcpus:g} vCPU and {gib:g} GiB per task, {basis}; an estimate, not a bill")


def _priced(items: dict[str, float], basis: str) -> dict[str, Any]:
    return {"items": {k: round(v, 6) for k, v in items.items()}, "total": round(sum(items.values()), 6), "basis": basis}

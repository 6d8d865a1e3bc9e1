"""Benchmark 6: Lambda cost per million predictions, from measured warm latency and configured memory.

Prices: AWS Lambda, us-east-1, first pricing tier, as published on the AWS Lambda pricing page
(https://aws.amazon.com/lambda/pricing/): x86_64 $0.0000166667 and arm64 $0.0000133334 per GB-second,
$0.20 per million requests. Recorded 2026-11-24 from the published rates (not fetched live: this machine has
no internet access); they have been unchanged since arm64 launched in 2021.

Lambda gives a function CPU in proportion to its memory (one full vCPU at 1,769 MB), and this workload is
CPU-bound, so the local one-thread latency is scaled by max(1, 1769 / MB) for smaller sizes. Billing rounds
each invocation up to the next millisecond. arm64 is assumed to run as fast as x86_64 (not measured here).

The front door adds its own per-request price (us-east-1, first tier, same date and pages: Amazon API Gateway
pricing, AWS Lambda pricing): REST API $3.50 per million, HTTP API $1.00 per million (metered in 512 KB steps:
a request carrying a 1 MB base64 photo counts twice), a Lambda Function URL nothing beyond Lambda's own
prices. Data transfer out is the same for all three and left out.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from bench.common import RESULTS, publish

PRICE_GB_S = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_REQUEST = 0.20 / 1e6
FRONT_DOORS = {"REST API (default)": 3.50, "HTTP API": 1.00, "Function URL": 0.0}  # USD per million requests
PRICES_DATE = "2026-11-24"
FULL_VCPU_MB = 1769
MEMORY_SIZES = (512, 1024, 1769, 2048)


def lambda_ms(local_ms: float, memory_mb: int) -> float:
    """Local one-thread latency -> Lambda latency at this memory size (CPU share scales with memory)."""
    return local_ms * max(1.0, FULL_VCPU_MB / memory_mb)


def cost_per_million(duration_ms: float, memory_mb: int, arch: str) -> float:
    billed_s = math.ceil(duration_ms) / 1000  # billed per started millisecond
    return 1e6 * (billed_s * memory_mb / 1024 * PRICE_GB_S[arch] + PRICE_REQUEST)


def run(smoke: bool = False) -> dict:
    latency = json.loads((RESULTS / "latency.json").read_text())
    base = next(
        r
        for r in latency["rows"]
        if r["stack"] == "this project" and r["model"] == "default int8" and r["photo"] == "0.2MP" and r["threads"] == 1
    )
    local_ms = base["ms"]["end_to_end"]["median"]
    rows: list[dict[str, Any]] = []
    for arch in PRICE_GB_S:
        for mb in MEMORY_SIZES:
            duration = lambda_ms(local_ms, mb)
            rows.append(
                {
                    "arch": arch,
                    "memory_mb": mb,
                    "estimated_ms": round(duration, 2),
                    "usd_per_million": round(cost_per_million(duration, mb, arch), 3),
                }
            )
    book_cost = cost_per_million(2000, 1024, "x86_64")  # the book's ~2 s per request on Lambda at 1024 MB
    best = min(rows, key=lambda r: r["usd_per_million"])
    deployed = next(r for r in rows if r["arch"] == "x86_64" and r["memory_mb"] == 1024)  # serverless.yml's
    front_doors = [
        {
            "front_door": name,
            "gateway_usd_per_million": price,
            "lambda_usd_per_million": deployed["usd_per_million"],
            "total_usd_per_million": round(price + deployed["usd_per_million"], 3),
        }
        for name, price in FRONT_DOORS.items()
    ]
    result = {
        "local_end_to_end_ms": local_ms,
        "prices": {
            "per_gb_s": PRICE_GB_S,
            "per_request": PRICE_REQUEST,
            "front_doors_per_million": FRONT_DOORS,
            "date": PRICES_DATE,
            "region": "us-east-1",
        },
        "rows": rows,
        "front_doors_at_1024mb_x86_64": front_doors,
        "book_2s_at_1024mb_usd_per_million": round(book_cost, 2),
        "cheapest": best,
    }
    return publish(
        "cost",
        result,
        "Lambda cost per million predictions, default model",
        [f"{r['arch']} {r['memory_mb']} MB" for r in rows],
        [r["usd_per_million"] for r in rows],
        "USD",
    )


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv), indent=2))

"""Run the benchmarks: ``python -m bench.run [--smoke] [NAME...]``; the names, in order: latency coldstart size
memory server_memory bulk cost quantization phone_photos phone_speed backfill novelty.

Results go to bench/results/<name>.json and .png; docs/performance.md discusses them. ``--smoke`` runs tiny counts
(CI runs it so the benchmarks cannot rot); it asserts nothing about timings.
"""

from __future__ import annotations

import importlib
import sys
import time

from bench.common import RESULTS

ORDER = (
    "latency",
    "coldstart",
    "size",
    "memory",
    "server_memory",
    "bulk",
    "cost",
    "quantization",
    "phone_photos",
    "phone_speed",
    "backfill",
    "novelty",
)  # cost reads latency's results


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    smoke = "--smoke" in argv
    names = [a for a in argv if not a.startswith("--")] or list(ORDER)
    for name in names:
        started = time.perf_counter()
        if importlib.import_module(f"bench.{name}").run(smoke=smoke) is not None:  # None: skipped, said why
            print(f"{name}: done in {time.perf_counter() - started:.0f}s -> {RESULTS / (name + '.json')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared benchmark plumbing: statistics, machine/version info, results files, a loopback image server."""

from __future__ import annotations

import http.server
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from lab.labels import CLOTHING_LABELS

ROOT = Path(__file__).resolve().parent.parent
# BENCH_RESULTS redirects results (the smoke run writes there, leaving the committed results alone).
RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results"))
WORK = ROOT / "bench" / "results" / "tmp"  # generated models and photos; not committed
DATA = ROOT.parent / "shared" / "data" / "clothing-dataset-small"
VENV_PY = ROOT / ".venv" / "bin" / "python"
LEGACY_PY = ROOT / ".venv-tflite" / "bin" / "python"
LABELS = list(CLOTHING_LABELS)


def summarize(samples_ms) -> dict:
    samples = sorted(samples_ms)
    q = (
        statistics.quantiles(samples, n=4)
        if len(samples) >= 4
        else [samples[0], statistics.median(samples), samples[-1]]
    )
    return {
        "median": round(statistics.median(samples), 3),
        "p25": round(q[0], 3),
        "p75": round(q[-1], 3),
        "min": round(samples[0], 3),
        "max": round(samples[-1], 3),
        "runs": len(samples),
    }


def machine() -> dict:
    def version(module):
        try:
            out = subprocess.run(
                [str(VENV_PY), "-c", f"import importlib.metadata as m; print(m.version('{module}'))"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            return out.stdout.strip() or None
        except OSError:
            return None

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "ai_edge_litert": version("ai-edge-litert"),
        "numpy": version("numpy"),
        "pillow": version("pillow"),
        "date": time.strftime("%Y-%m-%d"),
    }


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    return path


def publish(name: str, result: dict, title: str, labels, values, unit: str) -> dict:
    """Write ``<name>.json`` (with the machine) and a bar chart ``<name>.png`` of the headline numbers."""
    save(name, result)
    chart(RESULTS / f"{name}.png", title, labels, values, unit)
    return result


def run_json(python: Path, script: str, *args, env=None, timeout=900) -> dict:
    """Run a bench worker script in another interpreter and parse the JSON it prints last. The repository's root is
    on its path (a script's own folder is, not the root): workers import ``bench`` and ``core`` from it."""
    proc = subprocess.run(
        [str(python), str(ROOT / "bench" / script), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class ImageServer:
    """Serves files from a folder on 127.0.0.1 (the fetch stage of every benchmark is loopback only).

    HTTP/1.1 with keep-alive, as image hosts (S3, CDNs) answer.
    """

    def __init__(self, folder: Path):
        folder = Path(folder)

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real image hosts do; else each kept-alive answer waits ~40 ms

            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(folder), **kw)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def chart(path: Path, title: str, labels, values, unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5))
    ax.barh(labels, values, color="#4878a8")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3g}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    print(json.dumps(machine()))
    sys.exit(0)

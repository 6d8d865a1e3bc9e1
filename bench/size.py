"""Benchmark 4: deployment size of the `serverless package` zip, zipped and unzipped, x86_64 and arm64,
against Lambda's limits (50 MB zipped for direct upload, 250 MB unzipped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

from bench.common import ROOT, VENV_PY, WORK, publish

SLS = ROOT / "node_modules" / ".bin" / "serverless"
ZIP_LIMIT, UNZIPPED_LIMIT = 50 * 1024 * 1024, 250 * 1024 * 1024


def package(arch: str) -> Path:
    out = WORK / f"package-{arch}"
    env = {**os.environ, "PYTHON_BIN": str(VENV_PY), "SLS_TELEMETRY_DISABLED": "1"}
    proc = subprocess.run(
        [str(SLS), "package", "--package", str(out), f"--param=arch={arch}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return out


def smoke_package() -> Path:
    """The default (x86_64) package as the test suite keeps it, under a digest of everything `serverless package`
    reads: the smoke run checks this benchmark's code, and `make test` runs it after the suite has paid the ~60 s
    of CPU the package costs. Built here, the same way, when the suite has not."""
    from tests.adapters.aws.sls_packages import packages

    return packages(str(SLS), ("rest",))["rest"]


def measure(arch: str, out: Path) -> dict:
    path = out / "clothing-classifier.zip"
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    by_top: Counter[str] = Counter()
    for info in infos:
        by_top[info.filename.split("/")[0]] += info.compress_size
    unzipped = sum(i.file_size for i in infos)
    return {
        "arch": arch,
        "zipped_mb": round(path.stat().st_size / 1e6, 2),
        "unzipped_mb": round(unzipped / 1e6, 2),
        "zipped_fits": path.stat().st_size < ZIP_LIMIT,
        "unzipped_fits": unzipped < UNZIPPED_LIMIT,
        "largest_zipped_mb": {k: round(v / 1e6, 2) for k, v in by_top.most_common(6)},
    }


def run(smoke: bool = False) -> dict:
    if smoke:
        rows = [measure("x86_64", smoke_package())]
    else:
        rows = [measure(arch, package(arch)) for arch in ("x86_64", "arm64")]
    result = {"rows": rows, "limits_mb": {"zipped": 52.4, "unzipped": 262.1}}
    return publish(
        "size",
        result,
        "Lambda zip size (limits: 50 MiB zipped, 250 MiB unzipped)",
        [f"{r['arch']} {k}" for r in rows for k in ("zipped", "unzipped")],
        [r[f"{k}_mb"] for r in rows for k in ("zipped", "unzipped")],
        "MB",
    )


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv)["rows"], indent=2))

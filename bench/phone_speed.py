"""Phone-size photos, end to end: this project's Lambda handler vs the book's stack, paired on one machine.

Photos: the dataset photo (0.2 MP, 400x533, as it is) and 3 and 12 MP versions of it, Lanczos-upscaled (aspect kept,
JPEG quality 90): upscaled proxies, with a phone photo's pixel count (its decode cost) but no finer detail, so they
compress better than a real one. And "12MP-page": the 12 MP photo as the page sends it (Lanczos to a 1,024-pixel long
side, JPEG quality 85), to tell whether an API client gains by doing the same.

1. Latency: warm direct invocations ``{"url": ...}`` from a loopback server of ``handlers.aws.lambda_handler`` (int8
   default model), by default and with ``JPEG_EXACT=1`` (every JPEG decoded at full size, pixels as Keras'), and of
   bench/book_handler.py (float32 model, 192x192, .venv-tflite). Each stack is one persistent worker process taking
   orders on stdin: loaded once, warm across rounds and sizes. Paired: per size, R rounds of N requests of each stack
   (order reversed every other round); per stack the median over the rounds' medians, and book/ours as the ratio of
   those and as the median of each round's own ratio. Our stage split is the service's own trace of those requests.
2. Memory: per size and stack a fresh process loads the model, reads VmHWM, classifies the photo once (ours:
   ``service.handle`` with it in base64; the book's: ``preprocessor.from_path`` + invoke) and reads VmHWM again. Ours
   includes the base64 string and its decoded bytes (~2.3x the file), as any JSON request does: nothing subtracted.
3. Formats: decode + preprocess (the service's own functions, median of 7) of the 12 MP photo as JPEG (scaled, and
   exact), PNG and WebP (quality 90): the formats that cannot be decoded at reduced scale, bounded by pixel count.
4. Base64: each photo's base64 decoded by the request parser's strict one-pass path and by its lenient path (wrapped
   lines, URL-safe alphabet, missing padding), which a clean string skips: median of 50.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import models
from bench.common import DATA, LEGACY_PY, ROOT, VENV_PY, WORK, ImageServer, publish, summarize

PHONE_MEGAPIXELS = {"3MP": 3.0, "12MP": 12.0}
OURS = {"ours-default": {}, "ours-exact": {"JPEG_EXACT": "1"}}  # the environment each of our workers adds


def photos() -> dict[str, Path]:
    """The 0.2 MP photo, its upscaled 3 and 12 MP proxies and the 12 MP one as the page sends it, made as
    lab.phone_sizes makes them (once, into bench/results/tmp)."""
    from lab.phone_sizes import enlarged, page_upload

    source = models.photos()["0.2MP"]
    out = {"0.2MP": source}
    for name, megapixels in PHONE_MEGAPIXELS.items():
        out[name] = _cached(
            WORK / f"phone-{name.lower()}-lanczos.jpg", lambda m=megapixels: enlarged(source.read_bytes(), m)
        )
    out["12MP-page"] = _cached(WORK / "phone-12mp-page.jpg", lambda: page_upload(out["12MP"].read_bytes()))
    return out


def _cached(path: Path, make: Any) -> Path:
    if not path.exists():
        path.with_suffix(".part").write_bytes(make())
        path.with_suffix(".part").replace(path)  # never a half-written cache
    return path


def formats_ms(twelve: Path) -> dict[str, float]:
    """Decode + preprocess of the 12 MP photo in each format, as the service prepares it (Classifier.prepare)."""
    import io

    from PIL import Image

    from core.model import Classifier, DecodeRules
    from core.settings import JPEG_EXACT_MAX_PIXELS

    clf = Classifier(models.DEFAULT_INT8).load()
    input_size = clf.loaded_manifest().input_size
    served = DecodeRules.for_input(input_size, 10**8, JPEG_EXACT_MAX_PIXELS)  # the service's defaults
    exact = DecodeRules.for_input(input_size, 10**8, JPEG_EXACT_MAX_PIXELS, exact=True)
    files = {"JPEG": twelve.read_bytes()}
    with Image.open(twelve) as img:
        for fmt in ("PNG", "WEBP"):
            out = io.BytesIO()
            img.save(out, fmt, quality=90)
            files[fmt] = out.getvalue()
    cases = {
        "jpeg_scaled": (files["JPEG"], served),
        "jpeg_exact": (files["JPEG"], exact),
        "png": (files["PNG"], served),
        "webp": (files["WEBP"], served),
    }
    result = {}
    for name, (data, rules) in cases.items():
        times = []
        for _ in range(7):
            started = time.perf_counter()
            clf.prepare(data, rules)
            times.append((time.perf_counter() - started) * 1000)
        result[name] = round(statistics.median(times), 2)
    return result


def base64_ms(photo_paths: dict[str, Path]) -> list:
    """The strict and the lenient base64 path on each photo (core/request.py), median ms of 50."""
    from core.request import _base64, _lenient_base64

    rows = []
    for photo, path in photo_paths.items():
        text = base64.b64encode(path.read_bytes()).decode()
        row: dict[str, Any] = {"photo": photo, "base64_chars": len(text)}
        paths = (("strict", lambda t: _base64(t, "image", 10**9)), ("lenient", lambda t: _lenient_base64(t, "image")))
        for name, decode in paths:
            times = []
            for _ in range(50):
                started = time.perf_counter()
                decode(text)
                times.append((time.perf_counter() - started) * 1000)
            row[f"{name}_ms"] = round(statistics.median(times), 3)
        rows.append(row)
    return rows


def _vmhwm_mb() -> float:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would include the parent's size.
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


# -- the worker side: `python -m bench.phone_speed serve|memory ours|book [PHOTO]` ------------------------------------
def _ours() -> tuple[Any, dict]:
    """Our handler, and the dict its last request's log record lands in (the service's own stage times)."""
    import core.service
    from handlers.aws import lambda_handler

    last: dict = {}
    log_request = core.service.log_request

    def keep(*args, **kwargs):
        last.update(record := log_request(*args, **kwargs))
        return record

    core.service.log_request = keep  # the service times every stage; the benchmark reads its record
    core.service.get_service().classifier.load()
    return lambda_handler, last


def serve(stack: str) -> None:
    """Per stdin line ``URL N``: N timed requests, answered with one JSON line of samples."""
    last: dict = {}  # the book's handler leaves no record
    if stack == "book":
        from bench.book_handler import lambda_handler as handler  # loads the model (BOOK_MODEL, BOOK_SIZE)
    else:
        handler, last = _ours()
    for line in sys.stdin:
        url, n = line.split()
        samples: dict[str, list[float]] = defaultdict(list)
        for _ in range(int(n)):
            started = time.perf_counter()
            answer = handler({"url": url}, None)
            samples["end_to_end"].append((time.perf_counter() - started) * 1000)
            assert "error" not in answer, answer
            for step, ms in last.get("ms", {}).items():
                samples[step].append(ms)
        print(json.dumps({"ms": samples, "decoded_size": last.get("image_size")}), flush=True)


def memory_worker(stack: str, photo: str) -> None:
    if stack == "book":
        from bench import book_handler as book  # loads the model (BOOK_MODEL, BOOK_SIZE)

        before = _vmhwm_mb()
        book.interpreter.set_tensor(book.input_index, book.preprocessor.from_path(photo))
        book.interpreter.invoke()
        book.interpreter.get_tensor(book.output_index)
    else:
        from core.contract import Request
        from core.service import get_service

        service = get_service()
        service.classifier.load()
        before = _vmhwm_mb()
        payload = {"image": base64.b64encode(Path(photo).read_bytes()).decode()}
        response = service.handle(Request.invocation(payload, caller="bench"))
        assert response.status == 200, response.body
    print(json.dumps({"after_load_mb": round(before, 1), "peak_mb": round(_vmhwm_mb(), 1)}))


# -- the parent side ------------------------------------------------------------------------------------------------
def _stacks() -> dict[str, tuple[Path, dict]]:
    """name -> (interpreter, environment) of the three stacks."""
    from core.manifest import load_manifest

    ours = {"MODEL_MANIFEST": str(models.DEFAULT_INT8), "FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "LOG_LEVEL": "WARNING"}
    manifest = models.default_float32()
    book = {"BOOK_MODEL": str(load_manifest(manifest).model_path), "BOOK_SIZE": str(models.input_size(manifest))}
    return {**{name: (VENV_PY, {**ours, **extra}) for name, extra in OURS.items()}, "book": (LEGACY_PY, book)}


def _command(python: Path, env: dict, *args: str) -> dict[str, Any]:
    """Popen/run arguments for ``python -m bench.phone_speed ARGS`` as stack (ours or book) with ``env`` added."""
    # A JPEG_* variable of the caller's shell would turn "default" into something else: only ours are set.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JPEG_", "MODEL_", "BOOK_"))}
    stack = "book" if "BOOK_MODEL" in env else "ours"
    argv = [str(python), "-m", "bench.phone_speed", args[0], stack, *args[1:]]
    return {"args": argv, "cwd": ROOT, "env": {**base, "PYTHONPATH": str(ROOT), **env}, "text": True}


class Worker:
    """One persistent ``serve`` process; its stderr goes to a file, read back if it dies."""

    def __init__(self, name: str, python: Path, env: dict):
        self.name, self.log = name, tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            **_command(python, env, "serve"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log
        )

    def time(self, url: str, n: int) -> dict:
        assert self.proc.stdin and self.proc.stdout
        print(url, n, file=self.proc.stdin, flush=True)
        if line := self.proc.stdout.readline():
            return json.loads(line)
        self.log.seek(0)
        raise RuntimeError(f"{self.name} worker died:\n{self.log.read().decode()[-3000:]}")

    def close(self) -> None:
        self.proc.communicate(timeout=30)  # closes its stdin: the worker's loop ends
        self.log.close()


def latency(urls: dict[str, str], rounds: int, n: int, warmup: int) -> tuple[list, list]:
    workers = {name: Worker(name, python, env) for name, (python, env) in _stacks().items()}  # load side by side
    rows, ratios = [], []
    try:
        for photo, url in urls.items():
            for worker in workers.values():
                worker.time(url, warmup)
            medians: dict[str, list[float]] = defaultdict(list)  # stack -> each round's median
            samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            decoded = {}  # stack -> the size our service decoded the photo to
            for r in range(rounds):
                for name in list(workers) if r % 2 == 0 else list(workers)[::-1]:
                    out = workers[name].time(url, n)
                    medians[name].append(statistics.median(out["ms"]["end_to_end"]))
                    for step, values in out["ms"].items():
                        samples[name][step] += values
                    decoded[name] = out["decoded_size"]
            for name in workers:
                row: dict[str, Any] = {
                    "photo": photo,
                    "stack": name,
                    "median_ms": round(statistics.median(medians[name]), 3),
                    "round_medians_ms": [round(m, 3) for m in medians[name]],
                    "requests_ms": summarize(samples[name].pop("end_to_end")),
                }
                if name != "book":  # the book's handler has no trace
                    row["stages_median_ms"] = {k: round(statistics.median(v), 3) for k, v in samples[name].items()}
                    row["decoded_size"] = decoded[name]
                rows.append(row)
            ratios.append({"photo": photo, **{f"book_over_{name}": _ratios(medians, name) for name in OURS}})
    finally:
        for worker in workers.values():
            worker.close()
    return rows, ratios


def _ratios(medians: dict[str, list[float]], ours: str) -> dict:
    book, mine = medians["book"], medians[ours]
    return {
        "of_medians": round(statistics.median(book) / statistics.median(mine), 2),
        "median_of_round_ratios": round(statistics.median(b / m for b, m in zip(book, mine, strict=True)), 2),
    }


def memory(photo_paths: dict[str, Path]) -> list:
    rows, stacks = [], _stacks()
    for photo, path in photo_paths.items():
        for name, (python, env) in stacks.items():
            proc = subprocess.run(**_command(python, env, "memory", str(path)), capture_output=True, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"memory worker {name} failed:\n{proc.stderr[-3000:]}")
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            data["request_increase_mb"] = round(data["peak_mb"] - data["after_load_mb"], 1)
            rows.append({"photo": photo, "stack": name, **data})
    return rows


def run(smoke: bool = False):
    if not (DATA / "validation").is_dir() or not LEGACY_PY.exists():
        print(f"phone_speed: skipped, it needs the dataset at {DATA} and the book's stack at {LEGACY_PY}")
        return None
    rounds, n, warmup = (1, 2, 1) if smoke else (11, 15, 3)
    started = time.perf_counter()
    photo_paths = photos()
    server = ImageServer(WORK)
    try:
        rows, ratios = latency({p: f"{server.url}/{path.name}" for p, path in photo_paths.items()}, rounds, n, warmup)
    finally:
        server.close()
    result: dict[str, Any] = {
        "photos": {p: {"file": path.name, "bytes": path.stat().st_size} for p, path in photo_paths.items()},
        "note": "3MP and 12MP are Lanczos-upscaled proxies of the 0.2MP photo; ours-exact sets JPEG_EXACT=1",
        "design": f"{rounds} round(s) x {n} requests of each stack per size, after {warmup} warm-up request(s)",
        "latency": rows,
        "book_over_ours": ratios,
        "memory": memory(dict(list(photo_paths.items())[:1]) if smoke else photo_paths),  # smoke: one photo
        "base64": base64_ms(photo_paths),
        "decode_preprocess_12mp_ms": formats_ms(photo_paths["12MP"]),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    labels = [f"{r['photo']} | {r['stack']}" for r in rows]
    title = "Warm end-to-end per photo size (median of round medians)"
    return publish("phone_speed", result, title, labels, [r["median_ms"] for r in rows], "ms")


if __name__ == "__main__":
    if sys.argv[1:2] in (["serve"], ["memory"]):  # a worker
        (serve if sys.argv[1] == "serve" else memory_worker)(*sys.argv[2:])
    else:
        print(json.dumps(run("--smoke" in sys.argv), indent=2))

"""What the verdict of ``details`` answers costs and does: the shipped model with its novelty statistics and its
ImageNet gate, against the same model with the statistics alone and without either (its scores alone), on one
machine.

1. Time: warm ``Classifier.classify`` of dataset photos by the three, interleaved in rounds (order reversed every
   other round); the extra milliseconds per request (every request computes the verdict, for the log line and the
   drift metric, asked for or not), the verdict step as the request's trace times it, the verdict alone on
   outputs computed once (pooling and the layers' matrix-vector products), the share of the photos whose distance
   asked the gate and the gate's own inference.
2. Size: the statistics file, the gate and the model file, raw and deflated as a deployment zip stores them; and
   what the gate adds to init: ``Classifier.warm()`` in fresh processes with and without it (time, peak RSS).
3. What it does: the shipped model's verdicts on the not-clothing development set (``python -m lab.not_clothing``)
   by group, and the cross-validated operating point (held-back clothing, shifted clothing, the development set)
   as ``python -m lab.novelty`` measured it (lab/results/novelty.json), and the gate's folds
   (lab/results/imagenet-gate.json): the shipped model trained on every clothing photo, so only the folds can say
   how it treats clothing it never saw. Its distances of the validation photos below are in-sample too: held-out
   photos ask the gate more often.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from bench.common import DATA, ROOT, publish, summarize

MANIFEST = ROOT / "model" / "clothing-model.json"
NOVELTY_REPORT = ROOT / "lab" / "results" / "novelty.json"
GATE_REPORT = ROOT / "lab" / "results" / "imagenet-gate.json"


def without_statistics(folder: Path) -> Path:
    """A copy of the shipped model as a converter writes it (the scores alone), and a manifest without the rules."""
    from core.manifest import sha256_of
    from lab.feature_output import scores_only

    manifest = json.loads(MANIFEST.read_text())
    model = folder / manifest["model_file"]
    model.write_bytes(scores_only((ROOT / "model" / manifest["model_file"]).read_bytes()))
    manifest["sha256"] = sha256_of(model)
    for key in ("novelty", "not_sure_below", "gate"):
        manifest.pop(key, None)
    path = folder / MANIFEST.name
    path.write_text(json.dumps(manifest))
    return path


# A fresh process loads the classifier and runs it once, as an entry point's init does: its time and peak RSS
# (VmHWM: getrusage's maximum would carry over the forking parent's, across exec).
WARM = (
    "import json, sys, time; from core.model import Classifier; t = time.perf_counter(); "
    "Classifier(sys.argv[1]).warm(); ms = (time.perf_counter() - t) * 1000; "
    "hwm = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]; "
    "print(json.dumps({'ms': ms, 'peak_rss_mb': int(hwm) / 1024}))"
)


def init_cost(runs: int) -> dict[str, Any]:
    """``Classifier.warm()`` in fresh processes, with the gate and without it, alternating."""
    import subprocess

    from bench.common import VENV_PY
    from lab.imagenet_gate import without_gate

    samples: dict[str, dict[str, list[float]]] = {"with_gate": {}, "without_gate": {}}
    with tempfile.TemporaryDirectory() as tmp:
        manifests = {"with_gate": MANIFEST, "without_gate": without_gate(MANIFEST, Path(tmp))}
        for _ in range(runs):
            for name, manifest in manifests.items():
                proc = subprocess.run(
                    [str(VENV_PY), "-c", WARM, str(manifest)], cwd=ROOT, capture_output=True, text=True, check=True
                )
                for key, value in json.loads(proc.stdout.splitlines()[-1]).items():
                    samples[name].setdefault(key, []).append(value)
    return {name: {key: summarize(values) for key, values in measured.items()} for name, measured in samples.items()}


def timings(photos: list[bytes], rounds: int) -> dict[str, Any]:
    from core.memory import PixelBudget
    from core.model import Classifier, DecodeRules
    from core.trace import Trace
    from lab.imagenet_gate import without_gate

    with tempfile.TemporaryDirectory() as tmp:
        stacks = {
            "with_verdict": Classifier(MANIFEST).warm(),
            "distance_only": Classifier(without_gate(MANIFEST, Path(tmp))).warm(),
            "scores_only": Classifier(without_statistics(Path(tmp))).warm(),
        }
        rules, budget = DecodeRules(max_pixels=10**8), PixelBudget(10**9)
        medians: dict[str, list[float]] = {name: [] for name in stacks}
        verdict_ms: list[float] = []
        asked: list[bool] = []
        for r in range(rounds):
            for name in sorted(stacks, reverse=bool(r % 2)):
                samples = []
                for data in photos:
                    trace = Trace()
                    started = time.perf_counter()
                    answer = stacks[name].classify(data, None, False, rules, budget, trace, details=True)
                    samples.append((time.perf_counter() - started) * 1000)
                    if name == "with_verdict":
                        verdict_ms.append(trace.ms["verdict"])
                        asked.append("imagenet_gate" in answer)
                medians[name].append(statistics.median(samples))
        alone = judged_alone(stacks["distance_only"], photos)
        gate = gate_alone(stacks["with_verdict"], photos[:5])

    def extra(over: str) -> float:
        return round(statistics.median(a - b for a, b in zip(medians["with_verdict"], medians[over], strict=True)), 3)

    return {
        "request_ms": {name: summarize(values) for name, values in medians.items()},
        "extra_ms_per_request": extra("scores_only"),
        "extra_ms_per_request_over_the_distance_alone": extra("distance_only"),
        "verdict_step_ms": summarize(verdict_ms),
        "verdict_alone_ms": alone,
        "photos_asking_the_gate": round(sum(asked) / len(asked), 4),
        "gate_alone_ms": gate,
    }


def gate_alone(classifier: Any, photos: list[bytes], repeats: int = 50) -> dict[str, float]:
    """The gate's inference and log-odds on the sampled pixels, as a photo in the band pays it."""
    from core.model import DecodeRules

    assert classifier._gate is not None
    per_photo = []
    for data in photos:
        pixels = classifier.sample_file(data, DecodeRules(max_pixels=10**8))
        started = time.perf_counter()
        for _ in range(repeats):
            classifier._gate.log_odds(pixels)
        per_photo.append((time.perf_counter() - started) * 1000 / repeats)
    return summarize(per_photo)


def judged_alone(classifier: Any, photos: list[bytes], repeats: int = 200) -> dict[str, float]:
    """``Classifier.judge`` (the softmax, pooling and the layers' distances) on each photo's outputs, computed
    once: the verdict's own cost, without the request's noise around it (median per photo of ``repeats``)."""
    from core.model import DecodeRules

    per_photo = []
    for data in photos:
        scores, activations = classifier.infer(classifier.prepare(data, DecodeRules(max_pixels=10**8)))
        started = time.perf_counter()
        for _ in range(repeats):
            classifier.judge(scores, activations)
        per_photo.append((time.perf_counter() - started) * 1000 / repeats)
    return summarize(per_photo)


def sizes() -> dict[str, Any]:
    from core.manifest import load_manifest

    manifest = load_manifest(MANIFEST)
    out = {}
    named = (("statistics", manifest.statistics_path), ("gate", manifest.gate_path), ("model", manifest.model_path))
    for name, path in named:
        assert path is not None
        data = path.read_bytes()
        out[name] = {"bytes": len(data), "zipped_bytes": len(zlib.compress(data, 6))}
    return out


def development_set(smoke: bool) -> dict[str, Any] | str:
    from core.memory import PixelBudget
    from core.model import Classifier, DecodeRules
    from core.trace import Trace
    from lab.not_clothing import DEFAULT_CACHE, PEOPLE_GROUPS, photo_groups

    groups = photo_groups(DEFAULT_CACHE.expanduser())
    if not groups:
        return f"skipped: no development set in {DEFAULT_CACHE} (python -m lab.not_clothing)"
    classifier = Classifier(MANIFEST)
    rules, budget = DecodeRules(max_pixels=10**8), PixelBudget(10**9)
    by_group: dict[str, dict[str, int]] = {}
    for group, paths in sorted(groups.items()):
        counts = by_group.setdefault(group, {})
        for path in paths[:2] if smoke else paths:
            answer = classifier.classify(path.read_bytes(), None, False, rules, budget, Trace(), details=True)
            counts[answer["verdict"]] = counts.get(answer["verdict"], 0) + 1
    objects = [c for g, c in by_group.items() if g not in PEOPLE_GROUPS]
    flagged = sum(c.get("not_clothing", 0) for c in objects) / sum(sum(c.values()) for c in objects)
    return {"by_group": by_group, "not_clothing_share_without_people": round(flagged, 4)}


def run(smoke: bool = False):
    if not (DATA / "validation").is_dir():
        print(f"novelty: skipped, it needs the dataset at {DATA}")
        return None
    rounds, count = (1, 3) if smoke else (9, 40)
    photos = [p.read_bytes() for p in sorted((DATA / "validation").rglob("*.jpg"))[:: 341 // count or 1][:count]]
    result: dict[str, Any] = {
        "design": f"{rounds} rounds x {len(photos)} validation photos per stack, details=true",
        **timings(photos, rounds),
        "size": sizes(),
        "init": init_cost(1 if smoke else 7),
        "development_set": development_set(smoke),
        "cross_validated": json.loads(NOVELTY_REPORT.read_text()) if NOVELTY_REPORT.is_file() else None,
        "imagenet_gate": json.loads(GATE_REPORT.read_text()) if GATE_REPORT.is_file() else None,
    }
    times = result["request_ms"]
    return publish(
        "novelty",
        result,
        "Warm classify, with and without the verdict (median of round medians)",
        list(times),
        [times[name]["median"] for name in times],
        "ms",
    )

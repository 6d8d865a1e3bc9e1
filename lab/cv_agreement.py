"""Do different recipes get the same photos wrong? Their cross-validation runs compared photo by photo.

    python -m lab.cv_agreement lab/runs/cv-2.2.0 lab/runs/cv-default lab/runs/cv-lite0-224 \\
        --json lab/results/cv-agreement.json --shared-mistakes lab/results/shared-mistakes.csv

Every run must hold the same folds (lab.train's ``--fold I/K`` with the same ``--seed``), so fold *i* of each run
held out the same photos. Reported: each run's out-of-fold accuracy; that of their ensemble (the mean of their
probabilities: the strongest teacher these runs could give a distilled student); and how many photos are wrong
for none of the runs, for one, ..., for all of them. Mistakes every recipe makes are where a new recipe has the
least to gain: the photo is ambiguous, mislabelled, or unlike the rest. ``--shared-mistakes`` lists them (path,
label, each run's answer) for a person to look at.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.model import softmax
from lab.calibrate import load_folds
from lab.cv_serving import CrossValidationError
from lab.report import show_report


def aligned_folds(runs: list[Path], served: str | None) -> list[list[dict[str, Any]]]:
    """For each fold, every run's entry; refuses runs whose folds held out different photos."""
    per_run = [load_folds(run, served) for run in runs]
    if len({len(folds) for folds in per_run}) != 1:
        counts = ", ".join(str(len(f)) for f in per_run)
        raise CrossValidationError(f"the runs have different numbers of folds: {counts}")
    by_fold = [list(entries) for entries in zip(*per_run, strict=True)]
    for entries in by_fold:
        first = entries[0]
        for run, entry in zip(runs[1:], entries[1:], strict=True):
            if entry["fold"] != first["fold"] or not np.array_equal(entry["paths"], first["paths"]):
                raise CrossValidationError(
                    f"{run}/{entry['fold']} held out other photos than {runs[0]}/{first['fold']}"
                )
    return by_fold


def agreement(runs: list[Path], served: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each run's and the ensemble's accuracy by fold, how many runs each photo fooled, and the photos all did."""
    by_fold = aligned_folds(runs, served)
    accuracy: dict[str, list[float]] = {str(run): [] for run in runs}
    ensemble: list[float] = []
    wrong_by = np.zeros(len(runs) + 1, dtype=int)
    shared: list[dict[str, Any]] = []
    for entries in by_fold:
        labels = entries[0]["labels"]
        predictions = np.stack([e["logits"].argmax(1) for e in entries])
        for run, predicted in zip(runs, predictions, strict=True):
            accuracy[str(run)].append(float((predicted == labels).mean()))
        mean_probability = np.mean([softmax(e["logits"]) for e in entries], axis=0)
        ensemble.append(float((mean_probability.argmax(1) == labels).mean()))
        wrong = (predictions != labels).sum(axis=0)
        wrong_by += np.bincount(wrong, minlength=len(runs) + 1)
        for i in np.flatnonzero(wrong == len(runs)):
            shared.append({"path": entries[0]["paths"][i], "label": int(labels[i]), "answers": predictions[:, i]})
    photos = int(wrong_by.sum())

    def summary(values: list[float]) -> dict[str, Any]:
        return {
            "folds": [round(v, 4) for v in values],
            "mean": round(float(np.mean(values)), 4),
            "std": round(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, 4),
        }

    result = {
        "logits": f"int8 as served ({served})" if served else "float Keras",
        "photos": photos,
        "runs": {run: summary(values) for run, values in accuracy.items()},
        "ensemble": summary(ensemble),
        "photos_wrong_by": {str(k): int(n) for k, n in enumerate(wrong_by)},
        "wrong_by_all": int(wrong_by[-1]),
        "wrong_by_all_with_one_answer": sum(len(set(s["answers"].tolist())) == 1 for s in shared),
    }
    return result, shared


def write_shared_mistakes(path: Path, shared: list[dict[str, Any]], runs: list[Path], labels: list[str]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "label", *(run.name for run in runs)])
        for s in shared:
            writer.writerow([s["path"], labels[s["label"]], *(labels[a] for a in s["answers"])])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.cv_agreement", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("runs", type=Path, nargs="+", help="cross-validation runs over the same folds (fold*/oof.npz)")
    p.add_argument("--served", nargs="?", const="int8-r1000", help="compare int8 logits as served (lab.cv_serving)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--shared-mistakes", type=Path, help="write the photos every run gets wrong here (CSV)")
    args = p.parse_args(argv)
    if len(args.runs) < 2:
        p.error("compare at least two runs")
    try:
        result, shared = agreement(args.runs, args.served)
    except CrossValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    show_report(result, args.json)
    if args.shared_mistakes:
        labels = next(args.runs[0].glob("fold*/labels.txt")).read_text().split()
        write_shared_mistakes(args.shared_mistakes, shared, args.runs, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())

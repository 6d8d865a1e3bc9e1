"""The end of a bulk run: a few lines for the person at the terminal, or with --summary-json one JSON object for
a script; --evaluate's confusion matrix is in one or the other, never both."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from .evaluation import confusion_png, confusion_text, evaluate_rows
from .rows import VERDICTS, Row


class Summary:
    def __init__(self, rows: list[Row], earlier: list[Row], seconds: float, empty: list[str]) -> None:
        self.rows, self.earlier, self.seconds, self.empty = rows, earlier, seconds, empty
        self.answered = [row for row in rows if not row["error"]]
        self.errors = len(rows) - len(self.answered)

    def as_dict(self) -> dict[str, Any]:
        seconds = self.seconds
        summary: dict[str, Any] = {
            "images": len(self.rows),
            "answered": len(self.answered),
            "errors": self.errors,
            "seconds": round(seconds, 2),
            "images_per_second": round(len(self.rows) / seconds, 1) if seconds else None,
            "per_label": dict(Counter(row["label"] for row in self.answered).most_common()),
            "verdicts": verdict_counts(self.answered),
            "already_answered": len(self.earlier),
        }
        if self.empty:
            summary["no_images"] = self.empty
        return summary

    def show(self, args: argparse.Namespace, labels: list[str]) -> None:
        summary = self.as_dict()
        evaluation = evaluate_rows(self.earlier + self.rows, labels) if args.evaluate else None
        if evaluation is not None:
            summary["evaluation"] = evaluation
            if args.confusion_png and evaluation["images"]:
                title = f"accuracy {evaluation['accuracy']:.2%} on {evaluation['images']} images"
                confusion_png(evaluation["labels"], evaluation["confusion"], title, args.confusion_png)
        if args.summary_json:
            print(json.dumps(summary, indent=2), file=sys.stderr)
            return
        print("\n".join(self.lines(summary, args.out)), file=sys.stderr)
        if evaluation is not None:
            print("\n".join(_evaluation_lines(evaluation)), file=sys.stderr)

    def lines(self, summary: dict[str, Any], out: str | None) -> list[str]:
        rate = f", {summary['images_per_second']} images/s" if summary["images_per_second"] else ""
        lines = [f"{_count(summary['images'])} in {summary['seconds']:g} s{rate}: {summary['answered']} answered"]
        if self.errors:
            where = f"the error column of {out}" if out else "the error column"
            lines[0] += f", {self.errors} failed ({where} says why)"
        if self.earlier:
            lines.append(f"{_count(len(self.earlier))} more answered by an earlier run, kept")
        if summary["per_label"]:
            lines.append("labels: " + ", ".join(f"{label} {n}" for label, n in summary["per_label"].items()))
        if summary["verdicts"]:
            lines.append("verdicts: " + ", ".join(f"{verdict} {n}" for verdict, n in summary["verdicts"].items()))
        if self.empty:
            lines.append("no images in: " + ", ".join(self.empty))
        return lines


def verdict_counts(rows: list[Row]) -> dict[str, int]:
    """How many answered rows got each verdict: the service's three always (a 0 says none was found, and a script
    can read any of them), then any other an endpoint gave. Empty when no row has a verdict: a model with neither the
    statistics nor a not-sure bar, an endpoint that answers flat scores."""
    counts = Counter(row["verdict"] for row in rows if row["verdict"])
    if not counts:
        return {}
    others = {verdict: n for verdict, n in counts.most_common() if verdict not in VERDICTS}
    return {**{verdict: counts[verdict] for verdict in VERDICTS}, **others}


def _count(images: int) -> str:
    return f"{images} image{'' if images == 1 else 's'}"


def _evaluation_lines(evaluation: dict[str, Any]) -> list[str]:
    if not evaluation["images"]:
        return ["evaluation: no answered image is in a folder named after one of the model's labels"]
    per_label = ", ".join(f"{label} {share:.0%}" for label, share in evaluation["per_label_accuracy"].items())
    return [
        confusion_text(evaluation),
        f"accuracy {evaluation['accuracy']:.2%} on {evaluation['images']} images ({per_label})",
    ]

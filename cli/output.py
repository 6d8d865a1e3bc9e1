"""The bulk command's output file: CSV or JSON Lines written a row at a time, resumable, safe to open in a
spreadsheet."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .rows import FIELDS, Row


class Output:
    """CSV or JSON Lines, written a row at a time; on resume, the answered rows are kept and the failed dropped."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.jsonl = self.path is not None and self.path.suffix.lower() in (".jsonl", ".ndjson")
        self.done: dict[str, Row] = {}
        if self.path is not None and self.path.exists():
            kept = [row for row in _read_rows(self.path, self.jsonl) if not row.get("error")]
            self.done = {row["path"]: row for row in kept}
            _rewrite_rows(self.path, self.jsonl, kept)
        # surrogateescape: a file name that is not UTF-8 is written (and read back on resume) as its own bytes, on
        # stdout (no --out) too: never a crash.
        if self.path is None and isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(errors=ERRORS)
        self._file = open(self.path, "a", newline="", encoding=ENCODING, errors=ERRORS) if self.path else sys.stdout
        self._csv = csv.DictWriter(self._file, FIELDS)
        if not self.jsonl and (self.path is None or self.path.stat().st_size == 0):
            self._csv.writeheader()

    def write(self, row: Row) -> None:
        if self.jsonl:
            self._file.write(json.dumps(row) + "\n")
        else:
            self._csv.writerow(_csv_row(row))
        self._file.flush()

    def close(self) -> None:
        if self.path:
            self._file.close()


ENCODING, ERRORS = "utf-8", "surrogateescape"


def _read_rows(path: Path, jsonl: bool) -> list[Row]:
    """The rows of an earlier run that are whole and well-formed. Every row is written with its line end and
    flushed, so a last line without one was cut short by a kill: it is dropped (that image is done again), as is
    any line that is not a row of ours (a foreign or hand-edited file)."""
    text = path.read_bytes().decode(ENCODING, ERRORS)
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if jsonl:
        candidates = []
        for line in text.splitlines():
            try:
                candidates.append(json.loads(line))
            except ValueError:
                pass
    else:
        try:
            candidates = [_from_csv_row(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
        except csv.Error:
            candidates = []
    return [row for row in candidates if _is_row(row)]


def _is_row(row: object) -> bool:
    if not isinstance(row, dict) or set(row) != set(FIELDS) or not isinstance(row["path"], str) or not row["path"]:
        return False
    if row["error"]:
        return isinstance(row["error"], str)
    top_k = row["top_k"]
    return (
        isinstance(row["label"], str)
        and isinstance(top_k, list)
        and bool(top_k)
        and all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], (int, float)) for pair in top_k)
        and top_k[0][0] == row["label"]
    )


def _rewrite_rows(path: Path, jsonl: bool, rows: Iterable[Row]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding=ENCODING, errors=ERRORS) as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if not jsonl:
            writer.writeheader()
        for row in rows:
            if jsonl:
                fh.write(json.dumps(row) + "\n")
            else:
                writer.writerow(_csv_row(row))
    os.replace(temporary, path)


# A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection"): it gets a leading
# apostrophe, which spreadsheets show as text and _uncell removes when a run resumes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_FIELDS = ("path", "label", "error")
# top_k is "label:score;label:score": these characters in a label are percent-escaped, so no cell is ambiguous.
TOP_K_ESCAPES = {"%": "%25", ";": "%3B", ":": "%3A"}


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def _csv_row(row: Row) -> Row:
    def escape(label: str) -> str:
        return "".join(TOP_K_ESCAPES.get(ch, ch) for ch in label)

    top_k = ";".join(f"{escape(label)}:{score}" for label, score in row["top_k"])
    return dict(row, top_k=_cell(top_k), **{name: _cell(str(row[name])) for name in TEXT_FIELDS})


def _from_csv_row(row: dict[str | None, Any]) -> Row | None:
    """A CSV row as written by _csv_row, or None when it is not one (missing or extra cells, a bad top_k)."""
    from urllib.parse import unquote

    if None in row or any(not isinstance(row.get(name), str) for name in FIELDS):
        return None
    try:
        pairs = [part.rsplit(":", 1) for part in _uncell(row["top_k"]).split(";") if part]
        top_k = [[unquote(label), float(score)] for label, score in pairs]
    except ValueError:
        return None
    cells = {name: row[name] for name in FIELDS}
    return {**cells, "top_k": top_k, **{name: _uncell(cells[name]) for name in TEXT_FIELDS}}

"""The bulk command's rows as bytes in its output file, and back: what a rerun reads to skip the images already
answered. Reading is line by line: a line that is not a whole row of ours is dropped on its own, never the file.
A file written before rows had a verdict (no ``verdict`` or ``clothing_distance``) is read too, its rows with
neither: a rerun keeps their answers and rewrites the file with today's columns."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .rows import FIELDS, OLD_FIELDS, Row, is_distance

ENCODING, ERRORS = "utf-8", "surrogateescape"  # a file name that is not UTF-8 is its own bytes, both ways
# A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection"): it gets a leading
# apostrophe, which spreadsheets show as text. A cell that starts with an apostrophe of its own gets one too, so
# reading back removes exactly one from any cell that has one: every value round-trips.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_FIELDS = ("path", "label", "verdict", "error")
# top_k is "label:score;label:score": these characters in a label are percent-escaped, so no cell is ambiguous.
TOP_K_ESCAPES = {"%": "%25", ";": "%3B", ":": "%3A"}


class Foreign(Exception):
    """The file holds something, but not this command's rows: it is not rewritten."""


@dataclass
class ReadBack:
    rows: list[Row] = field(default_factory=list)  # whole, well-formed rows, answered or failed
    dropped: list[int] = field(default_factory=list)  # line numbers of the lines that are not


def cell(text: str) -> str:
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def uncell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def render(rows: list[Row], jsonl: bool, header: bool = True) -> str:
    """Rows as the output file holds them (CSV with its header, or JSON Lines)."""
    if jsonl:
        return "".join(json.dumps(row) + "\n" for row in rows)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    if header:
        writer.writerow(FIELDS)
    writer.writerows([csv_row(row)[name] for name in FIELDS] for row in rows)
    return text.getvalue()


def csv_row(row: Row) -> Row:
    """A row's cells as text; a verdict or distance the answer did not have (None) is an empty cell."""

    def escape(label: str) -> str:
        return "".join(TOP_K_ESCAPES.get(ch, ch) for ch in label)

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    top_k = ";".join(f"{escape(label)}:{score}" for label, score in row["top_k"])
    texts = {name: cell(text(row[name])) for name in TEXT_FIELDS}
    return dict(row, top_k=cell(top_k), clothing_distance=text(row["clothing_distance"]), **texts)


def read_rows(data: bytes, jsonl: bool) -> ReadBack:
    """The rows of an earlier run. Every row is written with its line end and flushed, so a last line without one
    was cut short by a kill: it is dropped (that image is done again), as is any line that is not a row of ours
    (a hand-edited line, a cell the csv module cannot read). A UTF-8 byte-order mark (a spreadsheet's save) is
    skipped. Raises Foreign for a file that is not this command's output at all."""
    text = data.decode(ENCODING, ERRORS).removeprefix("\ufeff")
    whole = text[: text.rfind("\n") + 1]
    found = _read_jsonl(whole) if jsonl else _read_csv(whole)
    if whole != text:
        found.dropped.append(whole.count("\n") + 1)
    return found


def _read_jsonl(text: str) -> ReadBack:
    found = ReadBack()
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        try:
            row = upgraded(json.loads(line))
        except ValueError:
            row = None
        if is_row(row):
            found.rows.append(row)
        elif line.strip():
            found.dropped.append(number)
    if found.dropped and not found.rows:
        raise Foreign("none of its lines is a row of this command's")
    return found


def _read_csv(text: str) -> ReadBack:
    found = ReadBack()
    # No cell can be longer than the file: a pasted data: URL or a long label is read, not refused.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error:
        header = []
    if header is None:
        return found
    if header not in (list(FIELDS), list(OLD_FIELDS)):
        raise Foreign(f"its first line is not the header {','.join(FIELDS)}")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return found
        except csv.Error:  # the reader starts afresh on the next line
            found.dropped.append(reader.line_num)
            continue
        row = from_csv_row(cells, header)
        if row is not None and is_row(row):
            found.rows.append(row)
        elif cells:
            found.dropped.append(reader.line_num)


def from_csv_row(cells: list[str], header: list[str] | None = None) -> Row | None:
    """A CSV row as written by csv_row under ``header`` (today's FIELDS unless said), or None when it is not one
    (missing or extra cells, a bad top_k or distance)."""
    header = header or list(FIELDS)
    if len(cells) != len(header):
        return None
    named = {"verdict": "", "clothing_distance": "", **dict(zip(header, cells, strict=True))}
    row: dict[str, Any] = {name: uncell(named[name]) if name in TEXT_FIELDS else named[name] for name in FIELDS}
    try:
        pairs = [part.rsplit(":", 1) for part in uncell(row["top_k"]).split(";") if part]
        top_k = [[unquote(label), float(score)] for label, score in pairs]
        distance = float(row["clothing_distance"]) if row["clothing_distance"] else None
    except ValueError:
        return None
    return {**row, "top_k": top_k, "verdict": row["verdict"] or None, "clothing_distance": distance}


def upgraded(row: Any) -> Any:
    """A JSON Lines row of a run before verdicts as today's row (verdict and distance unknown: None); any other
    value as it is."""
    if isinstance(row, dict) and set(row) == set(OLD_FIELDS):
        return {name: row.get(name) for name in FIELDS}
    return row


def is_row(row: object) -> bool:
    if not isinstance(row, dict) or set(row) != set(FIELDS) or not isinstance(row["path"], str) or not row["path"]:
        return False
    if not (row["verdict"] is None or isinstance(row["verdict"], str)):
        return False
    if not (row["clothing_distance"] is None or is_distance(row["clothing_distance"])):
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

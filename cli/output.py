"""The bulk command's output: CSV or JSON Lines written a row at a time, resumable, safe to open in a
spreadsheet, and one run at a time per file.

Only a regular file (or, through symbolic links, the regular file one names) is read back and rewritten; a
device, a pipe or a terminal (``--out /dev/stdout``) is written as a stream. A regular file is locked
(``flock``) for the whole run, so a second run on the same file is refused instead of rewriting it under the
first: every row a run reports as written stays in the file.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Callable
from typing import TextIO, TypeVar

from .resume import ENCODING, ERRORS, Foreign, ReadBack, read_rows, render
from .rows import Row

T = TypeVar("T")


class OutputRefused(Exception):
    """The output cannot be used (another run holds it, it is not ours, it cannot be opened): said once."""


class Output:
    """CSV or JSON Lines, written a row at a time; on resume, the answered rows are kept and the failed dropped."""

    def __init__(self, path: str | None) -> None:
        self.named = path
        self.jsonl = path is not None and os.path.splitext(path)[1].lower() in (".jsonl", ".ndjson")
        self.done: dict[str, Row] = {}
        self.dropped: list[int] = []  # lines of the earlier run's file that were not rows
        self._file: TextIO
        target = _regular_target(path) if path is not None else None
        if path is None:
            # surrogateescape: a file name that is not UTF-8 is written as its own bytes, never a crash.
            if isinstance(sys.stdout, io.TextIOWrapper):
                sys.stdout.reconfigure(errors=ERRORS)
            self._file, fresh = sys.stdout, True
        elif target is None:
            stream = _opened(lambda: open(path, "a", newline="", encoding=ENCODING, errors=ERRORS))
            self._file, fresh = stream, True
        else:
            self._file, fresh = self._resume(target), False
        if fresh and not self.jsonl:
            self._file.write(render([], jsonl=False))
            self._file.flush()

    def _resume(self, target: str) -> TextIO:
        """The file at ``target``, locked, holding the earlier run's answered rows and nothing else."""
        fd = _locked(target, self.named or target)
        try:
            data = _read_all(fd)
            try:
                found: ReadBack = read_rows(data, self.jsonl)
            except Foreign as why:
                raise OutputRefused(
                    f"--out {self.named} is not this command's output ({why}); give a new file name"
                ) from None
            kept = [row for row in found.rows if not row["error"]]
            self.done = {row["path"]: row for row in kept}
            self.dropped = found.dropped
            content = render(kept, self.jsonl).encode(ENCODING, ERRORS)
            if content != data:
                fd = _rewritten(target, fd, content) if data else _written(fd, content)
        except BaseException:
            os.close(fd)
            raise
        return open(fd, "a", newline="", encoding=ENCODING, errors=ERRORS)

    def write(self, row: Row) -> None:
        if self.jsonl:
            self._file.write(json.dumps(row) + "\n")
        else:
            self._file.write(render([row], jsonl=False, header=False))
        self._file.flush()

    def close(self) -> None:
        if self.named is not None:
            self._file.close()  # and with it the lock


def _regular_target(path: str) -> str | None:
    """The regular file to read back and rewrite: ``path`` or, through symbolic links, the file it names (made
    when missing). None for anything else (a device, a pipe, a terminal, a socket): written as a stream."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return os.path.realpath(path)
    except OSError as exc:
        raise OutputRefused(f"--out {path}: {exc.strerror}") from None
    if not stat.S_ISREG(named.st_mode):
        return None
    real = os.path.realpath(path)
    try:
        resolved = os.stat(real)
    except OSError:
        return None
    return real if (resolved.st_dev, resolved.st_ino) == (named.st_dev, named.st_ino) else None


def _opened(how: Callable[[], T]) -> T:
    try:
        return how()
    except OSError as exc:
        raise OutputRefused(f"--out: {exc.filename}: {exc.strerror}") from None


def _locked(target: str, named: str) -> int:
    """A descriptor of ``target`` that this process alone holds locked. The lock is checked to be on the file the
    name still leads to: a run that replaced the file between this open and this lock has the name's file."""
    busy = f"--out {named} is being written by another run of this command; wait for it to end, or give another file"
    for _ in range(5):
        fd = _opened(lambda: os.open(target, os.O_RDWR | os.O_CREAT, 0o666))
        if not _try_lock(fd):
            os.close(fd)
            raise OutputRefused(busy)
        if _same_file(fd, target):
            return fd
        os.close(fd)
    raise OutputRefused(busy)


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # no flock there: one run at a time is the user's to keep
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: str) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _written(fd: int, content: bytes) -> int:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]
    return fd


def _rewritten(target: str, fd: int, content: bytes) -> int:
    """``content`` in a new file that replaces ``target`` whole (a kill midway leaves the old file, never half of
    either), locked before it takes the name, so that no other run can lock either file in between. Returns the
    new file's descriptor; the old one is closed."""
    temporary = target + ".tmp"
    new = _opened(lambda: os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        os.fchmod(new, stat.S_IMODE(os.fstat(fd).st_mode))
        _try_lock(new)
        _written(new, content)
        os.replace(temporary, target)
    except OSError as exc:
        os.close(new)
        raise OutputRefused(f"--out {target}: cannot rewrite it ({exc.strerror})") from None
    except BaseException:
        os.close(new)
        raise
    os.close(fd)
    return new

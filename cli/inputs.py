"""What the bulk command classifies: files, folders, globs and URLs expanded to items, and each item's request."""

from __future__ import annotations

import base64
import codecs
import fnmatch
import glob
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.images import IMAGE_SUFFIXES

# --endpoint: a file over the endpoint's limit is sent upright and scaled to this long side, as the page does.
UPLOAD_LONG_SIDE = 1024
UPLOAD_QUALITY = 85


def is_url(item: str) -> bool:
    return item.startswith(("http://", "https://"))


class ListUnreadable(Exception):
    """The --from list cannot be read at all (no such file, a folder): said once, before any work."""


@dataclass
class Inputs:
    """What a run classifies, in order and without repeats, and the patterns and folders that gave no image."""

    items: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)


def expand_inputs(arguments: Iterable[str], list_file: str | None = None) -> Inputs:
    """Arguments: URLs, files, folders (recursed, images only, sorted), and globs: an argument is a pattern only
    when no file or folder has that name, so a photo named dress[red].jpg is that photo. Lines of ``list_file``
    are paths or URLs, never patterns."""
    found = Inputs()
    seen: set[str] = set()

    def add(items: Iterable[str]) -> None:
        for item in items:
            if item not in seen:
                seen.add(item)
                found.items.append(item)

    for argument in arguments:
        add(_expand(argument, patterns=True, empty=found.empty))
    if list_file:
        for line in read_list(list_file):
            add(_expand(line, patterns=False, empty=found.empty))
    return found


def _expand(item: str, patterns: bool, empty: list[str]) -> list[str]:
    if is_url(item) or "\0" in item:  # a NUL byte: no such file can exist; the item's row says so
        return [item]
    if os.path.isdir(item):
        found = sorted(walk_images(item))
    elif patterns and not os.path.lexists(item) and any(ch in item for ch in "*?["):
        found = sorted(glob_images(item))
    else:
        return [item]  # a missing file becomes an error row, not a crash
    if not found:
        empty.append(item)
    return found


def read_list(list_file: str) -> list[str]:
    """The lines of a list, from a file or stdin ("-"): blank lines and # comments skipped. Read as bytes, so any
    text is a line: UTF-8 (a BOM skipped), UTF-16 with its BOM (Windows PowerShell's ``>``), and names that are
    not UTF-8 as their own bytes (surrogateescape)."""
    try:
        if list_file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(list_file, "rb") as stream:
                data = stream.read()
    except OSError as exc:
        raise ListUnreadable(f"--from {list_file}: {exc.strerror}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", "replace")
    else:
        text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", "surrogateescape")
    stripped = (line.strip() for line in text.split("\n"))
    return [line for line in stripped if line and not line.startswith("#")]


def walk_images(root: str) -> Iterator[str]:
    """The image files under ``root``: regular files only (a FIFO or device named *.jpg would block a read
    forever); symbolic links followed, but no folder visited twice, so a link loop ends. A folder that cannot be
    listed (no permission, a path over the system's limit) is yielded itself: its row says why."""
    visited: set[tuple[int, int]] = set()
    unreadable: list[str] = []
    for folder, subfolders, files in os.walk(root, followlinks=True, onerror=lambda e: unreadable.append(e.filename)):
        try:
            info = os.stat(folder)
        except OSError:
            unreadable.append(folder)
            subfolders[:] = []
            continue
        if (info.st_dev, info.st_ino) in visited:
            subfolders[:] = []
            continue
        visited.add((info.st_dev, info.st_ino))
        for name in files:
            path = os.path.join(folder, name)
            if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES and _is_regular_file(path):
                yield path
    yield from (str(folder) for folder in unreadable)


def glob_images(pattern: str) -> list[str]:
    """Image files matching a glob. ``**`` walks with ``walk_images`` (glob's own recursion follows a link loop
    until paths hit the length limit: 9 photos became 369 rows); ``*``, ``?`` and ``[...]`` use glob."""
    if "**" not in pattern:
        return [
            p for p in glob.glob(pattern) if os.path.splitext(p)[1].lower() in IMAGE_SUFFIXES and _is_regular_file(p)
        ]
    parts = pattern.split(os.sep)
    first_magic = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    root = os.sep.join(parts[:first_magic]) or ("/" if pattern.startswith(os.sep) else ".")
    flat = pattern.replace("**" + os.sep, "")  # ** also matches no folder at all
    found = walk_images(root)
    if root == ".":  # paths as glob gives them: "a/x.jpg", not "./a/x.jpg"
        found = (path[2:] if path.startswith("." + os.sep) else path for path in found)
    return [p for p in found if fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, flat)]


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def payload_for(item: str, top_k: int, max_image_bytes: int | None = None, details: bool = True) -> dict[str, Any]:
    """The API request for one input (raises OSError for an unreadable file). A file over ``max_image_bytes`` is
    sent turned upright and scaled down (``fit_for_upload``), so the platform never refuses the request."""
    if is_url(item):
        return {"url": item, **_options(top_k, details)}
    if "\0" in item:  # the system's calls refuse such a name (ValueError); it is this item's error row
        raise OSError(0, "a file name cannot hold a NUL byte")
    if not stat.S_ISREG(os.stat(item).st_mode):  # reading a FIFO or a device would wait forever
        raise OSError(0, "not a regular file")
    data = Path(item).read_bytes()
    if max_image_bytes is not None and len(data) > max_image_bytes:
        data = fit_for_upload(data, max_image_bytes)
    return {"image": base64.b64encode(data).decode("ascii"), **_options(top_k, details)}


def _options(top_k: int, details: bool) -> dict[str, Any]:
    """Probabilities, so that a row's score means the same on every model; details, for each row's verdict and
    clothing distance (rows.py reads the scores out of that answer)."""
    return {"top_k": top_k, "probabilities": True, **({"details": True} if details else {})}


def fit_for_upload(data: bytes, max_bytes: int) -> bytes:
    """A photo as a JPEG of at most ``max_bytes``: upright (EXIF orientation), long side UPLOAD_LONG_SIDE or less.
    Bytes that are not a decodable image are returned as they are: the endpoint says what is wrong with them."""
    import io

    from PIL import Image, UnidentifiedImageError

    from core.images import upright

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (UPLOAD_LONG_SIDE, UPLOAD_LONG_SIDE))  # a JPEG decodes straight at about that size
            photo = upright(img).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return data
    side, quality = UPLOAD_LONG_SIDE, UPLOAD_QUALITY
    while True:
        scaled = photo.copy()
        scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        scaled.save(out, "JPEG", quality=quality)
        if out.tell() <= max_bytes or side <= 256:
            return out.getvalue()
        side, quality = side * 3 // 4, max(60, quality - 10)

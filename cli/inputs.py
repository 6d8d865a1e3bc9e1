"""What the bulk command classifies: files, folders, globs and URLs expanded to items, and each item's request."""

from __future__ import annotations

import base64
import fnmatch
import glob
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from core.images import IMAGE_SUFFIXES

# --endpoint: a file over the endpoint's limit is sent upright and scaled to this long side, as the page does.
UPLOAD_LONG_SIDE = 1024
UPLOAD_QUALITY = 85


def is_url(item: str) -> bool:
    return item.startswith(("http://", "https://"))


def expand_inputs(items: Iterable[str], list_file: str | None = None) -> list[str]:
    """Files, folders (recursed, images only, sorted), globs and URLs, in order, without repeats."""
    if list_file:
        stream = sys.stdin if list_file == "-" else open(list_file, encoding="utf-8", errors="surrogateescape")
        with stream:
            items = list(items) + [line.strip() for line in stream if line.strip() and not line.startswith("#")]
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if is_url(item):
            found = [item]
        elif os.path.isdir(item):
            found = sorted(walk_images(item))
        elif any(ch in item for ch in "*?["):
            found = sorted(glob_images(item))
        else:
            found = [item]  # a missing file becomes an error row, not a crash
        for one in found:
            if one not in seen:
                seen.add(one)
                out.append(one)
    return out


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


def payload_for(item: str, top_k: int, max_image_bytes: int | None = None) -> dict[str, Any]:
    """The API request for one input (raises OSError for an unreadable file). A file over ``max_image_bytes`` is
    sent turned upright and scaled down (``fit_for_upload``), so the platform never refuses the request."""
    if is_url(item):
        return {"url": item, "top_k": top_k, "probabilities": True}
    if not stat.S_ISREG(os.stat(item).st_mode):  # reading a FIFO or a device would wait forever
        raise OSError(0, "not a regular file")
    data = Path(item).read_bytes()
    if max_image_bytes is not None and len(data) > max_image_bytes:
        data = fit_for_upload(data, max_image_bytes)
    return {"image": base64.b64encode(data).decode("ascii"), "top_k": top_k, "probabilities": True}


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

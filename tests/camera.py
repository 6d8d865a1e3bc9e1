"""Photos as a camera stores them: upright pixels turned or mirrored and tagged with the EXIF Orientation that
turns them back (core/images.py ``upright``), for the tests and the benchmark of phone photos. Never deployed."""

from __future__ import annotations

import io

from PIL import Image

from core.images import ORIENTATION

# The pixels a camera stores for an upright scene, by the Orientation it tags them with: each the inverse of the
# turn that ``upright`` applies (the transposes are their own inverses; 90 and 270 degrees undo each other).
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def tagged(upright_image: Image.Image, orientation: int, fmt: str = "JPEG", **save) -> bytes:
    """``upright_image`` stored as a camera would with EXIF ``orientation``, as a file of format ``fmt``."""
    stored = upright_image.transpose(STORED_AS[orientation]) if orientation in STORED_AS else upright_image
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    out = io.BytesIO()
    stored.save(out, fmt, exif=exif, **save)
    return out.getvalue()


def tagged_jpeg(upright_image: Image.Image, orientation: int, quality: int = 95) -> bytes:
    return tagged(upright_image.convert("RGB"), orientation, "JPEG", quality=quality)

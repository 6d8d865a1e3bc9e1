"""Bytes -> a PIL image ready for keras_image_helper, with the limits a public endpoint needs.

Like Keras' ``load_img``, EXIF orientation is ignored and every mode goes through ``convert('RGB')``
(alpha is dropped, not composited), so predictions match what the model saw in training. The one
exception is 16/32-bit greyscale, which PIL's RGB conversion would clip: it is scaled to 8 bits first.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import Any, cast

from PIL import Image, UnidentifiedImageError

from .errors import InvalidImage, PayloadTooLarge

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}  # the files of those formats, by name


def decode_image(
    data: bytes, max_pixels: int, draft_size: tuple | None = None, draft_above_pixels: int | None = None
) -> Image.Image:
    """Open and fully decode ``data`` (first frame if animated); an RGB or L image."""
    return load_image(open_image(data, max_pixels, draft_size, draft_above_pixels))


def open_image(
    data: bytes, max_pixels: int, draft_size: tuple | None = None, draft_above_pixels: int | None = None
) -> Image.Image:
    """Read the header, check the pixel limit, choose the decode scale; no pixel is decoded yet.

    ``draft_size`` (width, height): JPEGs are decoded by the DCT at 1/2, 1/4 or 1/8 scale, never below that
    size — far less memory and time for big photos, but the pixels differ slightly from Keras'. It applies to
    every JPEG when ``draft_above_pixels`` is None (``JPEG_DRAFT=1``), else only to JPEGs with more pixels.
    ``.size`` of the result is the size it will decode to."""
    if not data:
        raise InvalidImage("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces PIL's DecompressionBombWarning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = img.size  # from the header, before any pixel is decoded
            if width * height > max_pixels:
                raise PayloadTooLarge(f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels")
            if img.format == "PNG":  # before decoding: a truncated PNG is refused without its pixels
                _check_png_rows(data)
            img.seek(0)
            if draft_size and img.format == "JPEG" and width * height > (draft_above_pixels or 0):
                img.draft("RGB", draft_size)
    except (PayloadTooLarge, InvalidImage):
        raise
    except Image.DecompressionBombError:  # PIL's own check, which fires inside open() for some formats
        raise PayloadTooLarge(f"the image has more pixels than the limit ({max_pixels})") from None
    except UnidentifiedImageError:
        raise InvalidImage(f"not a decodable image (supported formats: {', '.join(FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, struct.error) as exc:
        raise InvalidImage(f"the image could not be decoded: {exc}") from None
    return img


def load_image(img: Image.Image) -> Image.Image:
    """Decode an image from ``open_image``: an RGB or L image, 16/32-bit greyscale scaled to 8 bits."""
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"the image could not be decoded: {exc}") from None
    return _to_8bit(img)


# Adam7 interlacing: (first column, first row, column step, row step) of each of the seven passes.
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type


def _check_png_rows(data: bytes) -> None:
    """Refuse a PNG whose compressed data ends before its last row.

    A zlib stream that ends cleanly but early is not an error to Pillow: the rows it lacks are left black, so a
    few hundred bytes whose header says 6300x6300 would decode as 40 MP of zeros. The rows the header promises
    (bytes after inflating, filter bytes included) are counted here instead, in bounded steps."""
    try:
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    except struct.error:
        raise InvalidImage("the PNG is truncated: it ends inside its header") from None
    bits = PNG_CHANNELS.get(colour, 4) * depth
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns and rows:
            expected += rows * (1 + (columns * bits + 7) // 8)
    inflater, produced, pos, seen = zlib.decompressobj(), 0, 8, False
    while pos + 8 <= len(data) and produced < expected:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            seen, chunk = True, data[pos + 8 : pos + 8 + length]
            while chunk and produced < expected and not inflater.eof:
                produced += len(inflater.decompress(chunk, 1 << 20))
                chunk = inflater.unconsumed_tail
        elif seen:  # the image data is one run of IDAT chunks
            break
        pos += 12 + length
    if produced < expected:
        raise InvalidImage(
            f"the PNG is truncated: its data covers {produced * 100 // max(expected, 1)}% of "
            f"the {width}x{height} pixels its header declares"
        )


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit data spans 0..65535; PIL's RGB conversion would clip it to 255 (a white image).
        extrema: Any = img.getextrema()  # (low, high) for a one-band image
        top = 65535 if img.mode.startswith("I;16") else max(extrema[1], 1)
        return img.convert("I").point(lambda v: v * (255.0 / top)).convert("L")
    if img.mode == "F":
        low, high = cast(tuple, img.getextrema())
        span = (high - low) or 1.0
        return img.point(lambda v: (v - low) * (255.0 / span)).convert("L")
    return img

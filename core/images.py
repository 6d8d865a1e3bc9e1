"""Bytes -> a PIL image ready for keras_image_helper, with the limits a public endpoint needs.

A photo is turned upright by its EXIF Orientation tag (a phone stores a portrait photo sideways and tags it; the
model saw upright garments in training, and a sideways one is misread about half the time). Keras' ``load_img``
ignores the tag, but no photo of the training data carries one, so for every untagged file the pixels stay
exactly Keras'. Every mode goes through ``convert('RGB')`` (alpha is dropped, not composited), as in Keras. The
one exception is 16/32-bit greyscale, which PIL's RGB conversion would clip: it is scaled to 8 bits first.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import Any, cast

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImage, PayloadTooLarge


def _formats() -> tuple[tuple[str, ...], set[str]]:
    """The formats decoded, and their files' suffixes. AVIF is Pillow's own (its wheels carry libavif). HEIF/HEIC
    (an iPhone's default) only where the deployment installs ``pillow-heif``, which costs 5.7 MB of zip and
    20 ms of import (docs/api.md, "How images are prepared")."""
    formats = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "AVIF")
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".avif"}
    try:
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
    except ImportError:
        return formats, suffixes
    register_heif_opener()
    return (*formats, "HEIF"), suffixes | {".heic", ".heif"}


FORMATS, IMAGE_SUFFIXES = _formats()
ORIENTATION = 0x0112  # the EXIF tag: 1 upright, 2-8 mirrored and/or turned by 90, 180 or 270 degrees


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
            # Our own pixel limit below replaces PIL's DecompressionBombWarning; a corrupt EXIF block (Pillow reads
            # the DPI from it here) only means the photo is read as upright.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", message="Corrupt EXIF data")
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
        if "HEIF" not in FORMATS and is_heif(data):
            raise InvalidImage(
                "a HEIC/HEIF photo, which this deployment does not decode: send it as JPEG, or add pillow-heif to "
                'requirements.txt and deploy again (docs/api.md, "How images are prepared")'
            ) from None
        raise InvalidImage(f"not a decodable image (supported formats: {', '.join(FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, struct.error) as exc:
        raise InvalidImage(f"the image could not be decoded: {exc}") from None
    return img


# The brands of an ISO base media file that hold HEIF images (an iPhone's .heic among them).
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def is_heif(data: bytes) -> bool:
    """Whether ``data`` starts with a HEIF file's ``ftyp`` box, by its major brand."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def load_image(img: Image.Image) -> Image.Image:
    """Decode an image from ``open_image``: upright, an RGB or L image, 16/32-bit greyscale scaled to 8 bits."""
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"the image could not be decoded: {exc}") from None
    return _to_8bit(upright(img))


def orientation(img: Image.Image) -> int:
    """The image's EXIF Orientation (1-8); 1 when there is none or it cannot be read (a damaged EXIF block is
    no reason to refuse the pixels)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Corrupt EXIF data")  # read as upright, silently
            value = img.getexif().get(ORIENTATION, 1)
    except Exception:  # Pillow's EXIF parser raises many kinds of error on hostile input
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(img: Image.Image) -> Image.Image:
    """The image as a viewer shows it: turned (and un-mirrored) by its EXIF Orientation. An untagged image is
    returned as it is, the very object, so its pixels stay bit-exact with Keras'."""
    if orientation(img) == 1:
        return img
    return ImageOps.exif_transpose(img)


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

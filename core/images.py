"""Bytes -> decoded pixels ready for preprocess.py (Keras' preparation), with the limits a public endpoint needs.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from PIL import Image, ImageOps, UnidentifiedImageError

from . import jpeg
from .errors import InvalidImage, PayloadTooLarge

if TYPE_CHECKING:  # numpy is imported by what decodes (jpeg.py), never by the clients that only read headers
    import numpy as np


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


@dataclass
class OpenedImage:
    """A file whose header is read and checked, no pixel decoded yet. ``size`` (width, height) is the size it
    decodes to. ``colorspace``: a JPEG libjpeg-turbo decodes directly (jpeg.py), scaled by the DCT when
    ``at_least`` (width, height) is set; otherwise Pillow decodes ``header``."""

    header: Image.Image
    data: bytes | bytearray
    size: tuple[int, int]
    stored_size: tuple[int, int]  # the file's own size, as its header says
    colorspace: str | None = None
    at_least: tuple[int, int] | None = None

    @property
    def scaled(self) -> bool:
        """Whether it decodes smaller than the file's own size (by the DCT)."""
        return self.size != self.stored_size and self.at_least is not None

    @property
    def holds(self) -> int:
        """The pixels its decode holds at the peak, for the budget (memory.py). A progressive JPEG keeps every DCT
        coefficient of the whole image until its last scan, whatever size it is decoded to."""
        width, height = self.stored_size if self.header.info.get("progressive") else self.size
        return width * height


def decode_image(
    data: bytes | bytearray, max_pixels: int, draft_size: tuple | None = None, draft_above_pixels: int | None = None
) -> Image.Image:
    """Open and fully decode ``data`` (first frame if animated); an RGB or L image."""
    return load_image(open_image(data, max_pixels, draft_size, draft_above_pixels))


def open_image(
    data: bytes | bytearray, max_pixels: int, draft_size: tuple | None = None, draft_above_pixels: int | None = None
) -> OpenedImage:
    """Read the header, check the pixel limit, choose the decoder and the decode scale.

    ``draft_size`` (width, height): JPEGs are decoded by the DCT at reduced scale, never below that size — far
    less memory and time for big photos, but the pixels differ slightly from Keras'. It applies to JPEGs with
    more than ``draft_above_pixels`` pixels (every JPEG when it is None)."""
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
            at_least = None
            if draft_size and img.format == "JPEG" and width * height > (draft_above_pixels or 0):
                # Stored turned by 90 degrees (tags 5-8): the model's width is the stored image's height.
                at_least = tuple(draft_size[::-1] if orientation(img) >= 5 else draft_size)
            fast = _libjpeg_turbo(img, data, at_least) if img.format == "JPEG" else None
            if fast:
                return fast
            if at_least:
                img.draft("RGB", at_least)
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
    return OpenedImage(img, data, img.size, (width, height), at_least=at_least)


def _libjpeg_turbo(img: Image.Image, data: bytes | bytearray, at_least: tuple[int, int] | None) -> OpenedImage | None:
    """The JPEG opened for jpeg.py's decode; None where Pillow decodes it (CMYK, or a header TurboJPEG cannot read,
    such as an unusual chroma subsampling)."""
    colorspace = jpeg.colorspace_for(img.mode)
    if not colorspace:
        return None
    try:
        size = jpeg.scaled_size(data, at_least) if at_least else img.size
    except ValueError:
        return None
    return OpenedImage(img, data, size, img.size, colorspace, at_least)


# The brands of an ISO base media file that hold HEIF images (an iPhone's .heic among them).
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def is_heif(data: bytes | bytearray) -> bool:
    """Whether ``data`` starts with a HEIF file's ``ftyp`` box, by its major brand."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def load_image(opened: OpenedImage) -> Image.Image:
    """Decode an image from ``open_image``: upright, an RGB or L image, 16/32-bit greyscale scaled to 8 bits."""
    pixels = load_pixels(opened)
    if isinstance(pixels, Image.Image):
        return pixels
    import numpy

    return Image.fromarray(numpy.ascontiguousarray(pixels))


def load_pixels(opened: OpenedImage) -> Image.Image | np.ndarray:
    """Decode as ``load_image`` does, but a JPEG libjpeg-turbo decoded stays the uint8 array (height, width[, 3])
    it came as, turned upright as a view: serving samples it where it lies (preprocess.py)."""
    if opened.colorspace:
        try:
            pixels = jpeg.decode(opened.data, opened.colorspace, opened.size if opened.scaled else None)
        except ValueError:
            # libjpeg-turbo's strict mode refuses what libjpeg only warns about (a few stray bytes before a marker,
            # a damaged restart interval), which Pillow, and so Keras, decode: Pillow decides, as before.
            if opened.at_least:
                opened.header.draft("RGB", opened.at_least)
        else:
            return turned(pixels, orientation(opened.header))
    try:
        opened.header.load()
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"the image could not be decoded: {exc}") from None
    return _to_8bit(upright(opened.header))


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


# How each EXIF Orientation is undone on an array (rows, columns[, channels]): the turns and mirrors
# ImageOps.exif_transpose makes, as views rather than copies.
UNDO_ORIENTATION = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # transposed
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],  # turned 90 degrees anticlockwise: turn clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transversed
    8: lambda a: a.swapaxes(0, 1)[::-1],  # turned 90 degrees clockwise: turn anticlockwise
}


def turned(pixels: np.ndarray, tag: int) -> np.ndarray:
    """Pixels decoded without Pillow (jpeg.py) turned upright by the file's Orientation ``tag``."""
    undo = UNDO_ORIENTATION.get(tag)
    return undo(pixels) if undo else pixels


def upright(img: Image.Image) -> Image.Image:
    """The image as a viewer shows it: turned (and un-mirrored) by its EXIF Orientation. An untagged image is
    returned as it is, the very object, so its pixels stay bit-exact with Keras'."""
    if orientation(img) == 1:
        return img
    return ImageOps.exif_transpose(img)


# Adam7 interlacing: (first column, first row, column step, row step) of each of the seven passes.
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type


def _check_png_rows(data: bytes | bytearray) -> None:
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

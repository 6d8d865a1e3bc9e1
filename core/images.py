"""Bytes -> a PIL image ready for keras_image_helper, with the limits a public endpoint needs.

Like Keras' ``load_img``, EXIF orientation is ignored and every mode goes through ``convert('RGB')``
(alpha is dropped, not composited), so predictions match what the model saw in training. The one
exception is 16/32-bit greyscale, which PIL's RGB conversion would clip: it is scaled to 8 bits first.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from .errors import InvalidImage, PayloadTooLarge

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")


def decode_image(data: bytes, max_pixels: int, draft_size: tuple | None = None) -> Image.Image:
    """Open and fully decode ``data`` (first frame if animated); an RGB or L image of the original size.

    ``draft_size`` (width, height), opt-in (``JPEG_DRAFT``): JPEGs are decoded by the DCT at 1/2, 1/4 or 1/8
    scale, never below that size — much faster for big photos, but the pixels differ slightly from Keras'.
    """
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
            img.seek(0)
            if draft_size and img.format == "JPEG":
                img.draft("RGB", draft_size)
            img.load()
    except PayloadTooLarge:
        raise
    except Image.DecompressionBombError:  # PIL's own check, which fires inside open() for some formats
        raise PayloadTooLarge(f"the image has more pixels than the limit ({max_pixels})") from None
    except UnidentifiedImageError:
        raise InvalidImage(f"not a decodable image (supported formats: {', '.join(FORMATS)})") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise InvalidImage(f"the image could not be decoded: {exc}") from None
    return _to_8bit(img)


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit data spans 0..65535; PIL's RGB conversion would clip it to 255 (a white image).
        top = 65535 if img.mode.startswith("I;16") else max(img.getextrema()[1], 1)
        return img.convert("I").point(lambda v: v * (255.0 / top)).convert("L")
    if img.mode == "F":
        low, high = img.getextrema()
        span = (high - low) or 1.0
        return img.point(lambda v: (v - low) * (255.0 / span)).convert("L")
    return img

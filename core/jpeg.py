"""JPEG pixels straight from libjpeg-turbo (simplejpeg), at full size or scaled in the DCT domain.

Pillow decodes a JPEG with the same library, but through its own row-by-row copies: on a 12 MP photo its decode
takes about twice as long for the very same pixels (docs/performance.md, "Phone photos"). simplejpeg returns them
as one numpy array. At full size the pixels are identical to Pillow's (tests/core/test_jpeg.py holds it to that),
so Keras parity is kept. Scaled, libjpeg-turbo decodes at 1/2, 1/4 or 1/8 of the size, the smallest that still
covers the size asked for (the model's input: model.py): a 12 MP photo becomes 500x375 pixels without ever
existing at full size.

Greyscale and YCbCr/RGB JPEGs only: CMYK and YCCK ones (print files) stay with Pillow, whose conversion to RGB
is the one Keras' pixels come from, and so does a file libjpeg-turbo's strict mode refuses (images.py). Without
simplejpeg installed, Pillow decodes every JPEG (``available``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Pillow's mode for the JPEG -> the colour space libjpeg-turbo is asked for (the same pixels Pillow makes).
COLORSPACES = {"RGB": "RGB", "L": "GRAY"}


@functools.cache
def _simplejpeg() -> Any:
    """The module, imported on first use (it imports numpy, which the page and the bulk command's endpoint client
    never load); None where it is not installed: Pillow then decodes every JPEG, slower, to the same pixels."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def available() -> bool:
    return _simplejpeg() is not None


def colorspace_for(pillow_mode: str) -> str | None:
    """The colour space to decode a JPEG of this Pillow mode into, or None where Pillow must decode it."""
    return COLORSPACES.get(pillow_mode) if available() else None


def scaled_size(data: bytes | bytearray, at_least: tuple[int, int]) -> tuple[int, int]:
    """(width, height) the JPEG decodes to at the smallest of the scales 1/2, 1/4 and 1/8 that is still
    ``at_least`` (width, height) in both directions; its full size when none is. Those are the scales libjpeg-turbo
    decodes fastest (the others, 3/8 or 5/8, took longer than 1/2 here), and the ones Pillow's draft mode uses."""
    height, width, _, _ = _simplejpeg().decode_jpeg_header(data)
    for divisor in (8, 4, 2):
        scaled = (-(-width // divisor), -(-height // divisor))  # libjpeg rounds up
        if scaled[0] >= at_least[0] and scaled[1] >= at_least[1]:
            return scaled
    return width, height


def decode(data: bytes | bytearray, colorspace: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 pixels (height, width, 3) for RGB or (height, width) for GRAY; at ``size`` (width, height), one of
    ``scaled_size``'s, when it is given. A damaged file raises ValueError, truncated ones included (``strict``)."""
    width, height = size or (0, 0)
    decode_jpeg = _simplejpeg().decode_jpeg
    pixels: Any = decode_jpeg(data, colorspace=colorspace, min_height=height, min_width=width, strict=True)
    return pixels[:, :, 0] if colorspace == "GRAY" else pixels

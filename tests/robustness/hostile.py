"""A corpus of hostile image files, generated (never committed), each with the answer it must get."""

import io
import struct
import zlib

from PIL import Image

from tests.helpers import image_bytes


def _png_with_size(width: int, height: int) -> bytes:
    """A real small PNG whose IHDR claims width x height (CRC fixed, so only the size lies)."""
    data = bytearray(image_bytes("PNG", size=(8, 8), mode="L"))
    ihdr = 8 + 8  # signature, then length + "IHDR"
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


def _png_bomb() -> bytes:
    """A genuinely decodable 12000x12000 greyscale PNG: ~140 KB on the wire, 144 MP when decoded."""
    raw = zlib.compress(b"".join(b"\x00" + bytes(12000) for _ in range(12000)), 9)

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 12000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(image_bytes("JPEG", size=(8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(image_bytes("GIF", size=(8, 8)))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _animated_webp() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _cmyk_jpeg() -> bytes:
    return image_bytes("JPEG", mode="CMYK", color=(0, 255, 255, 0))


def _palette_with_transparency() -> bytes:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def _sixteen_bit_png() -> bytes:
    img = Image.new("I;16", (16, 16), 40000)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


JPEG = image_bytes("JPEG", size=(64, 64))
PNG = image_bytes("PNG", size=(64, 64))

# name -> (bytes, expected status, expected error type or None)
CORPUS = {
    "zero bytes": (b"", 422, "invalid_image"),  # an empty image, raw or base64, as docs/api.md's error table says
    "one byte": (b"\xff", 422, "invalid_image"),
    "text": (b"hello world, definitely not an image" * 10, 422, "invalid_image"),
    "html polyglot": (b"<html><script>alert(1)</script></html>", 422, "invalid_image"),
    "truncated jpeg (header only)": (JPEG[:200], 422, "invalid_image"),
    "truncated jpeg (half)": (JPEG[: len(JPEG) // 2], 422, "invalid_image"),
    "truncated png": (PNG[: len(PNG) // 2], 422, "invalid_image"),
    "png signature only": (PNG[:8], 422, "invalid_image"),
    "jpeg bytes behind png magic": (b"\x89PNG\r\n\x1a\n" + JPEG[8:], 422, "invalid_image"),
    "png bytes behind jpeg magic": (b"\xff\xd8\xff\xe0" + PNG[4:], 422, "invalid_image"),
    "png claiming 100000x100000": (_png_with_size(100_000, 100_000), 413, "payload_too_large"),
    "png claiming 0x0": (_png_with_size(0, 0), 422, "invalid_image"),
    "jpeg claiming 65000x65000": (_jpeg_with_size(65000, 65000), 413, "payload_too_large"),
    "gif claiming 65535x65535": (_gif_with_size(65535, 65535), 413, "payload_too_large"),
    "png decompression bomb (144 MP)": (_png_bomb(), 413, "payload_too_large"),
    "tiff (unsupported format)": (image_bytes("TIFF"), 422, "invalid_image"),
    "jpeg with a zip appended (polyglot)": (JPEG + b"PK\x03\x04" + b"\x00" * 100, 200, None),
    "gif with a script appended (polyglot)": (image_bytes("GIF") + b"<script>alert(1)</script>", 200, None),
    "animated webp": (_animated_webp(), 200, None),
    "cmyk jpeg": (_cmyk_jpeg(), 200, None),
    "palette png with transparency": (_palette_with_transparency(), 200, None),
    "16-bit greyscale png": (_sixteen_bit_png(), 200, None),
    "1x1 png": (image_bytes("PNG", size=(1, 1)), 200, None),
    "very wide 10000x1 png": (image_bytes("PNG", size=(10000, 1)), 200, None),
}

"""Photos as phones make them, for the tests of the page and the bulk client."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "pants.jpg"


def phone_photo(path: Path, orientation: int = 6) -> Path:
    """A 12 MP phone photo of the sample pants, ~6 MB: stored as a phone stores a portrait shot (sideways,
    4000x3000, with this EXIF Orientation); sensor-like noise gives it a phone JPEG's size."""
    import numpy as np
    from PIL import Image

    from core.images import tagged_jpeg

    with Image.open(SAMPLE) as image:
        upright = image.convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).integers(-16, 17, size=(4000, 3000, 3), dtype=np.int16)
    pixels = np.clip(np.asarray(upright, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    path.write_bytes(tagged_jpeg(Image.fromarray(pixels), orientation))
    return path

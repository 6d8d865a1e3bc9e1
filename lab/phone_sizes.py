"""Accuracy at phone sizes through each JPEG decode path: the table that chooses ``JPEG_EXACT_MAX_PIXELS``.

    python -m lab.phone_sizes lab/runs/cv-nocrop/fold0/int8-r1000/clothing-model.json \\
        --fold lab/runs/cv-nocrop/fold0 --data-dir ../shared/data/clothing-dataset-small \\
        --json lab/results/phone-sizes.json

Each held-out photo (a fold's, with that fold's int8 model from ``python -m lab.cv_serving``; or any folder-per-label
``--split`` with a model that never saw it) is enlarged with Lanczos to each size and saved as a JPEG (quality 90),
then prepared four ways: ``exact`` (decoded at full size: Keras' pixels, then its nearest-neighbour resize),
``scaled`` (libjpeg-turbo's DCT scale, the smallest that keeps the model's input, then the same nearest-neighbour
resize, as the service decodes big JPEGs), ``box`` (the same DCT scale, then a box filter to the input: each input
pixel the mean of the decoded pixels it covers, the alternative to ``scaled``) and ``page`` (reduced first to a
1,024-pixel long side with Lanczos and sent as a JPEG of quality 85, as the page and the bulk command do, then
decoded exactly). All but ``box`` go through the serving code (``Classifier.prepare``). Its own file is measured
too. Each row counts the photos its answer gets wrong that the photo's own file gets right, and the other way
round: the differences between rows are a few photos, so say which.

Enlarged photos are a proxy for phone photos: they hold no detail finer than the originals, so what a full-size
decode's nearest-neighbour sampling loses to aliasing on a real phone photo is, if anything, understated here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lab.dataset import list_split

SIZES_MP = (0.5, 1.0, 2.0, 3.0, 12.0)
PATHS = ("exact", "scaled", "box", "page")
QUALITY = 90
PAGE_LONG_SIDE, PAGE_QUALITY = 1024, 85  # core/page.html and cli/inputs.py

_classifier: Any = None


def resized(data: bytes, scale: float, quality: int) -> bytes:
    """The photo resized by ``scale`` (Lanczos), keeping its aspect ratio, as a JPEG of ``quality``."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
    out = io.BytesIO()
    size = (round(rgb.width * scale), round(rgb.height * scale))
    rgb.resize(size, Image.Resampling.LANCZOS).save(out, "JPEG", quality=quality)
    return out.getvalue()


def enlarged(data: bytes, megapixels: float) -> bytes:
    """The photo resized to about ``megapixels``, as a JPEG of quality 90."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    return resized(data, (megapixels * 1e6 / (width * height)) ** 0.5, QUALITY)


def page_upload(data: bytes) -> bytes:
    """What the page sends for the photo: a long side of at most 1,024 pixels, JPEG quality 85."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        long_side = max(img.size)
    return data if long_side <= PAGE_LONG_SIDE else resized(data, PAGE_LONG_SIDE / long_side, PAGE_QUALITY)


def _load(manifest: str) -> None:
    global _classifier
    from core.model import Classifier

    _classifier = Classifier(manifest, threads=1).load()


def answers(path: str) -> dict[str, int]:
    """The top label's index for each (size, path) of one photo: ``"native/exact"``, ``"12.0/scaled"``, ..."""
    from core.model import DecodeRules

    clf = _classifier
    input_size = clf.loaded_manifest().input_size
    exact = DecodeRules.for_input(input_size, 10**8, None, exact=True)
    scaled = DecodeRules.for_input(input_size, 10**8, None)  # every JPEG, as the service does over 2 MP
    original = Path(path).read_bytes()
    result = {}
    for size in ("native", *SIZES_MP):
        data = original if size == "native" else enlarged(original, float(size))
        for way in PATHS:
            sent = page_upload(data) if way == "page" else data
            if way == "box":
                batch = box_filtered(sent, scaled)
            else:
                batch = clf.prepare(sent, scaled if way == "scaled" else exact)
            result[f"{size}/{way}"] = int(np.argmax(clf.predict(batch)))
    return result


def box_filtered(data: bytes, rules: Any) -> np.ndarray:
    """The float batch of a JPEG decoded as the service decodes it (the DCT scale), then box-filtered to the input
    instead of sampled: Pillow's BOX resize of the decoded pixels."""
    from PIL import Image

    from core.images import load_pixels, open_image
    from core.preprocess import Preprocessor

    manifest = _classifier.loaded_manifest()
    height, width = manifest.input_size
    pixels = load_pixels(open_image(data, rules.max_pixels, rules.draft_size, rules.draft_above_pixels))
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.ascontiguousarray(pixels))
    sampled = np.asarray(image.resize((width, height), Image.Resampling.BOX).convert("RGB"))
    return Preprocessor(manifest.preprocessing, (width, height)).scale(sampled)


def measure(manifest: Path, split: Path, jobs: int) -> dict[str, Any]:
    from core.manifest import load_manifest

    labels = list(load_manifest(manifest).labels)
    paths, truth = list_split(split, labels)
    with ProcessPoolExecutor(jobs, initializer=_load, initargs=(str(manifest),)) as pool:
        per_photo = list(pool.map(answers, [str(p) for p in paths], chunksize=4))
    rows = []
    native = np.array([photo["native/exact"] for photo in per_photo])
    for key in per_photo[0]:
        size, way = key.split("/")
        got = np.array([photo[key] for photo in per_photo])
        rows.append(
            {
                "megapixels": size,
                "path": way,
                "accuracy": float(np.mean(got == truth)),
                "agrees_with_native": float(np.mean(got == native)),
                "lost": int(np.sum((native == truth) & (got != truth))),  # right from its own file, wrong here
                "gained": int(np.sum((native != truth) & (got == truth))),
            }
        )
    return {"model": str(manifest), "photos": len(paths), "quality": QUALITY, "rows": rows}


def held_out_view(fold: Path, data_dir: Path, folder: Path) -> Path:
    """The photos ``fold`` held out, linked into ``folder/<label>/`` (lab.cv_serving's fold split)."""
    from lab.cv_serving import fold_photos, link_photos

    labels = (fold / "labels.txt").read_text().split()
    labels_of, _, held = fold_photos(data_dir, labels, np.load(fold / "oof.npz")["paths"])
    link_photos(held, labels_of, folder)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.phone_sizes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("manifest", type=Path, help="the model's manifest (a model that never saw the photos)")
    p.add_argument("--split", type=Path, help="folder-per-label photos the model never saw")
    p.add_argument("--fold", type=Path, help="a cross-validation fold (lab.train --fold): its held-out photos")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/clothing-dataset-small"))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", type=Path, help="write the table here")
    args = p.parse_args(argv)
    if (args.split is None) == (args.fold is None):
        p.error("give exactly one of --split and --fold")
    with tempfile.TemporaryDirectory() as tmp:
        split = args.split or held_out_view(args.fold, args.data_dir, Path(tmp))
        result = measure(args.manifest, split, args.jobs)
    print(f"{result['photos']} photos never seen by {args.manifest}")
    print(f"{'size (MP)':>10} {'path':>7} {'accuracy':>9} {'agrees with native':>19} {'lost':>5} {'gained':>7}")
    for row in result["rows"]:
        print(
            f"{row['megapixels']:>10} {row['path']:>7} {row['accuracy']:>9.2%} {row['agrees_with_native']:>19.2%}"
            f" {row['lost']:>5} {row['gained']:>7}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

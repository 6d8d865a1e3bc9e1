"""Photos as phones send them, measured on the validation photos (the model never trained on them):

1. ``orientation``: each photo stored sideways, upside down or mirrored with the EXIF tag that turns it back
   (tags 1-8), classified through the service; accuracy per tag, with the tag honoured (now) and ignored (before,
   as keras_image_helper does).
2. ``upload``: each photo enlarged to a phone's 4000-pixel long side (Lanczos), then scaled down again to a long
   side N as the page does before upload (JPEG quality 0.85); how often the top label stays the one the original
   photo gets, and the upload's size. Chooses the page's N (core/page.html).
3. ``large``: the same 4000-pixel photos sent whole, resized to the model's input by nearest neighbour (as Keras
   does) or first reduced by an area filter to the training photos' scale; agreement with the original's answer.

Enlarged photos have no detail finer than the originals, so 3 is a lower bound on what aliasing costs real
high-resolution photos (docs/performance.md says what that leaves open).
"""

from __future__ import annotations

import base64
import io
import time
from collections import defaultdict
from typing import Any

import numpy as np
from PIL import Image

from bench.common import DATA, publish
from core.contract import Request
from core.service import Service
from tests.camera import tagged_jpeg

PHONE_LONG_SIDE = 4000
UPLOAD_SIDES = (512, 768, 1024, 1280, 1600, 2048)
UPLOAD_QUALITY = 85


def _photos(smoke: bool) -> list[tuple[str, Image.Image, bytes]]:
    """(true label, pixels, the file) of each validation photo."""
    folders = sorted(p for p in (DATA / "validation").iterdir() if p.is_dir())
    photos = []
    for folder in folders:
        for path in sorted(folder.glob("*.jpg"))[: 1 if smoke else None]:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                photos.append((folder.name, img.convert("RGB"), data))
    return photos


def _jpeg(img: Image.Image, quality: int = 95) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _top(service: Service, data: bytes) -> str:
    payload = {"image": base64.b64encode(data).decode(), "top_k": 1}
    response = service.handle(Request.invocation(payload, caller="bench"))
    assert response.status == 200, response.body
    return next(iter(response.body))


def _top_ignoring_tag(service: Service, data: bytes) -> str:
    """What the book's stack answers: the stored pixels as keras_image_helper reads them, tag ignored."""
    clf = service.classifier
    with Image.open(io.BytesIO(data)) as img:
        scores = clf.predict(clf.preprocess(img))  # the pixels as stored: no EXIF turn
    return clf.loaded_manifest().labels[int(np.argmax(scores))]


def _scaled(img: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)


def orientation(service: Service, photos) -> dict:
    right: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # tag -> [honoured, ignored]
    for truth, img, _ in photos:
        for tag in range(1, 9):
            data = tagged_jpeg(img, tag)
            right[tag][0] += _top(service, data) == truth
            right[tag][1] += _top_ignoring_tag(service, data) == truth
    n = len(photos)
    return {
        str(tag): {"honoured": round(ok / n, 4), "ignored": round(before / n, 4)}
        for tag, (ok, before) in sorted(right.items())
    }


def upload_and_large(service: Service, photos, reference: list[str]) -> tuple[dict, dict]:
    height, width = service.classifier.loaded_manifest().input_size
    agree: dict[int, int] = defaultdict(int)
    sizes: dict[int, list[int]] = defaultdict(list)
    whole = {"nearest": 0, "area": 0}
    for (_, img, _), original in zip(photos, reference, strict=True):
        phone = _scaled(img, PHONE_LONG_SIDE)
        for side in UPLOAD_SIDES:
            data = _jpeg(_scaled(phone, side), UPLOAD_QUALITY)
            sizes[side].append(len(data))
            agree[side] += _top(service, data) == original
        # 3: the whole phone-size photo, as the server sees it.
        whole["nearest"] += _top(service, _jpeg(phone)) == original
        factor = max(1, max(phone.size) // max(img.size))
        whole["area"] += _top(service, _jpeg(phone.reduce(factor))) == original
    n = len(photos)
    upload = {
        str(side): {
            "top_label_agreement": round(agree[side] / n, 4),
            "median_kb": round(float(np.median(sizes[side])) / 1024, 1),
            "max_kb": round(max(sizes[side]) / 1024, 1),
        }
        for side in UPLOAD_SIDES
    }
    large = {
        "model_input": [height, width],
        "nearest_from_4000px": round(whole["nearest"] / n, 4),
        "area_to_training_scale_then_nearest": round(whole["area"] / n, 4),
    }
    return upload, large


def run(smoke: bool = False):
    if not (DATA / "validation").is_dir():
        print(f"phone_photos: skipped, the dataset is not at {DATA}")
        return None
    started = time.perf_counter()
    service = Service()
    photos = _photos(smoke)
    reference = [_top(service, data) for _, _, data in photos]  # each original file's answer
    accuracy = sum(answer == photo[0] for answer, photo in zip(reference, photos, strict=True)) / len(photos)
    result: dict[str, Any] = {
        "photos": len(photos),
        "upright_accuracy": round(accuracy, 4),
        "orientation": orientation(service, photos),
    }
    result["upload"], result["large"] = upload_and_large(service, photos, reference)
    result["seconds"] = round(time.perf_counter() - started, 1)
    tags = list(result["orientation"])
    return publish(
        "phone_photos",
        result,
        f"Accuracy by EXIF orientation ({len(photos)} validation photos; honoured)",
        [f"tag {t}" for t in tags],
        [100 * result["orientation"][t]["honoured"] for t in tags],
        "% right",
    )


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

"""Prove a loaded ImageNet backbone is right before fine-tuning it: classify photos whose ImageNet class is known.

scikit-image ships the photos (nothing is downloaded): ``chelsea`` (a tabby cat) and ``coffee`` (an espresso
cup). Wrong weights, a transposed kernel or a padding mismatch give a wrong answer here; a randomly initialised
network would pass by chance with a probability of about 5 in a million.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras_image_helper import create_preprocessor
from PIL import Image

# photo -> (what it shows, the ImageNet class ids accepted as its top-1 answer)
KNOWN_PHOTOS = {
    # Chelsea is a tabby; ImageNet's five domestic-cat classes are famously confused with one another.
    "chelsea": (
        "a tabby cat",
        {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat"},
    ),
    "coffee": ("an espresso cup", {967: "espresso"}),
}


class BackboneCheckFailed(Exception):
    """The network does not recognise the known photos: its weights were not loaded correctly."""


def known_photos(size: int, preprocessing: str = "xception") -> tuple[list[str], np.ndarray]:
    """The photos' names and a batch of them prepared as serving prepares images."""
    from skimage import data

    preprocessor = create_preprocessor(preprocessing, target_size=(size, size))
    names = list(KNOWN_PHOTOS)
    batch = [
        preprocessor.preprocess(
            np.asarray(preprocessor.resize_image(Image.fromarray(getattr(data, n)())), dtype="float32")
        )
        for n in names
    ]
    return names, np.stack(batch)


def check_imagenet_top1(model: Any, size: int) -> dict[str, int]:
    """Each known photo's top-1 ImageNet class from ``model`` (1000 logits); raises when one is wrong."""
    names, batch = known_photos(size)
    top1 = model.predict(batch, verbose=0).argmax(axis=1)  # numpy on every Keras backend
    answers = {name: int(cls) for name, cls in zip(names, top1, strict=False)}
    wrong = [
        f"{name} ({KNOWN_PHOTOS[name][0]}) got class {answers[name]}"
        for name in names
        if answers[name] not in KNOWN_PHOTOS[name][1]
    ]
    if wrong:
        raise BackboneCheckFailed("the pretrained network misclassifies known photos: " + "; ".join(wrong))
    return answers


def describe(answers: dict[str, int]) -> str:
    """Each photo's answer by name, e.g. ``coffee -> espresso (967)``."""
    return ", ".join(f"{name} -> {KNOWN_PHOTOS[name][1][cls]} ({cls})" for name, cls in answers.items())

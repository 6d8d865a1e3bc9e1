"""The committed model, through the serving code, on the validation split: as good as its model card says.

Runs on every runtime `make test` uses (LiteRT and tflite-runtime 2.14), so it also checks that the book's
runtime gives the same answers.
"""

import json

import numpy as np

from lab.evaluate import evaluate
from tests.helpers import MANIFEST, ROOT, scores_of

CARD = json.loads((ROOT / "model" / "metrics.json").read_text())


def test_validation_accuracy_matches_the_model_card(dataset):
    result = evaluate(MANIFEST, dataset / "validation")
    print(f"\nvalidation accuracy {result['accuracy']:.4f} on {result['runtime']} (card: {CARD['accuracy']:.4f})")
    assert result["images"] == CARD["images"]
    assert result["accuracy"] >= CARD["accuracy"] - 0.01
    assert result["per_label_accuracy"]["pants"] >= CARD["per_label_accuracy"]["pants"] - 0.03


def test_pants_photos_come_out_as_pants(dataset):
    from core.model import Classifier

    clf = Classifier(MANIFEST).load()
    photos = sorted((dataset / "validation" / "pants").glob("*.jpg"))
    top = [max(scores_of(clf, p).items(), key=lambda kv: kv[1])[0] for p in photos]
    share = np.mean([label == "pants" for label in top])
    assert top[0] == "pants" and share >= 0.85, f"only {share:.0%} of pants photos are pants"

"""The interpreter actually in use: `make test` pins it, so the tflite-runtime route cannot silently fall back."""
import os

import numpy as np

from core.model import Classifier, softmax
from core.runtime import CANDIDATES, find_runtime
from tests.conftest import MANIFEST


def test_expected_runtime_is_the_one_loaded():
    name, _ = find_runtime()
    assert name in [candidate for candidate, _ in CANDIDATES]
    expected = os.environ.get("EXPECT_TFLITE_RUNTIME")
    if expected:
        assert name == expected
    assert Classifier(MANIFEST).load().runtime == name


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([1000.0, 0.0, -1000.0], dtype=np.float32))
    assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-6 and p[0] > 0.999

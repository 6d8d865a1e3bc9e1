"""The interpreter actually in use: `make test` pins it, so the tflite-runtime route cannot silently fall back."""

import os

import numpy as np
import pytest

from core.interpreter import CANDIDATES, find_runtime
from core.model import Classifier, softmax
from tests.helpers import MANIFEST


def test_the_classifier_loads_the_runtime_found():
    name, _ = find_runtime()
    assert name in [candidate for candidate, _ in CANDIDATES]
    assert Classifier(MANIFEST).load().runtime == name


def test_expected_runtime_is_the_one_loaded():
    """`make test` states which runtime each environment must load (ai_edge_litert; tflite_runtime for the
    book's stack): without that statement there is nothing to check, and the test says so."""
    expected = os.environ.get("EXPECT_TFLITE_RUNTIME")
    if not expected:
        pytest.skip("EXPECT_TFLITE_RUNTIME is unset: which runtime this environment must load is not stated")
    assert find_runtime()[0] == expected


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([1000.0, 0.0, -1000.0], dtype=np.float32))
    assert np.isfinite(p).all() and abs(p.sum() - 1) < 1e-6 and p[0] > 0.999


def _openblas_setting_after_import(env):
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = "import os, core, numpy; print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return proc.stdout.strip()


def test_numpy_blas_threads_are_off_unless_asked_for():
    """Nothing here calls BLAS, and OpenBLAS' idle threads spin at start: one thread unless the deployment says."""
    assert _openblas_setting_after_import({}) == "1"
    assert _openblas_setting_after_import({"OPENBLAS_NUM_THREADS": "4"}) == "4"

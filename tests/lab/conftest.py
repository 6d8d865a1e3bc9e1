"""Fixtures and helpers shared by the lab's tests."""

import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.helpers import ROOT, image_bytes, photo_views


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    """Real photo content without the dataset (12 views of each photo in samples/: the same 24 photos on every
    machine) and generated colours: solid colours alone leave a random model's logits nearly tied, so an int8
    parity check on them is a coin toss."""
    folder = tmp_path_factory.mktemp("images")
    for sample in sorted((ROOT / "samples").glob("*.jpg")):
        for i, view in enumerate(photo_views(sample, 12)):
            view.save(folder / f"{sample.stem}-{i}.jpg", quality=90)
    for i, color in enumerate([(200, 30, 30), (20, 180, 60), (30, 30, 220), (240, 240, 240)]):
        (folder / f"gen{i}.png").write_bytes(image_bytes("PNG", size=(90, 120), color=color))
    return folder


# A two-stage network trained from scratch (5,606 weights): for tests of what a training run writes and how its
# model is served, where the network is beside the point. Tracing the pretrained EfficientNet-Lite0 for one step
# takes longer than training this one; the tests that need Lite0 itself say so.
SMALL_NETWORK = ("--backbone", "none", "--widths", "8,16", "--blocks", "1,1")


def run_tool(module: str, *args, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m <module> ARGS...`` from the repository's root, as a user runs it: exit code, stdout and stderr
    as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def run_main(main: Callable[[list[str]], int], capsys, *args) -> tuple[int, str, str]:
    """A lab command's ``main`` in this process, which has Keras loaded already: exit code, stdout and stderr.
    Each command also runs once as ``python -m`` (run_tool), as a user types it."""
    code = main([str(a) for a in args])
    printed = capsys.readouterr()
    return code, printed.out, printed.err

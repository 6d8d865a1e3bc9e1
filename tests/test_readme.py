"""The README's sample answers are what the committed model answers: each ```json block that follows a
`python -m cli` command is that command's output, rerun here (so a new model cannot leave them stale)."""

import json
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()
# a ```bash block whose one command runs the CLI, then the ```json block with its output
SAMPLES = re.findall(r"```bash\n\.venv/bin/python -m cli ([^\n]+)\n```\n```json\n(.*?)\n```", README, re.S)


def test_the_readme_has_cli_samples_and_they_need_only_the_repository():
    assert len(SAMPLES) >= 2
    for args, _ in SAMPLES:
        source = shlex.split(args)[0]
        assert source.startswith("samples/") and (ROOT / source).is_file(), source


@pytest.mark.parametrize("args, shown", SAMPLES, ids=[a for a, _ in SAMPLES])
def test_readme_sample_output_is_current(args, shown):
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *shlex.split(args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    actual, expected = json.loads(proc.stdout), json.loads(shown)
    assert list(actual) == list(expected), "labels or their order changed: update the README"
    for label, score in expected.items():
        assert actual[label] == pytest.approx(score, abs=1e-5), f"{label}: README {score}, model {actual[label]}"

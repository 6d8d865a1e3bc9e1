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


def _gcloud_commands(text: str) -> list[list[str]]:
    """Every `gcloud ...` command in the README's bash blocks, continuation lines joined, as arguments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("gcloud "):
                commands.append(shlex.split(line, comments=True))
    return commands


def test_the_storage_trigger_deploy_command_works_for_any_bucket_location():
    """The Cloud Storage trigger: the bucket's location stated (else a bucket outside the function's region fails
    the deploy), its concurrency stated, and the one-time grants Eventarc needs, as the README types them."""
    commands = _gcloud_commands(README)
    (deploy,) = [c for c in commands if c[:3] == ["gcloud", "functions", "deploy"] and "classify_upload" in c]
    assert "--trigger-bucket" in deploy and "--trigger-location" in deploy and "--retry" in deploy
    assert deploy[deploy.index("--concurrency") + 1] == "1"
    grants = {
        next(a.split("=", 1)[1] for a in c if a.startswith("--role=")): next(a for a in c if a.startswith("--member="))
        for c in commands
        if c[:3] == ["gcloud", "projects", "add-iam-policy-binding"]
    }
    assert "gcloud storage service-agent" in grants["roles/pubsub.publisher"]
    assert grants["roles/eventarc.eventReceiver"] == grants["roles/run.invoker"]
    assert "compute@developer.gserviceaccount.com" in grants["roles/run.invoker"]


def test_an_iam_function_urls_callers_are_told_both_permissions():
    """Since AWS's 2025 change a Function URL with AWS_IAM auth checks lambda:InvokeFunctionUrl and
    lambda:InvokeFunction: a caller allowed only the first gets 403."""
    (row,) = [line for line in README.splitlines() if line.startswith("| `url-iam` |")]
    assert "`lambda:InvokeFunctionUrl`" in row and "`lambda:InvokeFunction`" in row

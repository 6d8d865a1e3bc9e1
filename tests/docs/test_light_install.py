"""The light install the README offers (the function's own requirements, nothing of the development install) runs
the command line as typed: its commands are read from the README and run in a scratch folder, the venv there."""

import json
import shutil
import subprocess
import sys

from tests.docs.docs import README, bash_commands, text
from tests.helpers import ROOT

HEAVY = ("tensorflow", "torch", "pytest", "functions_framework", "boto3")


def test_the_light_install_classifies_the_sample(tmp_path):
    commands = [c for c in bash_commands(text(README)) if ".venv-light" in c]
    assert len(commands) == 2, commands  # make the venv and install; classify
    for folder in ("cli", "core", "lab", "model", "samples"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    install = commands[0].replace("python3 ", f"{sys.executable} ", 1)
    done = subprocess.run(install, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = subprocess.run(commands[1], shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-3000:]
    scores = json.loads(answer.stdout)
    assert list(scores)[0] == "pants" and len(scores) == 3
    python = tmp_path / ".venv-light" / "bin" / "python"
    probe = f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"

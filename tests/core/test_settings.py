"""Every setting's validation, by iterating over the settings' fields (a new field is covered without a new
test): a value it must refuse is refused by name, with what it accepts; its default is valid."""

import dataclasses

import pytest

from core.settings import Settings

# Values some setting refuses: not a number, not finite, zero, negative, not a flag, not a level, not a network.
BAD_VALUES = ("nan", "0", "-1", "ture", "verbose", "not-a-network", "1.5")
# Fields whose every value parses: the manifest path is checked when the model loads (a 500 naming the file).
ANY_VALUE = {"manifest_path"}


@pytest.mark.parametrize("spec", dataclasses.fields(Settings), ids=lambda spec: spec.metadata["variable"])
def test_every_setting_refuses_a_bad_value_by_name(monkeypatch, spec):
    variable = spec.metadata["variable"]
    for name in (other.metadata["variable"] for other in dataclasses.fields(Settings)):
        monkeypatch.delenv(name, raising=False)
    assert getattr(Settings.from_env(), spec.name) == spec.default  # unset: the default, which is valid
    refused = []
    for value in BAD_VALUES:
        monkeypatch.setenv(variable, value)
        try:
            Settings.from_env()
        except ValueError as error:
            message = str(error)
            assert variable in message, message
            assert spec.metadata["accepts"] in message or "is invalid" in message, message
            refused.append(value)
    if spec.name in ANY_VALUE:
        assert not refused
    else:
        assert refused, f"{variable} accepted every one of {BAD_VALUES}"


def test_a_misspelled_setting_is_named_with_the_closest_known_one():
    warnings = Settings.unknown_variables({"MODEL_MANIFST": "x.json", "FETCH_TIMEOUT": "3", "PATH": "/bin"})
    assert warnings == [
        "environment variable FETCH_TIMEOUT is not a setting of this service and is ignored; "
        "did you mean FETCH_TOTAL_TIMEOUT?",
        "environment variable MODEL_MANIFST is not a setting of this service and is ignored; "
        "did you mean MODEL_MANIFEST?",
    ]
    known = {spec.metadata["variable"]: "1" for spec in dataclasses.fields(Settings)}
    assert Settings.unknown_variables(known) == []


def test_the_command_line_warns_about_a_misspelled_setting_and_a_relative_manifest_says_where(tmp_path):
    """As a user meets it: the process's own stderr, the default model still answering."""
    import json
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT, SAMPLE

    env = {**os.environ, "MODEL_MANIFST": "other.json"}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", str(SAMPLE)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "pants" in json.loads(proc.stdout), proc.stderr
    assert "MODEL_MANIFST is not a setting of this service and is ignored; did you mean MODEL_MANIFEST?" in proc.stderr
    env = {**os.environ, "MODEL_MANIFEST": "nowhere/model.json", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", str(SAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and f"(a relative path: looked for in {tmp_path})" in proc.stdout + proc.stderr

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

"""Every public name has a numpydoc docstring with Parameters and Examples (doctests run)."""

import inspect

import pytest

import sklaudio

PUBLIC = [name for name in sklaudio.__all__ if not name.startswith("__")]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_docstrings(name):
    doc = inspect.getdoc(getattr(sklaudio, name)) or ""
    assert "Parameters\n----------" in doc, f"{name} has no Parameters section"
    assert "Examples\n--------" in doc and ">>> " in doc, f"{name} has no Examples section"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_are_in_the_api_reference(name):
    from pathlib import Path

    api = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text()
    obj = getattr(sklaudio, name)
    module = obj.__module__.removeprefix("sklaudio.")
    assert f"{module}.{name}" in api, f"{module}.{name} is missing from docs/api.rst"

"""Every example runs, in its fast mode (SKLAUDIO_EXAMPLES_FAST=1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_examples_are_found():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(path, tmp_path):
    if "matplotlib" in path.read_text():
        pytest.importorskip("matplotlib")
    env = {**os.environ, "SKLAUDIO_EXAMPLES_FAST": "1", "MPLBACKEND": "Agg"}
    env.pop("SKLAUDIO_ESC10", None)
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example should print what it found"

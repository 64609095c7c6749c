import re
import subprocess
import sys
from pathlib import Path

import pytest

from sklaudio.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_demo_prints_per_fold_accuracy(capsys):
    assert (
        main(
            [
                "demo",
                "--n-samples",
                "60",
                "--n-classes",
                "3",
                "--n-folds",
                "3",
                "--duration",
                "0.5",
                "--sample-rate",
                "8000",
                "--epochs",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    folds = re.findall(r"^\s+(\d)\s+(\d\.\d{3})\s+(\d\.\d{3})$", out, flags=re.M)
    assert [f[0] for f in folds] == ["1", "2", "3"]
    assert all(0.0 <= float(a) <= 1.0 for f in folds for a in f[1:])
    floor, _ = map(float, re.search(r"mean\s+(\d\.\d{3})\s+(\d\.\d{3})", out).groups())
    assert floor > 1 / 3  # well above chance on separable synthetic classes
    assert "NPID pre-training" in out


def test_demo_quiet_prints_nothing(capsys):
    assert (
        main(
            [
                "demo",
                "--quiet",
                "--n-samples",
                "30",
                "--n-classes",
                "3",
                "--n-folds",
                "3",
                "--duration",
                "0.5",
                "--sample-rate",
                "8000",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""


def test_bad_arguments_exit_non_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--duration", "-1"])
    assert info.value.code == 2
    assert "must be a positive number" in capsys.readouterr().err
    assert main(["demo", "--n-samples", "2", "--n-classes", "5"]) == 1
    assert "n_samples" in capsys.readouterr().err
    assert main([]) == 2


def test_console_script_help():
    result = subprocess.run(
        [sys.executable, "-m", "sklaudio.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--n-samples" in result.stdout


def test_readme_opens_with_the_two_commands_ci_runs():
    readme = (REPO / "README.md").read_text().splitlines()
    fence = readme.index("```bash")
    assert readme[fence + 1].endswith("sklaudio demo")
    assert readme[fence + 2].startswith('pip install ".[test]"')
    assert "pytest" in readme[fence + 2]
    assert "grep -m1 '^pip install \".\\[test\\]\"' README.md" in (REPO / ".ci" / "run").read_text()

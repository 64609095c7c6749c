"""The code of the user guide (docs/*.rst) and README.md runs as written.

Every Python block (``.. code-block:: python``, ``::`` literal blocks that are Python,
README ```python fences) is executed unchanged, in order, one namespace per page, in a
fresh working directory that holds small synthetic stand-ins of the corpora at the paths
the docs use (``path/to/esc10``, ``path/to/UrbanSound8K``, ``UrbanSound8K``). Blocks that
need a GPU, a cluster or long training are skipped with the reason. Every ``sklaudio``
command the docs show is parsed by the real argument parser.
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sklaudio.cli import build_parser
from sklaudio.datasets import make_sounds

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ("getting_started", "npid", "finetune", "afp", "datasets", "reliability", "scaling")
PAGES = ["README.md", *(f"docs/{name}.rst" for name in GUIDE)]
SHELL_START = ("pip ", "sklaudio ", "python -m ", "accelerate ", "torchrun ", "tox ")

# A block is skipped when it contains the marker; everything else runs unchanged.
SKIP = {
    "README.md": {
        "FrozenEstimator(embedder)": "pre-trains NPID for 200 epochs (~25 s on 2 cores)",
        "FineTunedClassifier(embedder=embedder": (
            "uses NPIDEmbedder, imported by the (skipped) snippet before it"
        ),
    },
    "docs/npid.rst": {
        'backbone="esresnet50"': "pre-trains ESResNet-50 for 200 epochs on ESC-10",
        'set_params(output="stats")': "pre-trains NPID for 200 epochs on ESC-10",
    },
    "docs/finetune.rst": {
        "scratch_per_fold, dls_per_fold = []": "fine-tunes ten classifiers (~30 s on 2 cores)",
    },
    "docs/afp.rst": {
        "AFPPairLossEmbedder(": "trains the AFP ConvLSTM on ESC-10 (minutes on a CPU)",
    },
    "docs/reliability.rst": {
        "max_epochs=200": "pre-trains NPID for 200 epochs",
        'save(emb, "npid.pt")': "needs the model of the (skipped) snippet before it",
    },
    "docs/scaling.rst": {
        'backbone="esresnet50"': "pre-trains ESResNet-50 (a GPU run)",
        "Accelerator(": "a script for accelerate launch / torchrun on several GPUs",
        'Client("scheduler-address:8786")': "needs a running dask scheduler",
        "SLURMCluster": "needs dask-jobqueue / dask-kubernetes and a batch system",
        "iterator_train__num_workers": "pre-trains NPID for 200 epochs on UrbanSound8K",
    },
}


def _rst_blocks(text: str):
    """(line, language, code) of every code-block directive and ``::`` literal block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        directive = re.match(r"\.\. code-block::\s*(\S+)", stripped)
        if directive:
            language = directive.group(1)
        elif stripped.endswith("::") and not stripped.startswith(".."):
            language = "literal"
        else:
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        j = i + 1
        body = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            body.append(lines[j])
            j += 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        if language == "literal":
            language = "shell" if code.startswith(SHELL_START) else "python"
        yield i + 1, language, code
        i = j


def _md_blocks(text: str):
    for match in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.M | re.S):
        yield text[: match.start()].count("\n") + 1, match.group(1), match.group(2)


def _blocks(page: str):
    text = (ROOT / page).read_text()
    return list(_md_blocks(text) if page.endswith(".md") else _rst_blocks(text))


def _python_blocks(page: str):
    return [(line, code) for line, language, code in _blocks(page) if language == "python"]


CASES = [(page, line) for page in PAGES for line, _ in _python_blocks(page)]


def _skip_reason(page: str, code: str) -> str | None:
    reasons = [why for marker, why in SKIP.get(page, {}).items() if marker in code]
    return reasons[0] if reasons else None


def test_every_page_has_python_blocks_and_every_skip_marker_matches():
    for page in PAGES:
        codes = [code for _, code in _python_blocks(page)]
        assert codes, f"no Python block found in {page}"
        for marker in SKIP.get(page, {}):
            assert any(marker in code for code in codes), f"{page}: no block holds {marker!r}"


@pytest.mark.parametrize("page,line", CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_python_block_parses(page, line):
    code = dict(_python_blocks(page))[line]
    ast.parse(code, filename=f"{page}:{line}")


# --- stand-in corpora -------------------------------------------------------------------

_US8K_CLASSES = ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling"]
_ESC10_CLASSES = ["Dog bark", "Rain", "Sea waves", "Baby cry", "Clock tick"]


def _write_urbansound8k(root: Path):
    """UrbanSound8K's layout: 20 readable clips, one empty file, one with NaN samples."""
    sounds = make_sounds(n_samples=20, n_classes=5, sample_rate=16000, n_folds=10, random_state=0)
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    clips = [
        (f"{100 + i}-{y}-0-0.wav", y, f)
        for i, (y, f) in enumerate(zip(sounds.target, sounds.folds))
    ]
    clips += [("998-0-0-0.wav", 0, 1), ("999-1-0-0.wav", 1, 2)]
    for i, (name, label, fold) in enumerate(clips):
        folder = root / "audio" / f"fold{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        if name.startswith("998"):
            (folder / name).touch()  # the loader leaves it out
        elif name.startswith("999"):
            bad = np.zeros(8000, dtype=np.float32)
            bad[10] = np.nan  # a valid header: only decoding (read_corpus) drops it
            sf.write(folder / name, bad, 16000, subtype="FLOAT")
        else:
            sf.write(folder / name, sounds.data[i], 16000)
        rows.append(f"{name},{name.split('-')[0]},0,1,1,{fold},{label},{_US8K_CLASSES[label]}")
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")


def _write_esc10(root: Path):
    """The original ESC-10 layout ('NNN - Class name'/F-ID-T.ogg), 20 short clips."""
    sounds = make_sounds(n_samples=20, n_classes=5, sample_rate=44100, random_state=1)
    for i, (x, label, fold) in enumerate(zip(sounds.data, sounds.target, sounds.folds)):
        folder = root / f"{label + 1:03d} - {_ESC10_CLASSES[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{fold}-{100000 + i}-A.ogg", x, 44100)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    _write_urbansound8k(root / "UrbanSound8K")
    _write_esc10(root / "esc10")
    return root


class _Page:
    """Runs a page's blocks in order in one namespace and one working directory."""

    def __init__(self, page: str, workdir: Path):
        self.page, self.workdir = page, workdir
        self.blocks = _python_blocks(page)
        self.namespace: dict = {"__name__": "__doc_snippet__"}
        self.done = 0
        self.warned: dict[int, list[str]] = {}  # the warnings of each block run

    def run_through(self, line: int):
        """Run the blocks up to ``line`` that have not run yet (a block's test may come
        after a later block ran it: pytest's order is not guaranteed)."""
        for index, (block_line, code) in enumerate(self.blocks):
            if index < self.done:
                continue
            if _skip_reason(self.page, code) is None:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    exec(compile(code, f"{self.page}:{block_line}", "exec"), self.namespace)
                self.warned[block_line] = [str(w.message) for w in caught]
            self.done = index + 1
            if block_line == line:
                return


@pytest.fixture(scope="module")
def pages(corpora, tmp_path_factory):
    made: dict[str, _Page] = {}

    def get(page: str) -> _Page:
        if page not in made:
            workdir = tmp_path_factory.mktemp(Path(page).stem)
            shutil.copytree(corpora / "UrbanSound8K", workdir / "UrbanSound8K")
            shutil.copytree(corpora / "UrbanSound8K", workdir / "path/to/UrbanSound8K")
            shutil.copytree(corpora / "esc10", workdir / "path/to/esc10")
            made[page] = _Page(page, workdir)
        return made[page]

    return get


def _check_claims(page: str, line: int, ns: dict, workdir: Path):
    """What the prose and the comments say about the block just run."""
    code = dict(_python_blocks(page))[line]
    if "read_corpus(" in code:  # the two files of the stand-in are left out, fields aligned
        bunch = ns.get("bunch", ns.get("us8k"))
        reasons = dict(bunch.skipped)
        assert len(reasons) == 2 and any("empty" in r for r in reasons.values())
        assert any("NaN" in r for r in reasons.values())
        assert len(ns["waves"]) == len(bunch.filenames) == len(bunch.target) == len(bunch.folds)
    if 'directory="sounds"' in code:
        assert len(list((workdir / "sounds").glob("*.wav"))) == 200
    if 'clf.history_[:, "valid_acc"]' in code:
        assert len(ns["clf"].history_[:, "valid_acc"]) == 10
    if "load_esc10(" in code and "esc10" in ns:
        assert len(ns["esc10"].filenames) == 20 and set(ns["esc10"].folds) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("page,line", CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_python_block_runs(page, line, pages, monkeypatch):
    code = dict(_python_blocks(page))[line]
    reason = _skip_reason(page, code)
    if reason:
        pytest.skip(reason)
    runner = pages(page)
    monkeypatch.chdir(runner.workdir)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runner.run_through(line)
    if "on_error=" in code:  # "warn with the list": both unreadable stand-in files are named
        messages = " ".join(runner.warned[line])
        assert "998-0-0-0.wav" in messages and "999-1-0-0.wav" in messages
    _check_claims(page, line, runner.namespace, runner.workdir)


# --- shell commands ---------------------------------------------------------------------


def _sklaudio_commands():
    """Whole commands from shell blocks, and inline ``sklaudio ...`` fragments."""
    whole, fragments = [], []
    for page in PAGES:
        for line, language, code in _blocks(page):
            if language in ("bash", "shell", "sh"):
                for command in re.split(r"&&|\n", code):
                    command = command.split("#")[0].strip()
                    if command.startswith("sklaudio "):
                        whole.append((f"{page}:{line}", command))
        text = (ROOT / page).read_text()
        for fragment in re.findall(r"``(sklaudio [^`]+)``", text):
            fragments.append((page, " ".join(fragment.split())))
    return whole, fragments


WHOLE, FRAGMENTS = _sklaudio_commands()


def test_commands_are_found():
    assert len(WHOLE) >= 7 and len(FRAGMENTS) >= 3


@pytest.mark.parametrize("where,command", WHOLE, ids=[c for _, c in WHOLE])
def test_shell_command_parses(where, command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.command == shlex.split(command)[1]


@pytest.mark.parametrize("where,command", FRAGMENTS, ids=[c for _, c in FRAGMENTS])
def test_inline_command_options_exist(where, command):
    words = shlex.split(command)[1:]
    sub = build_parser()._subparsers._group_actions[0].choices[words[0]]
    known = {option for action in sub._actions for option in action.option_strings}
    unknown = [w for w in words if w.startswith("--") and w not in known]
    assert not unknown, f"{where}: sklaudio {words[0]} has no option {unknown}"


@pytest.mark.parametrize("command", ["demo", "pretrain", "evaluate", "embed"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0 and "usage: sklaudio" in capsys.readouterr().out

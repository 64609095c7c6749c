"""A folder of audio files, one sub-folder per class: the corpus of your own recordings."""

from __future__ import annotations

import os
import re
import unicodedata
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import Bunch

from sklaudio._warnings import warn_user
from sklaudio.datasets._base import make_dataset_bunch, require_directory
from sklaudio.io import list_audio_files

__all__ = ["load_folder"]

_LAYOUT = """ROOT/
  dog/    a.wav b.flac ...      one sub-folder per class (its name is the label)
  rain/   c.wav ...
  (or audio files directly in ROOT: unlabelled, for pre-training)"""


# ESC's layout: "001 - Dog bark/1-100032-A.ogg" (fold-source clip id-take[-class])
_ESC_FOLDER = re.compile(r"^\d{3}\s+[-\u2013\u2014]\s+\S")
_ESC_CLIP = re.compile(r"^[1-5]-\d+-[A-Z](-\d+)?\.")
_US8K_FOLDER = re.compile(r"^fold(10|[1-9])$")


def _warn_if_known_corpus(root, names, files) -> None:
    """Stratified folds of a corpus that has official ones put clips cut from one recording
    on both sides: say which loader keeps them apart."""
    esc = all(_ESC_FOLDER.match(n) for n in names) and all(
        _ESC_CLIP.match(os.path.basename(f)) for f in files
    )
    if esc:
        warn_user(
            f"{os.fspath(root)!r} looks like ESC-10 / ESC-50 (class folders 'NNN - Name', clips "
            "named FOLD-ID-TAKE): load_esc10 / load_esc50 (sklaudio --dataset esc10 or "
            "esc50) give its official folds, which keep the clips of one recording together; "
            "the stratified folds made here do not"
        )
    elif names and all(_US8K_FOLDER.match(n) for n in names):
        warn_user(
            f"{os.fspath(root)!r} looks like UrbanSound8K's audio folder: its sub-folders are "
            "folds, not classes. load_urbansound8k (sklaudio --dataset urbansound8k) on the "
            "folder above reads the classes and official folds from its metadata"
        )


def _warn_linked_files(root, files) -> None:
    """Two paths to one file (a symbolic or hard link) make one clip count twice, and can
    put it on both sides of a fold; content-addressed stores (git-annex, DVC) link equal
    files to one blob on purpose, so this is said, not refused."""
    seen, twins = {}, []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            continue  # a broken link: the reader names it
        if not st.st_ino:  # a file system without inode numbers: nothing to compare
            continue
        other = seen.setdefault((st.st_dev, st.st_ino, st.st_size), f)
        if other != f:
            twins.append((other, f))
    if twins:
        first, second = (os.path.relpath(p, root) for p in twins[0])
        warn_user(
            f"{len(twins)} file(s) of {os.fspath(root)!r} are links to a file listed under "
            f"another name (e.g. {first!r} and {second!r}): each counts as a clip, and the "
            "two may fall in different folds; remove the duplicates unless they are meant"
        )


def _warn_unicode_twins(root, names) -> None:
    """Two class folders whose names differ only in Unicode normalisation ('café' as one
    code point, NFC, or as 'e' and a combining accent, NFD: macOS and Linux tools write
    either) look like one name but make two classes."""
    forms: dict[str, list[str]] = {}
    for name in names:
        forms.setdefault(unicodedata.normalize("NFC", name), []).append(name)
    twins = [group for group in forms.values() if len(group) > 1]
    if not twins:
        return

    def spelled(name):
        form = next((f for f in ("NFC", "NFD") if unicodedata.normalize(f, name) == name), "")
        return f"{name!r} ({form + ', ' if form else ''}{name!a})"

    shown = "; ".join(" and ".join(spelled(n) for n in group) for group in twins[:5])
    warn_user(
        f"{len(twins)} pair(s) of class folders of {os.fspath(root)!r} have names that "
        f"differ only in Unicode normalisation: {shown}. They look alike but become "
        "separate classes; merge each pair into one folder (a copy between macOS and "
        "another system can write a name either way)"
    )


def load_folder(
    root: str | os.PathLike,
    n_folds: int = 5,
    random_state: int = 0,
    on_error: str = "raise",
    *,
    labelled: bool = True,
) -> Bunch:
    """Load a folder of audio files whose sub-folders name the classes.

    Files directly in ``root`` make an unlabelled corpus (``target`` and
    ``folds`` are None), enough for pre-training. With class folders, the
    clips are split into ``n_folds`` stratified folds (deterministic for a
    given ``random_state``) so that official-fold tools work unchanged.
    Stratified folds can put clips cut from one recording on both sides; a
    folder laid out as ESC-10/ESC-50 or as UrbanSound8K's ``audio`` folder
    gets a warning naming the loader with the official folds. Sub-folders
    without audio files (not classes), two paths to one file (a link: one
    clip counted twice) and class folders whose names differ only in Unicode
    normalisation (``'café'`` written as NFC and as NFD: two classes) are
    warned about.

    Parameters
    ----------
    root : str or path-like
    n_folds : int, default=5
    random_state : int, default=0
        Seeds the fold assignment.
    on_error : {'raise', 'skip'}, default='raise'
        Unreadable files raise, or are left out with a warning.
    labelled : bool, default=True
        ``False`` reads every audio file below ``root`` as one unlabelled
        corpus, whatever the layout (``target`` and ``folds`` are None): what
        pre-training needs, with no folds to make and no class folders to check.

    Returns
    -------
    Bunch
        ``filenames``, ``target`` (int), ``target_names``, ``folds`` (1..n_folds),
        ``DESCR``.

    Examples
    --------
    >>> import tempfile
    >>> from sklaudio.datasets import load_folder, make_sounds
    >>> root = tempfile.mkdtemp()
    >>> sounds = make_sounds(n_samples=20, n_classes=2, sample_rate=8000, random_state=0,
    ...                      directory=root)
    >>> import os, shutil
    >>> for path, label in zip(sounds.filenames, sounds.target):
    ...     os.makedirs(os.path.join(root, sounds.target_names[label]), exist_ok=True)
    ...     _ = shutil.move(path, os.path.join(root, sounds.target_names[label]))
    >>> bunch = load_folder(root, n_folds=2)
    >>> len(bunch.filenames), sorted(set(bunch.folds.tolist()))
    (20, [1, 2])
    """
    if not isinstance(n_folds, Integral) or isinstance(n_folds, bool) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    root = require_directory(root, "audio folder", _LAYOUT)  # absolute, as other loaders
    files = list_audio_files(root)
    if not files:
        raise FileNotFoundError(f"no audio file below {os.fspath(root)!r}; expected:\n{_LAYOUT}")
    labels = [
        Path(f).relative_to(root).parts[0] if len(Path(f).relative_to(root).parts) > 1 else None
        for f in files
    ]
    if not labelled or all(label is None for label in labels):  # (pre-training: a
        # duplicate costs nothing)
        bunch = make_dataset_bunch(
            filenames=files,
            target=np.zeros(len(files)),
            target_names=[],
            folds=np.zeros(len(files)),
            descr=f"Unlabelled audio files in {os.fspath(root)}",
            on_error=on_error,
            layout=_LAYOUT,
        )
        bunch.target = bunch.folds = None
        return bunch
    if any(label is None for label in labels):
        loose = [f for f, label in zip(files, labels) if label is None][:3]
        raise ValueError(
            f"{os.fspath(root)!r} mixes files in class folders with files outside any ({loose}); "
            f"move them into a class folder. Expected:\n{_LAYOUT}"
        )
    names = sorted(set(labels))
    real = {}
    for name in names:  # a linked class folder must not repeat another class's clips
        other = real.setdefault(os.path.realpath(root / name), name)
        if other != name:
            raise ValueError(
                f"the class folders {other!r} and {name!r} of {os.fspath(root)!r} are the same "
                "folder (a symbolic link); keep one of them"
            )
    _warn_linked_files(root, files)
    _warn_unicode_twins(root, names)
    _warn_if_known_corpus(root, names, files)
    empty = sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".") and entry.name not in names
    )
    if empty:
        warn_user(
            f"{len(empty)} sub-folder(s) of {os.fspath(root)!r} hold no audio file and are "
            f"not classes: {empty[:10]}{' ...' if len(empty) > 10 else ''} (an unfinished copy?)"
        )
    target = np.searchsorted(names, labels)
    if n_folds > len(files):
        raise ValueError(
            f"n_folds={n_folds} is more than the {len(files)} clips in {os.fspath(root)!r}"
        )
    if len(names) < 2 or np.bincount(target).min() < n_folds:
        if len(names) >= 2:
            small = {n: int(c) for n, c in zip(names, np.bincount(target)) if c < n_folds}
            warn_user(
                f"{len(small)} class(es) of {os.fspath(root)!r} have fewer than "
                f"n_folds={n_folds} clips ({dict(list(small.items())[:10])}): the folds are "
                "not stratified but dealt in turn; lower n_folds for stratified folds",
            )
        folds = np.arange(len(files)) % n_folds + 1
    else:
        folds = np.zeros(len(files), dtype=np.int64)
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
        for fold, (_, test) in enumerate(splitter.split(files, target), start=1):
            folds[test] = fold
    return make_dataset_bunch(
        filenames=files,
        target=target,
        target_names=names,
        folds=folds,
        descr=f"Audio files in {os.fspath(root)}, one class per folder, {n_folds} stratified folds",
        on_error=on_error,
        layout=_LAYOUT,
    )

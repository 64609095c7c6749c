"""DCASE 2013 acoustic scene classification (Stowell et al., 2015)."""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
from pathlib import Path

from sklearn.utils import Bunch

from sklaudio._warnings import warn_user
from sklaudio.datasets._base import check_on_error, make_dataset_bunch, require_directory

__all__ = ["load_dcase2013_scenes"]

DCASE2013_SCENES_DESCR = """\
DCASE 2013 acoustic scene classification
----------------------------------------

Binaural 30-second recordings (WAV, stereo, 44.1 kHz, 16 bit) made around London in 2012,
10 scenes: bus, busystreet, office, openairmarket, park, quietstreet, restaurant,
supermarket, tube and tubestation. The public development set and the evaluation set,
released after the challenge, hold 10 recordings per scene each. sklaudio uses them as two
folds: fold 1 is the development set, fold 2 the evaluation set.

Citation: D. Stowell, D. Giannoulis, E. Benetos, M. Lagrange and M. D. Plumbley.
Detection and Classification of Acoustic Scenes and Events. IEEE Transactions on
Multimedia 17(10), 1733-1746, 2015. doi:10.1109/TMM.2015.2428998
License: see the terms on the archive.org records of the two sets
(https://archive.org/details/dcase2013_scene_classification and
https://archive.org/details/dcase2013_scene_classification_testset).
Task page: https://dcase.community/challenge2013/task-acoustic-scene-classification
"""

DCASE2013_SCENES_LAYOUT = """\
  ROOT/scenes_stereo/bus01.wav ...           development set (scenes_stereo.zip), fold 1
  ROOT/scenes_stereo_testset/bus01.wav ...   evaluation set (scenes_stereo_testset.zip), fold 2
or ROOT/development/*.wav and ROOT/evaluation/*.wav, or dcase_util's folders:
  ROOT/DCASE2013-acoustic-scenes-development/scenes_stereo/bus01.wav ...
  ROOT/DCASE2013-acoustic-scenes-evaluation/audio/test_bus01.wav ...
The label of a recording is the alphabetic prefix of its file name (bus01.wav -> 'bus';
a 'test_' prefix is ignored)."""

# dcase_util's folders (its DCASE2013_Scenes_DevelopmentSet and _EvaluationSet): the
# development archive unpacked as it is, the evaluation files moved to audio/ and renamed
# test_*.wav (so that their names differ from the development set's)
_DCASE_UTIL_DIRS = {
    "development": "DCASE2013-acoustic-scenes-development/scenes_stereo",
    "evaluation": "DCASE2013-acoustic-scenes-evaluation/audio",
}
# Where each set may be: the archives' own folder names, the same folder unpacked into a
# folder of its name (as "extract here" tools do), plain names, or dcase_util's folders.
_SUBSET_DIRS = {
    name: (archive, name, _DCASE_UTIL_DIRS[name])
    for name, archive in (
        ("development", "scenes_stereo"),
        ("evaluation", "scenes_stereo_testset"),
    )
}
# ROOT may also be dcase_util's evaluation folder itself: its audio/ holds test_*.wav
_DCASE_UTIL_EVALUATION_AUDIO = "audio"
_SUBSET_FOLD = {"development": 1, "evaluation": 2}
_SUBSET_ARCHIVE = {
    "development": "scenes_stereo.zip from "
    "https://archive.org/details/dcase2013_scene_classification",
    "evaluation": "scenes_stereo_testset.zip from "
    "https://archive.org/details/dcase2013_scene_classification_testset",
}
_SUBSETS = ("all", "development", "evaluation")
DCASE2013_SCENES = (
    "bus",
    "busystreet",
    "office",
    "openairmarket",
    "park",
    "quietstreet",
    "restaurant",
    "supermarket",
    "tube",
    "tubestation",
)
_SCENE_LABEL = re.compile(r"^(?:test_)?([a-z]+)", re.IGNORECASE)


def _wav_files(folder: Path) -> list[Path]:
    # Not recursive: zips made on macOS carry __MACOSX/._bus01.wav resource forks.
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")
    )


def _find_subset(root: Path, subset: str) -> Path | None:
    for name in _SUBSET_DIRS[subset]:
        folder = root / name
        if not folder.is_dir():
            continue
        leaf = Path(name).name
        if not _wav_files(folder) and (folder / leaf).is_dir():
            folder = folder / leaf
        return folder
    audio = root / _DCASE_UTIL_EVALUATION_AUDIO
    if subset == "evaluation" and audio.is_dir():
        # an 'audio' folder is the evaluation set only when dcase_util renamed its files
        if any(p.name.lower().startswith("test_") for p in _wav_files(audio)):
            return audio
    return None


# the copies a browser or a file manager makes: 'bus01 (1).wav', 'bus01(2).wav',
# 'bus01 copy.wav', 'bus01 copy 2.wav', 'bus01 - Copy.wav', 'bus01 - Copy (2).wav'
_COPY_NAME = re.compile(
    r"^(?P<original>.+?)(?:\s*\(\d+\)|(?:\s+-)?\s+copy(?:\s+\(?\d+\)?)?)$", re.IGNORECASE
)
_FINGERPRINT_BYTES = 1 << 16


def _fingerprint(path: str) -> tuple[int, bytes] | None:
    """The size and a hash of the first and last 64 KiB of a file (None when it cannot be
    read or is too short to say anything): files that differ almost always differ here."""
    try:
        size = os.path.getsize(path)
        if size < 1024:  # empty or a bare header: the loader names it, it is no recording
            return None
        with open(path, "rb") as f:
            digest = hashlib.blake2b(f.read(_FINGERPRINT_BYTES))
            if size > 2 * _FINGERPRINT_BYTES:
                f.seek(-_FINGERPRINT_BYTES, os.SEEK_END)
                digest.update(f.read())
    except OSError:
        return None
    return size, digest.digest()


def _warn_repeated_recordings(root: Path, paths, folds) -> None:
    """Warn about a recording that is in the copy twice: the same content under two
    names (in both sets it is trained and tested on), or a file named as a browser's or file
    manager's copy of another ('bus01 (1).wav'). Names alone cannot tell: the two
    official sets both name their recordings bus01.wav ... tubestation10.wav."""
    set_name = {1: "development", 2: "evaluation"}
    names = [os.path.relpath(p, root) for p in paths]
    # within one set, one name twice once a 'test_' prefix and a copy's suffix are removed
    by_name: dict[tuple[int, str], list[str]] = {}
    copies = set()
    for name, path, fold in zip(names, paths, folds):
        stem = Path(path).stem.lower()
        stem = stem[len("test_") :] if stem.startswith("test_") else stem
        match = _COPY_NAME.match(stem)
        if match:
            copies.add(name)
        by_name.setdefault((fold, match.group("original") if match else stem), []).append(name)
    groups = [
        sorted(group, key=lambda n: (n in copies, n))  # the original first
        for group in by_name.values()
        if len(group) > 1
    ]
    lone = sorted(copies - {name for group in groups for name in group})
    said = []
    if groups:
        shown = "; ".join(" and ".join(repr(n) for n in group) for group in groups[:5])
        more = f" and {len(groups) - 5} more" if len(groups) > 5 else ""
        said.append(
            f"{len(groups)} DCASE 2013 recording(s) are in one set under more than one name "
            "(a second download, a file manager's copy, a file renamed beside its original): "
            f"{shown}{more}"
        )
    if lone:
        more = f" and {len(lone) - 10} more" if len(lone) > 10 else ""
        said.append(f"{len(lone)} DCASE 2013 file(s) are named as copies: {lone[:10]}{more}")
    if said:
        warn_user(f"{'; '.join(said)}. Each file counts as a recording; remove the copies")
    by_print: dict[tuple[int, bytes], list[int]] = {}
    for i, path in enumerate(paths):
        fingerprint = _fingerprint(path)
        if fingerprint is not None:
            by_print.setdefault(fingerprint, []).append(i)
    same = []
    for group in by_print.values():
        first = group[0]
        for other in group[1:]:
            try:
                if filecmp.cmp(paths[first], paths[other], shallow=False):
                    same.append((first, other))
            except OSError:
                continue
    if same:
        shown = [
            f"{names[a]!r} ({set_name[folds[a]]}) and {names[b]!r} ({set_name[folds[b]]})"
            for a, b in same[:5]
        ]
        across = sum(folds[a] != folds[b] for a, b in same)
        leak = f"; {across} of them are in both sets, so trained and tested on" if across else ""
        warn_user(
            f"{len(same)} DCASE 2013 file(s) have the same content as another file: "
            f"{'; '.join(shown)}{' ...' if len(same) > 5 else ''}{leak}. Remove the copies "
            "(or restore the original file where a recording was overwritten)"
        )


def _warn_unknown_scenes(paths, labels) -> None:
    """Warn about a recording whose name is not one of the ten scenes (a stray
    ``notes.wav`` would be an eleventh class)."""
    unknown = [(p, label) for p, label in zip(paths, labels) if label not in DCASE2013_SCENES]
    if unknown:
        shown = ", ".join(f"{os.path.basename(p)} -> {label!r}" for p, label in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        warn_user(
            f"{len(unknown)} recording(s) are not named after one of the ten DCASE 2013 "
            f"scenes {list(DCASE2013_SCENES)} and become classes of their own: "
            f"{shown}{more}. Rename or remove them if they are not scenes"
        )


def _warn_scenes_in_one_set(labels, folds) -> None:
    """Warn about a scene that only one set holds (it is tested without being trained on,
    or the other way round); called with the clips kept, so a scene whose files
    ``on_error='skip'`` left out of one set counts as missing there."""
    by_set = {fold: {label for label, f in zip(labels, folds) if f == fold} for fold in (1, 2)}
    only_dev, only_eval = by_set[1] - by_set[2], by_set[2] - by_set[1]
    if only_dev or only_eval:
        sides = []
        if only_dev:
            sides.append(f"only the development set (fold 1) holds {sorted(only_dev)}")
        if only_eval:
            sides.append(f"only the evaluation set (fold 2) holds {sorted(only_eval)}")
        warn_user(
            f"the two DCASE 2013 sets do not hold the same scenes: {'; '.join(sides)}. A "
            "scene missing from one set is never trained on when the other is the test fold"
        )


def load_dcase2013_scenes(
    root: str | os.PathLike, on_error: str = "raise", *, subset: str = "all"
) -> Bunch:
    """Load a local copy of the DCASE 2013 acoustic scene classification data.

    The development set is fold 1 and the evaluation set fold 2, so
    ``PredefinedSplit(folds)`` trains on one and tests on the other, both ways.

    Accepted layouts (the first folder name that exists wins)::

        ROOT/scenes_stereo/bus01.wav ...          development set, fold 1
        ROOT/scenes_stereo_testset/bus01.wav ...  evaluation set, fold 2

    ``scenes_stereo.zip`` and ``scenes_stereo_testset.zip`` unpack to these
    folders; one more level of the same name (``scenes_stereo/scenes_stereo/``)
    is accepted too. ``ROOT/development/`` and ``ROOT/evaluation/`` may be
    used instead. So may the folders dcase_util's ``DCASE2013_Scenes_*Set``
    write under its data path::

        ROOT/DCASE2013-acoustic-scenes-development/scenes_stereo/bus01.wav ...
        ROOT/DCASE2013-acoustic-scenes-evaluation/audio/test_bus01.wav ...

    and, with ``subset='evaluation'``, dcase_util's evaluation folder itself
    (``ROOT/audio/test_*.wav``). A recording's label is the alphabetic prefix
    of its file name: ``bus01.wav`` is ``'bus'``, ``tubestation10.wav`` is
    ``'tubestation'``; a ``test_`` prefix (as dcase_util renames the
    evaluation files) is ignored.

    Parameters
    ----------
    root : str or path-like
        Folder holding the two sets.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with a recording that is empty or has no readable audio
        header (files are checked, never decoded). ``'raise'`` stops at the
        first one and names it; ``'skip'`` drops it from every array, warns with
        the list and records it in ``skipped``.
    subset : {'all', 'development', 'evaluation'}, default='all'
        Which sets to load. ``'all'`` requires both and raises an error naming
        the missing one; the folds of a single set are all 1 (development) or
        all 2 (evaluation).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames : ndarray of object (str), shape (n_recordings,)
            Absolute paths, sorted.
        target : ndarray of int64, shape (n_recordings,)
            Index into ``target_names``.
        target_names : list of str
            The ten scenes of the DCASE 2013 task, sorted alphabetically,
            whether or not this copy holds every one (then any other label
            found, sorted): sets loaded separately, or a partial copy, give
            each scene the same id.
        folds : ndarray of int64, shape (n_recordings,)
            1 for the development set, 2 for the evaluation set.
        skipped : list of (str, str)
            ``(path, reason)`` of the recordings left out by ``on_error='skip'``.
        DESCR : str
            Description, citation and license.

    Warns
    -----
    UserWarning
        When a file name does not start with one of the ten scenes (``notes.wav``
        would become a class of its own); when a recording is there twice: a
        file with the same content as another (in both sets, it is trained and
        tested on) or named as a copy (``bus01 (1).wav``, or ``bus01.wav``
        beside ``test_bus01.wav``); and, with ``subset='all'``, when a scene is in
        one set only (never trained on when the other is tested). The two
        official sets name their recordings alike (``bus01.wav`` in both), so a
        name in both sets is no copy.

    References
    ----------
    .. [1] D. Stowell, D. Giannoulis, E. Benetos, M. Lagrange and M. D. Plumbley,
       "Detection and Classification of Acoustic Scenes and Events", IEEE
       Transactions on Multimedia, 17(10), 2015.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from sklaudio.datasets import load_dcase2013_scenes
    >>> root, rng = tempfile.mkdtemp(), np.random.default_rng(0)
    >>> for folder in ("scenes_stereo", "scenes_stereo_testset"):
    ...     os.makedirs(os.path.join(root, folder))
    ...     for name in ("bus01.wav", "park03.wav"):
    ...         noise = 0.1 * rng.standard_normal((800, 2))  # two recordings never match
    ...         sf.write(os.path.join(root, folder, name), noise, 8000)
    >>> scenes = load_dcase2013_scenes(root)
    >>> scenes.target_names[:3], scenes.target.tolist(), scenes.folds.tolist()
    (['bus', 'busystreet', 'office'], [0, 4, 0, 4], [1, 1, 2, 2])
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}")
    check_on_error(on_error)
    root = require_directory(root, "DCASE 2013 scenes root", DCASE2013_SCENES_LAYOUT)
    wanted = ("development", "evaluation") if subset == "all" else (subset,)

    paths, labels, folds = [], [], []
    for name in wanted:
        folder = _find_subset(root, name)
        if folder is None:
            hint = (
                f"; pass subset='{'development' if name == 'evaluation' else 'evaluation'}' "
                "to load the other set alone"
                if subset == "all"
                else ""
            )
            raise FileNotFoundError(
                f"the DCASE 2013 {name} set is missing: none of "
                f"{[os.fspath(root / d) for d in _SUBSET_DIRS[name]]} is a folder. Unpack "
                f"{_SUBSET_ARCHIVE[name]} into {os.fspath(root)!r}{hint}. Expected layout:\n"
                f"{DCASE2013_SCENES_LAYOUT}"
            )
        files = _wav_files(folder)
        if not files:
            raise FileNotFoundError(
                f"the DCASE 2013 {name} folder {os.fspath(folder)!r} holds no .wav file; "
                f"expected layout:\n{DCASE2013_SCENES_LAYOUT}"
            )
        for path in files:
            match = _SCENE_LABEL.match(path.stem)
            if match is None:
                raise ValueError(
                    f"cannot read the scene label of {os.fspath(path)!r}: DCASE 2013 "
                    "recordings are named after their scene, like bus01.wav; rename or "
                    "remove the file"
                )
            paths.append(os.fspath(path))
            labels.append(match.group(1).lower())
            folds.append(_SUBSET_FOLD[name])

    _warn_unknown_scenes(paths, labels)
    _warn_repeated_recordings(root, paths, folds)
    # all ten scenes, whichever a copy holds: the development and evaluation sets loaded
    # one at a time (or a partial copy) number the scenes alike
    target_names = sorted(DCASE2013_SCENES) + sorted(set(labels) - set(DCASE2013_SCENES))
    class_id = {label: i for i, label in enumerate(target_names)}
    bunch = make_dataset_bunch(
        filenames=paths,
        target=[class_id[label] for label in labels],
        target_names=target_names,
        folds=folds,
        descr=DCASE2013_SCENES_DESCR,
        on_error=on_error,
        layout=DCASE2013_SCENES_LAYOUT,
    )
    if subset == "all":
        _warn_scenes_in_one_set([target_names[t] for t in bunch.target], bunch.folds.tolist())
    return bunch

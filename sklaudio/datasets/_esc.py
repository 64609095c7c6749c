"""ESC-50 and its ESC-10 subset (Piczak, 2015)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sklearn.utils import Bunch

from sklaudio._warnings import warn_user
from sklaudio.datasets._base import (
    class_names_by_id,
    make_dataset_bunch,
    metadata_subset_hint,
    parse_bool,
    parse_int,
    read_index_csv,
    require_directory,
    warn_unlisted_audio,
)
from sklaudio.io import AUDIO_EXTENSIONS, list_audio_files

__all__ = ["load_esc10", "load_esc50"]

_CITATION = (
    "K. J. Piczak. ESC: Dataset for Environmental Sound Classification. Proceedings of the "
    "23rd Annual ACM Conference on Multimedia, Brisbane, Australia, 2015. "
    "doi:10.1145/2733373.2806390"
)

ESC50_DESCR = f"""\
ESC-50: environmental sound classification
------------------------------------------

2000 five-second clips (44.1 kHz, mono) of 50 classes, 40 clips each, loosely grouped
into animals, natural soundscapes, human non-speech sounds, domestic sounds and urban
noises. The clips are cut from Freesound recordings and pre-arranged into 5 folds so that
clips from one source recording share a fold; report accuracy over these folds.

Citation: {_CITATION}
License: Creative Commons Attribution-NonCommercial 3.0 (CC BY-NC); the ESC-10 subset
is CC BY. Per-clip attributions are in the corpus' LICENSE file.
Home page: https://github.com/karolpiczak/ESC-50
"""

ESC10_DESCR = f"""\
ESC-10: environmental sound classification, 10 classes
------------------------------------------------------

400 five-second clips of 10 classes (dog bark, rain, sea waves, baby cry, clock tick,
person sneeze, helicopter, chainsaw, rooster, fire crackling), 40 clips each, in 5
official folds of 80 clips; clips cut from one source recording share a fold. Published
on its own and as the clips of ESC-50 whose ``esc10`` column is True.

Citation: {_CITATION}
License: Creative Commons Attribution (CC BY). Per-clip attributions are in the
corpus' LICENSE file.
Home page: https://github.com/karolpiczak/ESC-50
"""

ESC50_LAYOUT = """\
  ROOT/meta/esc50.csv   columns filename,fold,target,category,esc10,src_file,take
  ROOT/audio/F-ID-T-C.wav   one file per row of esc50.csv
(the ESC-50-master folder of https://github.com/karolpiczak/ESC-50)"""

ESC10_ORIGINAL_LAYOUT = """\
  ROOT/001 - Dog bark/1-100032-A.ogg   one folder per class, 'NNN - Class name';
  ROOT/002 - Rain/...                  the first digit of a file name is its fold"""

ESC10_LAYOUTS = (
    f"either the original ESC-10 release:\n{ESC10_ORIGINAL_LAYOUT}\nor ESC-50:\n{ESC50_LAYOUT}"
)

_ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
ESC_FOLDS = range(1, 6)
# 'NNN - Class name'; the spaces around the dash (or an en or em dash) vary between copies
_CLASS_DIR = re.compile(r"^(\d+)\s+[-\u2013\u2014]\s+(\S.*?)\s*$")
_ESC10_CLIP = re.compile(r"^(\d)-(\d+)-")
# a clip's name in both releases: FOLD-SOURCE-TAKE (ESC-10's 1-100032-A.ogg is ESC-50's
# 1-100032-A-0.wav); what follows (the ESC-50 target, ' (1)', the format) is not the clip
_CLIP_KEY = re.compile(r"^(\d+-\d+-[A-Za-z0-9]+)")
ESC10_CLASSES, ESC10_CLIPS = 10, 400


def esc_clip_key(path) -> str | None:
    """The ``FOLD-SOURCE-TAKE`` name of an ESC-10 / ESC-50 clip (``'1-100032-A'`` for
    ``1-100032-A.ogg`` and ``1-100032-A-0.wav``), or None for a file not named so."""
    match = _CLIP_KEY.match(os.path.basename(os.fspath(path)))
    return None if match is None else match.group(1)


def _warn_sources_in_several_folds(bunch: Bunch, where: str) -> None:
    """ESC's official folds keep the clips cut from one source recording together; a
    source id in two folds (a renamed file, a fold column edited) is trained and tested on."""
    folds_of: dict[str, set[int]] = {}
    for group, fold in zip(bunch.groups, bunch.folds):
        folds_of.setdefault(str(group), set()).add(int(fold))
    split = {group: sorted(folds) for group, folds in folds_of.items() if len(folds) > 1}
    if not split:
        return
    first = next(iter(split))
    files = [os.path.basename(f) for f, g in zip(bunch.filenames, bunch.groups) if str(g) == first]
    shown = "; ".join(f"{g!r} in folds {folds}" for g, folds in list(split.items())[:5])
    more = f"; and {len(split) - 5} more" if len(split) > 5 else ""
    warn_user(
        f"{where}: {len(split)} source recording(s) (Freesound id) have clips in more than "
        f"one official fold: {shown}{more} (the clips of {first!r}: {files[:6]}). The "
        "official folds keep the clips of one recording together; these are trained and "
        "tested on, which inflates the accuracy. Check the fold of these clips (the first "
        "digit of the file name, or the metadata's fold column) against the original copy"
    )


def _read_esc50_rows(root: Path) -> list[dict]:
    csv_path = root / "meta" / "esc50.csv"
    rows = read_index_csv(csv_path, _ESC50_COLUMNS, ESC50_LAYOUT)
    audio_dir = require_directory(root / "audio", "ESC-50 audio folder", ESC50_LAYOUT)
    warn_unlisted_audio(audio_dir, [audio_dir / row["filename"] for _, row in rows], csv_path)
    parsed = []
    for line, row in rows:
        parsed.append(
            {
                "filename": os.fspath(audio_dir / row["filename"]),
                "fold": parse_int(row, "fold", csv_path, line, valid=ESC_FOLDS),
                "target": parse_int(row, "target", csv_path, line),
                "category": row["category"],
                "esc10": parse_bool(row, "esc10", csv_path, line),
                "group": row["src_file"],
                "line": line,
            }
        )
    return parsed


def load_esc50(root: str | os.PathLike, on_error: str = "raise") -> Bunch:
    """Load a local copy of ESC-50, 2000 environmental sound clips of 50 classes.

    Parameters
    ----------
    root : str or path-like
        The ``ESC-50-master`` folder, laid out as::

            ROOT/meta/esc50.csv     (filename,fold,target,category,esc10,src_file,take)
            ROOT/audio/*.wav

    on_error : {'raise', 'skip'}, default='raise'
        What to do with a clip that is missing, empty or has no readable audio
        header (files are checked, never decoded). ``'raise'`` stops at the
        first one and names it; ``'skip'`` drops it from every array, warns with
        the list and records it in ``skipped``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames : ndarray of object (str), shape (n_clips,)
            Absolute paths, sorted.
        target : ndarray of int64, shape (n_clips,)
            The ``target`` column, 0..49.
        target_names : list of str
            The ``category`` of each class id (``'dog'``, ``'rooster'``, ...).
        folds : ndarray of int64, shape (n_clips,)
            Official fold, 1..5; pass to :class:`~sklearn.model_selection.PredefinedSplit`.
        groups : ndarray of str, shape (n_clips,)
            Freesound id of the source recording (``src_file``).
        esc10 : ndarray of bool, shape (n_clips,)
            Whether the clip belongs to ESC-10.
        skipped : list of (str, str)
            ``(path, reason)`` of the clips left out by ``on_error='skip'``.
        DESCR : str
            Description, citation and license.

    Warns
    -----
    UserWarning
        When ``ROOT/audio`` holds audio files that ``esc50.csv`` does not list
        (they are left out), and when a source recording (``src_file``) has
        clips in two official folds (trained and tested on).

    See Also
    --------
    load_esc10 : the 10-class subset.
    fetch_esc50 : download, verify and cache a copy first.

    Notes
    -----
    The loader reads the whole, original ``esc50.csv``; a file cut down to some
    folds or classes is refused when its class ids no longer run 0..n-1.
    Filter the returned Bunch instead:
    ``keep = np.isin(bunch.folds, [1, 2, 3])``, then
    ``bunch.filenames[keep]``, ``bunch.target[keep]``, ``bunch.folds[keep]``.

    References
    ----------
    .. [1] K. J. Piczak, "ESC: Dataset for Environmental Sound Classification",
       ACM Multimedia, 2015.

    Examples
    --------
    >>> from sklaudio.datasets import load_esc50
    >>> load_esc50("/no/such/folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ESC-50 root '/no/such/folder' does not exist; ...
    """
    root = require_directory(root, "ESC-50 root", ESC50_LAYOUT)
    rows = _read_esc50_rows(root)
    target = [r["target"] for r in rows]
    target_names = class_names_by_id(
        target,
        [r["category"] for r in rows],
        repr(os.fspath(root / "meta" / "esc50.csv")),
        gap_hint=metadata_subset_hint([r["fold"] for r in rows], ESC_FOLDS, target),
    )
    bunch = make_dataset_bunch(
        filenames=[r["filename"] for r in rows],
        target=[r["target"] for r in rows],
        target_names=target_names,
        folds=[r["fold"] for r in rows],
        descr=ESC50_DESCR,
        on_error=on_error,
        layout=ESC50_LAYOUT,
        lines=[r["line"] for r in rows],
        groups=[r["group"] for r in rows],
        esc10=[r["esc10"] for r in rows],
    )
    _warn_sources_in_several_folds(bunch, f"ESC-50 root {os.fspath(root)!r}")
    return bunch


def _esc10_from_esc50(root: Path) -> tuple[list[dict], list[str]]:
    rows = [r for r in _read_esc50_rows(root) if r["esc10"]]
    if not rows:
        raise ValueError(
            f"{os.fspath(root / 'meta' / 'esc50.csv')!r} marks no clip as esc10=True; "
            "is it the original ESC-50 metadata file?"
        )
    esc50_ids = sorted({r["target"] for r in rows})
    # ESC-10 class ids follow the order of the ESC-50 ids, so they are stable across copies
    new_id = {old: new for new, old in enumerate(esc50_ids)}
    for r in rows:
        r["target"] = new_id[r["target"]]
    names = class_names_by_id(
        [r["target"] for r in rows],
        [r["category"] for r in rows],
        repr(os.fspath(root / "meta" / "esc50.csv")),
    )
    return rows, names


def _esc10_from_class_folders(root: Path) -> tuple[list[dict], list[str]]:
    folders = sorted(  # hidden folders and the __MACOSX folder of a macOS zip hold no clips
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "__MACOSX"))
    )
    class_dirs = sorted(
        (int(m.group(1)), m.group(2), d) for d in folders if (m := _CLASS_DIR.match(d.name))
    )
    if not class_dirs:
        raise FileNotFoundError(
            f"{os.fspath(root)!r} holds neither meta/esc50.csv nor 'NNN - Class name' "
            f"folders; expected {ESC10_LAYOUTS}"
        )
    # a class left out silently would change the task: every clip must be in a class folder
    odd = [d.name for d in folders if not _CLASS_DIR.match(d.name) and list_audio_files(d)]
    loose = sorted(
        e.name
        for e in os.scandir(root)
        if e.is_file()
        and not e.name.startswith(".")
        and Path(e.name).suffix.lower() in AUDIO_EXTENSIONS
    )
    if odd or loose:
        what = [f"folders {odd} hold audio but are not named 'NNN - Class name'"] if odd else []
        what += [f"audio files {loose[:5]} lie outside the class folders"] if loose else []
        raise ValueError(
            f"ESC-10 root {os.fspath(root)!r}: {'; '.join(what)}. Rename or move them; "
            f"expected {ESC10_ORIGINAL_LAYOUT}"
        )
    numbers = [number for number, _, _ in class_dirs]
    if len(set(numbers)) < len(numbers):
        raise ValueError(
            f"ESC-10 root {os.fspath(root)!r}: two class folders share a number "
            f"({[d.name for _, _, d in class_dirs]})"
        )
    rows, names = [], []
    for class_id, (_, name, class_dir) in enumerate(class_dirs):
        names.append(name)
        clips = list_audio_files(class_dir)
        if not clips:
            raise ValueError(
                f"the ESC-10 class folder {os.fspath(class_dir)!r} holds no audio clip; "
                "remove it or put its clips back"
            )
        for path in clips:
            if Path(path).name.startswith("."):
                continue  # macOS resource forks (._1-100032-A.ogg) are not clips
            match = _ESC10_CLIP.match(Path(path).name)
            if match is None or int(match.group(1)) not in ESC_FOLDS:
                raise ValueError(
                    f"cannot read the fold of {path!r}: ESC-10 clips are named F-ID-T.ogg, "
                    "F being the fold, 1..5; rename or remove the file"
                )
            rows.append(
                {
                    "filename": path,
                    "fold": int(match.group(1)),
                    "target": class_id,
                    "group": match.group(2),
                }
            )
    _refuse_clips_in_several_files(root, rows)
    _warn_unexpected_size(root, len(names), len(rows))
    return rows, names


def _refuse_clips_in_several_files(root: Path, rows: list[dict]) -> None:
    """One clip as two files (``1-100032-A.ogg`` beside a converted ``1-100032-A.wav``,
    a second download ``1-100032-A (1).ogg``) would count twice: an error naming them."""
    files_of: dict[str, list[str]] = {}
    for row in rows:
        files_of.setdefault(esc_clip_key(row["filename"]), []).append(row["filename"])
    repeated = {key: files for key, files in files_of.items() if len(files) > 1}
    if not repeated:
        return
    key, files = next(iter(repeated.items()))
    raise ValueError(
        f"ESC-10 root {os.fspath(root)!r} holds the clip {key!r} as {len(files)} files: "
        f"{[os.path.relpath(f, root) for f in files]}; {len(repeated)} clip(s) in all have "
        "more than one file, and each file would count as a clip. Keep one file per clip "
        "(remove the converted or downloaded copies)"
    )


def _warn_unexpected_size(root: Path, n_classes: int, n_clips: int) -> None:
    """A copy that is not ESC-10's 10 classes of 40 clips sets a different task under its
    name: fewer (a class folder left out) or more (copies, another corpus' files)."""
    if (n_classes, n_clips) == (ESC10_CLASSES, ESC10_CLIPS):
        return
    extra, missing = [], []
    for found, expected, what in (
        (n_classes, ESC10_CLASSES, "class folder"),
        (n_clips, ESC10_CLIPS, "clip"),
    ):
        if found > expected:
            extra.append(f"{found - expected} {what}(s) more")
        elif found < expected:
            missing.append(f"{expected - found} {what}(s) fewer")
    says = []
    if extra:
        says.append(
            f"It holds extra clips or classes ({' and '.join(extra)} than ESC-10: copies of "
            "clips, or files of another corpus?); remove them to keep ESC-10's task"
        )
    if missing:
        says.append(
            f"The copy may be incomplete ({' and '.join(missing)} than ESC-10: a class "
            "folder left out, files not fetched)"
        )
    warn_user(
        f"ESC-10 root {os.fspath(root)!r} holds {n_classes} class folders and {n_clips} "
        f"clips; ESC-10 has {ESC10_CLASSES} classes of 40 clips ({ESC10_CLIPS}). " + ". ".join(says)
    )


def load_esc10(root: str | os.PathLike, on_error: str = "raise") -> Bunch:
    """Load a local copy of ESC-10, 400 environmental sound clips of 10 classes.

    Two layouts are accepted:

    * the original ESC-10 release, one folder per class::

          ROOT/001 - Dog bark/1-100032-A.ogg
          ROOT/002 - Rain/...

      The fold is the first digit of the file name; class ids follow the
      folder numbers and ``target_names`` are the folder names after the dash
      (``'Dog bark'``, ``'Rain'``, ...). Folders without audio (``meta``,
      ``__MACOSX``) are ignored; audio in a folder that does not fit the
      pattern, or outside the class folders, is an error rather than a class
      silently left out.
    * ESC-50 (``ROOT/meta/esc50.csv`` and ``ROOT/audio/*.wav``): the rows whose
      ``esc10`` column is True, class ids renumbered 0..9 in the order of their
      ESC-50 ids and ``target_names`` from the ``category`` column (``'dog'``,
      ``'rooster'``, ``'rain'``, ...).

    The two layouts number and name the classes differently; compare results
    through ``target_names``, not through the ids. In the original layout, a
    clip present as two files (``1-100032-A.ogg`` beside a converted
    ``1-100032-A.wav``) is an error naming them.

    Parameters
    ----------
    root : str or path-like
        Folder of either layout.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with a clip that is missing, empty or has no readable audio
        header (files are checked, never decoded). ``'raise'`` stops at the
        first one and names it; ``'skip'`` drops it from every array, warns with
        the list and records it in ``skipped``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames : ndarray of object (str), shape (n_clips,)
            Absolute paths, sorted.
        target : ndarray of int64, shape (n_clips,)
            Class id, 0..9.
        target_names : list of str
            Name of each class id.
        folds : ndarray of int64, shape (n_clips,)
            Official fold, 1..5; pass to :class:`~sklearn.model_selection.PredefinedSplit`.
        groups : ndarray of str, shape (n_clips,)
            Freesound id of the source recording.
        skipped : list of (str, str)
            ``(path, reason)`` of the clips left out by ``on_error='skip'``.
        DESCR : str
            Description, citation and license.

    Warns
    -----
    UserWarning
        When the original layout holds fewer or more than ESC-10's 10 class
        folders and 400 clips (an incomplete copy, or extra clips), when the
        ESC-50 layout's ``audio`` folder holds files ``esc50.csv`` does not list,
        and when a source recording has clips in two official folds (trained
        and tested on).

    See Also
    --------
    load_esc50 : all 50 classes.
    fetch_esc10 : download, verify and cache a copy first.

    References
    ----------
    .. [1] K. J. Piczak, "ESC: Dataset for Environmental Sound Classification",
       ACM Multimedia, 2015.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from sklaudio.datasets import load_esc10
    >>> root = tempfile.mkdtemp()
    >>> for folder, clip in [("001 - Dog bark", "1-100-A.wav"), ("002 - Rain", "2-200-A.wav")]:
    ...     os.makedirs(os.path.join(root, folder))
    ...     sf.write(os.path.join(root, folder, clip), np.zeros(800), 8000)
    >>> import warnings
    >>> with warnings.catch_warnings():  # a toy copy: 2 clips, not ESC-10's 400
    ...     warnings.simplefilter("ignore")
    ...     esc10 = load_esc10(root)
    >>> esc10.target_names, esc10.target.tolist(), esc10.folds.tolist()
    (['Dog bark', 'Rain'], [0, 1], [1, 2])
    """
    root = require_directory(root, "ESC-10 root", ESC10_LAYOUTS)
    if (root / "meta" / "esc50.csv").is_file():
        rows, names = _esc10_from_esc50(root)
        layout = ESC50_LAYOUT
    else:
        rows, names = _esc10_from_class_folders(root)
        layout = ESC10_ORIGINAL_LAYOUT
    bunch = make_dataset_bunch(
        filenames=[r["filename"] for r in rows],
        target=[r["target"] for r in rows],
        target_names=names,
        folds=[r["fold"] for r in rows],
        descr=ESC10_DESCR,
        on_error=on_error,
        layout=layout,
        lines=[r.get("line") for r in rows],
        groups=[r["group"] for r in rows],
    )
    _warn_sources_in_several_folds(bunch, f"ESC-10 root {os.fspath(root)!r}")
    return bunch

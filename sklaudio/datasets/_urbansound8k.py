"""UrbanSound8K (Salamon, Jacoby and Bello, 2014)."""

from __future__ import annotations

import os

import numpy as np
from sklearn.utils import Bunch

from sklaudio._warnings import warn_user
from sklaudio.datasets._base import (
    check_on_error,
    class_names_by_id,
    make_dataset_bunch,
    metadata_subset_hint,
    parse_int,
    read_index_csv,
    refuse_repeated_clips,
    require_directory,
    warn_unlisted_audio,
)

__all__ = ["load_urbansound8k"]

URBANSOUND8K_DESCR = """\
UrbanSound8K: urban sound classification
----------------------------------------

8732 labelled excerpts (at most 4 s) of urban sounds from 10 classes: air_conditioner,
car_horn, children_playing, dog_bark, drilling, engine_idling, gun_shot, jackhammer, siren
and street_music. Sampling rate, bit depth and channels are those of the Freesound
originals and vary between files. The excerpts are pre-sorted into 10 folds; report
accuracy over these folds, as slices of one recording share a fold.

Citation: J. Salamon, C. Jacoby and J. P. Bello. A Dataset and Taxonomy for Urban Sound
Research. 22nd ACM International Conference on Multimedia, Orlando, USA, 2014.
doi:10.1145/2647868.2655045
License: Creative Commons Attribution-NonCommercial (CC BY-NC; version 3.0 in the corpus'
README, 4.0 on its Zenodo record), non-commercial use only. Attributions are in
FREESOUNDCREDITS.txt.
Home page: https://urbansounddataset.weebly.com/urbansound8k.html
"""

URBANSOUND8K_LAYOUT = """\
  ROOT/metadata/UrbanSound8K.csv   columns slice_file_name,fsID,start,end,salience,fold,
                                   classID,class
  ROOT/audio/fold1/ ... ROOT/audio/fold10/   each row's slice_file_name in audio/fold{fold}/
(the UrbanSound8K folder of UrbanSound8K.tar.gz)"""

_COLUMNS = ("slice_file_name", "fsID", "salience", "fold", "classID", "class")


def _check_fold_folders(audio_dir, folds, on_error: str) -> None:
    """A fold folder left out of a copy is one error (or one warning) naming it, not
    hundreds of missing clips: ``audio/fold3`` holds about 900."""
    listed = np.bincount(np.asarray(folds, dtype=np.int64), minlength=11)
    missing = [f for f in range(1, 11) if listed[f] and not (audio_dir / f"fold{f}").is_dir()]
    if not missing:
        return
    folders = ", ".join(f"fold{f} ({listed[f]} clips)" for f in missing)
    present = sorted(p.name for p in audio_dir.iterdir() if p.is_dir())
    message = (
        f"the UrbanSound8K audio folder {os.fspath(audio_dir)!r} lacks {folders}, which "
        f"the metadata lists; it holds {present}"
    )
    if on_error == "raise":
        raise FileNotFoundError(
            f"{message}. Unpack the whole archive, or pass on_error='skip' to leave "
            f"{'that fold' if len(missing) == 1 else 'those folds'} out; expected this "
            f"layout:\n{URBANSOUND8K_LAYOUT}"
        )
    warn_user(f"{message}; on_error='skip' leaves out every clip of {folders}")


def load_urbansound8k(root: str | os.PathLike, on_error: str = "raise") -> Bunch:
    """Load a local copy of UrbanSound8K, 8732 urban sound excerpts of 10 classes.

    Parameters
    ----------
    root : str or path-like
        The ``UrbanSound8K`` folder, laid out as::

            ROOT/metadata/UrbanSound8K.csv
            ROOT/audio/fold{1..10}/{slice_file_name}

    on_error : {'raise', 'skip'}, default='raise'
        What to do with a clip that is missing, empty or has no readable audio
        header (files are checked, never decoded). ``'raise'`` stops at the
        first one and names it; ``'skip'`` drops it from every array, warns with
        the list and records it in ``skipped``. A whole ``audio/fold{k}`` folder
        that the metadata lists but the copy lacks is named in one error (or,
        with ``'skip'``, one more warning).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames : ndarray of object (str), shape (n_clips,)
            Absolute paths, sorted.
        target : ndarray of int64, shape (n_clips,)
            The ``classID`` column, 0..9.
        target_names : list of str
            The ``class`` of each class id (``'air_conditioner'``, ...).
        folds : ndarray of int64, shape (n_clips,)
            Official fold, 1..10; pass to :class:`~sklearn.model_selection.PredefinedSplit`.
        groups : ndarray of str, shape (n_clips,)
            Freesound id of the source recording (``fsID``).
        salience : ndarray of int64, shape (n_clips,)
            1 for foreground, 2 for background sounds.
        skipped : list of (str, str)
            ``(path, reason)`` of the clips left out by ``on_error='skip'``.
        DESCR : str
            Description, citation and license.

    Warns
    -----
    UserWarning
        When ``ROOT/audio`` holds audio files that the metadata does not list
        (they are left out), with their count and the first names.

    See Also
    --------
    fetch_urbansound8k : download, verify and cache a copy first.

    Notes
    -----
    The loader reads the whole, original ``UrbanSound8K.csv``; a file cut down
    to some folds or classes is refused when its class ids no longer run
    0..n-1. Filter the returned Bunch instead:
    ``keep = np.isin(bunch.folds, [1, 2, 3])``, then
    ``bunch.filenames[keep]``, ``bunch.target[keep]``, ``bunch.folds[keep]``.

    References
    ----------
    .. [1] J. Salamon, C. Jacoby and J. P. Bello, "A Dataset and Taxonomy for
       Urban Sound Research", ACM Multimedia, 2014.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from sklaudio.datasets import load_urbansound8k
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "metadata"))
    >>> os.makedirs(os.path.join(root, "audio", "fold3"))
    >>> sf.write(os.path.join(root, "audio", "fold3", "7-0-0-0.wav"), np.zeros(800), 8000)
    >>> with open(os.path.join(root, "metadata", "UrbanSound8K.csv"), "w") as f:
    ...     _ = f.write("slice_file_name,fsID,start,end,salience,fold,classID,class\\n"
    ...                 "7-0-0-0.wav,7,0.0,0.1,1,3,0,air_conditioner\\n")
    >>> us8k = load_urbansound8k(root)
    >>> us8k.target_names, us8k.folds.tolist()
    (['air_conditioner'], [3])
    """
    check_on_error(on_error)
    root = require_directory(root, "UrbanSound8K root", URBANSOUND8K_LAYOUT)
    csv_path = root / "metadata" / "UrbanSound8K.csv"
    rows = read_index_csv(csv_path, _COLUMNS, URBANSOUND8K_LAYOUT)
    audio_dir = require_directory(root / "audio", "UrbanSound8K audio folder", URBANSOUND8K_LAYOUT)

    filenames, target, folds, salience = [], [], [], []
    for line, row in rows:
        fold = parse_int(row, "fold", csv_path, line, valid=range(1, 11))
        filenames.append(os.fspath(audio_dir / f"fold{fold}" / row["slice_file_name"]))
        folds.append(fold)
        target.append(parse_int(row, "classID", csv_path, line))
        salience.append(parse_int(row, "salience", csv_path, line, valid=range(1, 3)))
    _check_fold_folders(audio_dir, folds, on_error)
    # the path holds the fold: a clip listed in two folds has two paths, one name
    refuse_repeated_clips(
        [row["slice_file_name"] for _, row in rows], folds, [line for line, _ in rows]
    )
    target_names = class_names_by_id(
        target,
        [row["class"] for _, row in rows],
        repr(os.fspath(csv_path)),
        gap_hint=metadata_subset_hint(folds, range(1, 11), target),
    )
    warn_unlisted_audio(audio_dir, filenames, csv_path)

    return make_dataset_bunch(
        filenames=filenames,
        target=target,
        target_names=target_names,
        folds=folds,
        descr=URBANSOUND8K_DESCR,
        on_error=on_error,
        layout=URBANSOUND8K_LAYOUT,
        lines=[line for line, _ in rows],
        groups=[row["fsID"] for _, row in rows],
        salience=salience,
    )

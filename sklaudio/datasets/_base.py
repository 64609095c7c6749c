"""What every dataset loader shares: reading index files and checking audio files.

Each ``load_*`` function only knows its corpus' layout; it hands the rows it found
to :func:`make_dataset_bunch`, which sorts them, checks every file once and drops
bad rows from all arrays together.
"""

from __future__ import annotations

import csv
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.utils import Bunch

ON_ERROR_OPTIONS = ("raise", "skip")


def require_directory(path, what: str, layout: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, or explain the expected layout."""
    path = Path(path).expanduser()
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(
            f"{what} {os.fspath(path)!r} {state}; expected this layout:\n{layout}"
        )
    return path.resolve()


def read_index_csv(path: Path, columns: tuple[str, ...], layout: str) -> list[dict[str, str]]:
    """Rows of a corpus' metadata csv as dicts, after checking its header."""
    if not path.is_file():
        raise FileNotFoundError(
            f"metadata file {os.fspath(path)!r} does not exist; expected this layout:\n{layout}"
        )
    # utf-8-sig: a csv re-saved by a spreadsheet program starts with a byte-order mark
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                f"metadata file {os.fspath(path)!r} lacks the columns {missing} "
                f"(found {reader.fieldnames}); is it the original file of the corpus?"
            )
        return list(reader)


def parse_int(row: dict[str, str], column: str, path: Path, line: int) -> int:
    """``int(row[column])`` with an error that points at the csv line."""
    try:
        return int(row[column])
    except (TypeError, ValueError):
        raise ValueError(
            f"{os.fspath(path)!r}, line {line}: column {column!r} should be an integer, "
            f"got {row[column]!r}"
        ) from None


def class_names_by_id(ids, names, source: str) -> list[str]:
    """Names indexed by class id, checking that ids run 0..n-1 with one name each."""
    by_id: dict[int, str] = {}
    for class_id, name in zip(ids, names, strict=True):
        if by_id.setdefault(class_id, name) != name:
            raise ValueError(
                f"{source} gives class id {class_id} two names, {by_id[class_id]!r} and {name!r}"
            )
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(
            f"{source} uses class ids {sorted(by_id)}, expected 0..{len(by_id) - 1} without gaps"
        )
    return [by_id[i] for i in range(len(by_id))]


def audio_file_problem(path: str) -> tuple[type[Exception], str] | None:
    """Why ``path`` cannot be used as an audio clip, or ``None`` when it can.

    Reads the header only (``soundfile.info``): a clip is never decoded here.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileNotFoundError, "does not exist"
    except OSError as exc:
        return OSError, f"cannot be accessed ({exc})"
    if not stat.S_ISREG(st.st_mode):
        return IsADirectoryError, "is not a regular file"
    if st.st_size == 0:
        return ValueError, "is empty (0 bytes)"
    try:
        info = sf.info(path)
    except (RuntimeError, OSError) as exc:  # sf.LibsndfileError is a RuntimeError
        return ValueError, f"has no readable audio header ({exc})"
    if info.frames == 0:
        return ValueError, "has 0 samples"
    return None


def make_dataset_bunch(
    *,
    filenames: list[str],
    target,
    target_names: list[str],
    folds,
    descr: str,
    on_error: str,
    layout: str,
    **extras,
) -> Bunch:
    """Sort the clips by path, check every file and build the dataset's Bunch.

    ``extras`` are per-clip sequences (like ``groups``) that are sorted and
    filtered together with ``filenames``, ``target`` and ``folds``.
    """
    if on_error not in ON_ERROR_OPTIONS:
        raise ValueError(f"on_error must be one of {ON_ERROR_OPTIONS}, got {on_error!r}")
    filenames = np.asarray([os.fspath(p) for p in filenames], dtype=object)
    if filenames.size == 0:
        raise FileNotFoundError(f"no audio clip found; expected this layout:\n{layout}")
    columns = {
        "target": np.asarray(target, dtype=np.int64),
        "folds": np.asarray(folds, dtype=np.int64),
        **{name: np.asarray(values) for name, values in extras.items()},
    }
    order = np.argsort(filenames.astype(str), kind="stable")
    filenames = filenames[order]
    columns = {name: values[order] for name, values in columns.items()}

    skipped: list[tuple[str, str]] = []
    keep = np.ones(filenames.size, dtype=bool)
    for i, path in enumerate(filenames):
        problem = audio_file_problem(path)
        if problem is None:
            continue
        error_type, reason = problem
        if on_error == "raise":
            where = (
                f"; expected this layout:\n{layout}\n" if error_type is FileNotFoundError else ". "
            )
            raise error_type(
                f"audio file {path!r} {reason}{where}"
                "Fix or remove the file, or pass on_error='skip' to leave it out."
            )
        keep[i] = False
        skipped.append((path, reason))

    if skipped:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
        warnings.warn(
            f"skipped {len(skipped)} of {filenames.size} clips (on_error='skip'):\n{listing}",
            UserWarning,
            stacklevel=3,
        )
        if not keep.any():
            raise ValueError("every audio clip was skipped; see the warning for the reasons")
        filenames = filenames[keep]
        columns = {name: values[keep] for name, values in columns.items()}

    return Bunch(
        filenames=filenames,
        target_names=list(target_names),
        DESCR=descr,
        skipped=skipped,
        **columns,
    )


def read_corpus(bunch: Bunch, reader) -> tuple[np.ndarray, Bunch]:
    """Decode every clip of a loaded corpus and keep its per-clip fields aligned.

    The loaders check each file's header only; a clip can still fail to decode
    (NaN samples, data cut short after a valid header). With
    ``reader.on_error='skip'`` such clips are left out of the waveforms *and*
    of the returned Bunch: ``filenames``, ``target``, ``folds`` and every other
    per-clip array lose the same rows, and the clips are appended to
    ``skipped`` with their reason. ``bunch`` itself is not modified.

    Parameters
    ----------
    bunch : Bunch
        A corpus from a ``load_*`` or ``fetch_*`` function.
    reader : AudioReader
        How to decode the clips; its ``on_error`` decides whether a clip that
        fails to decode raises or is dropped.

    Returns
    -------
    waves : ndarray of float32, shape (n_kept, n_samples) or (n_kept, n_channels, n_samples)
    bunch : Bunch
        A copy of ``bunch`` holding the decoded clips only, in the same order.

    Examples
    --------
    >>> import tempfile
    >>> from sklaudio.datasets import make_sounds, read_corpus
    >>> from sklaudio.io import AudioReader
    >>> sounds = make_sounds(n_samples=6, n_classes=2, sample_rate=8000, duration=0.5,
    ...                      directory=tempfile.mkdtemp())
    >>> waves, kept = read_corpus(sounds, AudioReader(sample_rate=8000, on_error="skip"))
    >>> waves.shape, len(kept.target), kept.skipped
    ((6, 4000), 6, [])
    """
    waves = reader.fit_transform(bunch.filenames)
    n_clips = len(bunch.filenames)
    out = Bunch(**bunch)
    skipped = getattr(reader, "skipped_", [])
    out.skipped = list(bunch.get("skipped", [])) + [(path, reason) for _, path, reason in skipped]
    if skipped:
        keep = np.ones(n_clips, dtype=bool)
        keep[[i for i, _, _ in skipped]] = False
        for key, value in bunch.items():
            if isinstance(value, np.ndarray) and value.shape[:1] == (n_clips,):
                out[key] = value[keep]
    return waves, out

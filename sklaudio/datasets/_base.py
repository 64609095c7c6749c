"""What every dataset loader shares: reading index files and checking audio files.

Each ``load_*`` function only knows its corpus' layout; it hands the rows it found
to :func:`make_dataset_bunch`, which sorts them, checks every file once and drops
bad rows from all arrays together.
"""

from __future__ import annotations

import csv
import os
import stat
from numbers import Integral
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.utils import Bunch

from sklaudio._warnings import warn_user
from sklaudio.io import _sf_path, _sndfile_reason, cut_short, list_audio_files, path_sort_key

ON_ERROR_OPTIONS = ("raise", "skip")
# Where a Python caller finds every skipped clip (the command line drops it: it lists them).
_IN_BUNCH_SKIPPED = "; all of them are in the returned bunch's skipped"


def check_on_error(on_error) -> None:
    """A loader's ``on_error``, checked before anything is read or downloaded."""
    if on_error not in ON_ERROR_OPTIONS:
        raise ValueError(f"on_error must be one of {ON_ERROR_OPTIONS}, got {on_error!r}")


def require_directory(path, what: str, layout: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, or explain the expected layout."""
    path = Path(path).expanduser()
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(
            f"{what} {os.fspath(path)!r} {state}; expected this layout:\n{layout}"
        )
    return path.resolve()


def read_index_csv(
    path: Path, columns: tuple[str, ...], layout: str
) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` of each row of a corpus' metadata csv, after checking its header and
    that every row has as many fields as the header (a stray comma shifts columns)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"metadata file {os.fspath(path)!r} does not exist; expected this layout:\n{layout}"
        )
    # utf-8-sig: a csv re-saved by a spreadsheet program starts with a byte-order mark
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or ()
            refuse_other_delimiter(path, header, columns)
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(
                    f"metadata file {os.fspath(path)!r} lacks the columns {missing} "
                    f"(found {reader.fieldnames}); is it the original file of the corpus?"
                )
            rows = []
            for row in reader:
                line = reader.line_num
                extra = row.pop(None, None)  # DictReader's key for fields beyond the header
                short = [c for c in header if row.get(c) is None]
                if extra is not None or short:
                    n_fields = len(header) + len(extra or ()) - len(short)
                    hint = (
                        'quote a field that holds a comma, e.g. "rain, heavy"'
                        if extra is not None
                        else f"no value for {short}"
                    )
                    raise ValueError(
                        f"{os.fspath(path)!r}, line {line}: {n_fields} fields where the header "
                        f"has {len(header)}; {hint}"
                    )
                rows.append((line, row))
            return rows
    except UnicodeDecodeError:
        data = path.read_bytes()
        try:  # the stream's offset is within a chunk: decode the whole file to find the line
            data.decode("utf-8-sig")
            where = ""
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            where = f" (line {line}: byte {data[exc.start]:#04x})"
        raise ValueError(
            f"metadata file {os.fspath(path)!r} is not UTF-8 text{where}; re-save it as UTF-8"
        ) from None


# Separators a spreadsheet may save a "csv" with (';' where the decimal mark is a comma)
_OTHER_DELIMITERS = ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars"))


def refuse_other_delimiter(path: Path, header, columns: tuple[str, ...]) -> None:
    """A header read as one column that holds another separator: the file is not
    comma-separated, and every row would be one field. Say which separator it uses."""
    if len(header) != 1 or len(columns) < 2:
        return
    for delimiter, name in _OTHER_DELIMITERS:
        if delimiter in header[0]:
            raise ValueError(
                f"metadata file {os.fspath(path)!r} separates its fields with {name} "
                f"({delimiter!r}), not commas: its header reads as the one column "
                f"{header[0]!r}. Re-save it comma-separated (a spreadsheet's 'CSV UTF-8 "
                "(comma delimited)'), or restore the corpus' original file"
            )


def metadata_subset_hint(folds, official_folds: range, target) -> str:
    """What a corpus' metadata file whose class ids have gaps most likely is: a subset of
    the official file (some folds or classes), which the loaders do not read; the way to
    such a subset is to filter the Bunch of the whole corpus."""
    present = sorted({int(f) for f in folds})
    if present != list(official_folds):
        which = (
            f"it lists the folds {present} of the official "
            f"{official_folds.start}..{official_folds.stop - 1}"
        )
        keep = f"keep = np.isin(bunch.folds, {present})"
    else:
        which = "it lists every fold, but not every class"
        keep = f"keep = np.isin(bunch.target, {sorted({int(t) for t in target})})"
    return (
        f". Is it a subset of the corpus' metadata ({which})? Subsets of the official folds "
        "or classes are not supported by the loader: load the original metadata file and "
        f"filter the returned Bunch instead, e.g. {keep}; X, y, folds = "
        "bunch.filenames[keep], bunch.target[keep], bunch.folds[keep]"
    )


def warn_unlisted_audio(audio_dir: Path, listed, csv_path: Path, limit: int = 5) -> None:
    """Audio files in a corpus' audio folder that its metadata does not list are left out:
    say how many and name a few (a clip converted beside its original, files of another
    copy), rather than ignore them silently."""
    listed = {os.path.normcase(os.path.normpath(p)) for p in listed}
    unlisted = [
        f
        for f in list_audio_files(audio_dir)
        if os.path.normcase(os.path.normpath(f)) not in listed
    ]
    if not unlisted:
        return
    names = [os.path.relpath(f, audio_dir) for f in unlisted]
    stems = {os.path.splitext(os.path.basename(p))[0] for p in listed}
    other_format = [n for n in names if os.path.splitext(os.path.basename(n))[0] in stems]
    note = (
        f" ({len(other_format)} of them share a listed clip's name in another format, e.g. "
        f"{other_format[0]!r}: a converted copy)"
        if other_format
        else ""
    )
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    warn_user(
        f"{len(unlisted)} audio file(s) in {os.fspath(audio_dir)!r} are not listed in "
        f"{os.fspath(csv_path)!r} and are left out: {names[:limit]}{more}{note}. Remove them, "
        "or add their rows to the metadata if they are clips of the corpus"
    )


def parse_int(
    row: dict[str, str], column: str, path: Path, line: int, valid: range | None = None
) -> int:
    """``int(row[column])`` with an error that points at the csv line; ``valid``, when
    given, is the range the value must lie in (an official fold number, say)."""
    try:
        value = int(row[column])
    except (TypeError, ValueError):
        raise ValueError(
            f"{os.fspath(path)!r}, line {line}: column {column!r} should be an integer, "
            f"got {row[column]!r}"
        ) from None
    if valid is not None and value not in valid:
        raise ValueError(
            f"{os.fspath(path)!r}, line {line}: column {column!r} should be "
            f"{valid.start}..{valid.stop - 1}, got {value}"
        )
    return value


def parse_bool(row: dict[str, str], column: str, path: Path, line: int) -> bool:
    """A csv truth value (``True``/``False``, ``1``/``0``, ``yes``/``no``, any case)."""
    value = row[column].strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError(
        f"{os.fspath(path)!r}, line {line}: column {column!r} should be True or False, "
        f"got {row[column]!r}"
    )


def class_names_by_id(ids, names, source: str, gap_hint: str = "") -> list[str]:
    """Names indexed by class id, checking that ids run 0..n-1 with one name each;
    ``gap_hint`` ends the error about ids with gaps (see :func:`metadata_subset_hint`)."""
    by_id: dict[int, str] = {}
    for class_id, name in zip(ids, names, strict=True):
        if by_id.setdefault(class_id, name) != name:
            raise ValueError(
                f"{source} gives class id {class_id} two names, {by_id[class_id]!r} and {name!r}"
            )
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(
            f"{source} uses class ids {sorted(by_id)}, expected 0..{len(by_id) - 1} without "
            f"gaps{gap_hint}"
        )
    ids_by_name: dict[str, list[int]] = {}
    for class_id, name in sorted(by_id.items()):
        ids_by_name.setdefault(name, []).append(class_id)
    shared = {name: ids for name, ids in ids_by_name.items() if len(ids) > 1}
    if shared:
        name, ids = next(iter(shared.items()))
        raise ValueError(f"{source} gives the name {name!r} to the class ids {ids}")
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
        info = sf.info(_sf_path(os.fsdecode(path)))
    except (RuntimeError, OSError) as exc:  # sf.LibsndfileError is a RuntimeError
        return ValueError, f"has no readable audio header ({_sndfile_reason(exc)})"
    if info.frames == 0:
        return ValueError, "has 0 samples"
    short = cut_short(path)
    return None if short is None else (ValueError, short)


def refuse_repeated_clips(filenames, folds, lines) -> None:
    """A clip listed twice would be counted twice, or sit in two folds at once (trained
    and tested on): an error naming it. ``filenames`` are paths, or the names a corpus
    lists its clips by when the path depends on the fold (UrbanSound8K)."""
    filenames = np.asarray(filenames, dtype=object)
    unique, counts = np.unique(filenames.astype(str), return_counts=True)
    if counts.max(initial=1) == 1:
        return
    path = str(unique[np.argmax(counts > 1)])
    where = np.flatnonzero(filenames.astype(str) == path)
    on = (
        f"on lines {[lines[i] for i in where]}"
        if lines is not None and None not in lines
        else f"{len(where)} times"
    )
    raise ValueError(
        f"the metadata lists the clip {path!r} {on}, in folds {[int(folds[i]) for i in where]}; "
        "each clip must appear once (a clip in two folds is trained and tested on). "
        f"{int((counts > 1).sum())} clip(s) are listed more than once; fix the metadata file"
    )


def skip_listing(skipped, limit: int = 20) -> str:
    """The first ``limit`` ``(path, reason)`` pairs, one per line, then how many more there are
    and how many share each reason: a warning about 900 clips stays readable."""
    lines = [f"  {path}: {reason}" for path, reason in skipped[:limit]]
    if len(skipped) > limit:
        reasons: dict[str, int] = {}
        for _, reason in skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        counts = "; ".join(
            f"{n} {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])
        )
        lines.append(f"  ... and {len(skipped) - limit} more (in all: {counts})")
    return "\n".join(lines)


def make_dataset_bunch(
    *,
    filenames: list[str],
    target,
    target_names: list[str],
    folds,
    descr: str,
    on_error: str,
    layout: str,
    lines=None,
    **extras,
) -> Bunch:
    """Sort the clips by path, check every file and build the dataset's Bunch.

    ``extras`` are per-clip sequences (like ``groups``) that are sorted and
    filtered together with ``filenames``, ``target`` and ``folds``. ``lines``,
    the metadata line of each clip (or None), only serves error messages.
    """
    check_on_error(on_error)
    filenames = np.asarray([os.fspath(p) for p in filenames], dtype=object)
    if filenames.size == 0:
        raise FileNotFoundError(f"no audio clip found; expected this layout:\n{layout}")
    refuse_repeated_clips(filenames, folds, lines)
    columns = {
        "target": np.asarray(target, dtype=np.int64),
        "folds": np.asarray(folds, dtype=np.int64),
        **{name: np.asarray(values) for name, values in extras.items()},
    }
    order = np.array(  # by path parts: the same order (and folds) on every platform
        sorted(range(filenames.size), key=lambda i: path_sort_key(filenames[i])), dtype=np.int64
    )
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
        warn_user(
            f"skipped {len(skipped)} of {filenames.size} clips (on_error='skip'"
            f"{_IN_BUNCH_SKIPPED}):\n{skip_listing(skipped)}",
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


def _reason_only(path: str, message: str) -> str:
    """The reader's message without the path it starts with, as the loaders give reasons
    ("contains NaN or infinite samples", beside "is empty (0 bytes)")."""
    for prefix in (f"audio file {path!r} ", f"cannot decode audio file {path!r}: "):
        if message.startswith(prefix):
            return ("cannot be decoded: " if "decode" in prefix else "") + message[len(prefix) :]
    return message


# Fields of a corpus as a whole; every other sequence of one entry per clip is per clip.
_CORPUS_FIELDS = frozenset({"target_names", "DESCR", "skipped", "feature_names", "frame"})
_PER_CLIP_FIELDS = frozenset({"filenames", "target", "folds", "groups", "salience", "esc10"})


def read_corpus(bunch: Bunch, reader) -> tuple[np.ndarray, Bunch]:
    """Decode every clip of a loaded corpus and keep its per-clip fields aligned.

    The loaders check each file's header only; a clip can still fail to decode
    (NaN samples, a FLAC or OGG stream cut short after a valid header). With
    ``reader.on_error='skip'`` such clips are left out of the waveforms *and*
    of the returned Bunch: ``filenames``, ``target``, ``folds`` and every other
    per-clip array lose the same rows, and the clips are appended to
    ``skipped`` with their reason. ``bunch`` itself is not modified.

    Parameters
    ----------
    bunch : Bunch
        A corpus from a ``load_*`` or ``fetch_*`` function, or any Bunch with
        ``filenames``: every other list or array of one entry per clip
        (``target_names``, ``DESCR`` and ``skipped`` excepted) is filtered
        with it.
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
    return waves, _drop_clips(bunch, getattr(reader, "skipped_", []))


def check_corpus(bunch: Bunch, reader, chunk_size: int = 256) -> Bunch:
    """Decode every clip of a loaded corpus, a chunk at a time, and drop those that fail.

    What :func:`read_corpus` does with ``on_error='skip'``, without keeping the
    waveforms: at most ``chunk_size`` clips are held at once, so a corpus
    larger than memory can be checked before a model streams it from its
    files (a streaming fit stops at the first file that fails to decode).
    The loaders check headers only; this finds what decoding finds (NaN
    samples, a FLAC or OGG stream cut short after a valid header).

    Parameters
    ----------
    bunch : Bunch
        A corpus from a ``load_*`` or ``fetch_*`` function, or any Bunch with
        ``filenames`` (see :func:`read_corpus`).
    reader : AudioReader
        How the model will decode the clips (sample rate, duration, channels);
        its ``on_error`` is not used: failing clips are always dropped here.
    chunk_size : int, default=256
        Clips decoded at once.

    Returns
    -------
    Bunch
        A copy of ``bunch`` without the clips that failed, every per-clip field
        filtered alike; they are appended to ``skipped`` with their reason, and
        one warning lists them.

    Examples
    --------
    >>> import tempfile
    >>> from sklaudio.datasets import check_corpus, make_sounds
    >>> from sklaudio.io import AudioReader
    >>> sounds = make_sounds(n_samples=6, n_classes=2, sample_rate=8000, duration=0.5,
    ...                      directory=tempfile.mkdtemp())
    >>> checked = check_corpus(sounds, AudioReader(sample_rate=8000, duration=0.5))
    >>> len(checked.filenames), checked.skipped
    (6, [])
    """
    import warnings

    from sklearn.base import clone

    if isinstance(chunk_size, bool) or not (isinstance(chunk_size, Integral) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    reader = clone(reader).set_params(on_error="skip")
    files = bunch.filenames
    skipped = []
    for start in range(0, len(files), chunk_size):
        chunk = files[start : start + chunk_size]
        reader.skipped_ = []
        with warnings.catch_warnings():  # one warning for the corpus, below
            warnings.simplefilter("ignore")
            try:
                reader.fit_transform(chunk)
            except ValueError:
                if len(reader.skipped_) != len(chunk):  # not a file's failure: raise it
                    raise
        skipped += [(i + start, path, reason) for i, path, reason in reader.skipped_]
    if skipped:
        listing = skip_listing([(path, _reason_only(path, reason)) for _, path, reason in skipped])
        warn_user(
            f"check_corpus dropped {len(skipped)} of {len(files)} clips that cannot be "
            f"decoded (listed in the returned bunch's skipped):\n{listing}"
        )
    return _drop_clips(bunch, skipped)


def _drop_clips(bunch: Bunch, skipped: list) -> Bunch:
    """A copy of ``bunch`` without the clips of ``skipped`` (``(index, path, reason)``),
    every per-clip field filtered alike and the clips appended to ``skipped``."""
    n_clips = len(bunch.filenames)
    out = Bunch(**bunch)
    out.skipped = list(bunch.get("skipped", [])) + [
        (path, _reason_only(path, reason)) for _, path, reason in skipped
    ]
    if skipped:
        keep = np.ones(n_clips, dtype=bool)
        keep[[i for i, _, _ in skipped]] = False
        for key, value in bunch.items():
            if key in _CORPUS_FIELDS or value is None or isinstance(value, str):
                continue
            if not hasattr(value, "__len__"):
                continue
            if len(value) != n_clips:
                if key in _PER_CLIP_FIELDS:
                    raise ValueError(
                        f"bunch.{key} has {len(value)} entries but bunch.filenames has "
                        f"{n_clips}; the corpus is not aligned"
                    )
                continue
            if isinstance(value, np.ndarray):
                out[key] = value[keep]
            elif isinstance(value, list | tuple):
                out[key] = type(value)(v for v, k in zip(value, keep, strict=True) if k)
            elif hasattr(value, "iloc"):  # a pandas Series
                out[key] = value.iloc[keep]
            # anything else (a dict, ...) is not a per-clip sequence: left as it is
    return out

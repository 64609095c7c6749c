"""The ``sklaudio`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _demo(args) -> int:
    from sklearn.model_selection import PredefinedSplit, cross_val_score

    from sklaudio.classifiers import WeightedKNeighborsClassifier
    from sklaudio.datasets import make_sounds
    from sklaudio.embedders import NPIDEmbedder
    from sklaudio.features import resolve_device
    from sklaudio.io import AudioReader

    say = (lambda *a: None) if args.quiet else print
    if args.n_classes < 2:
        raise ValueError("--n-classes must be at least 2: one class leaves nothing to classify")
    if args.n_samples < args.n_classes:
        raise ValueError(
            f"--n-samples {args.n_samples} is fewer than --n-classes {args.n_classes}: every "
            "class needs a clip"
        )
    if args.n_folds > args.n_samples:
        raise ValueError(
            f"--n-folds {args.n_folds} is more than the {args.n_samples} clips (--n-samples)"
        )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sklaudio-demo-") as directory:
        sounds = make_sounds(
            n_samples=args.n_samples,
            n_classes=args.n_classes,
            sample_rate=args.sample_rate,
            duration=args.duration,
            n_folds=args.n_folds,
            random_state=args.random_state,
            directory=directory,
        )
        say(
            f"sklaudio demo: {len(sounds.filenames)} synthetic clips "
            f"({args.duration:g} s @ {args.sample_rate} Hz, {args.n_classes} classes: "
            f"{', '.join(sounds.target_names)}) in a temporary folder, removed at the end"
        )
        waves = AudioReader(
            sample_rate=args.sample_rate, duration=args.duration, n_jobs=args.n_jobs
        ).fit_transform(sounds.filenames)
    spectrograms = _floor_spectrograms(waves, args.sample_rate)
    cv = PredefinedSplit(sounds.folds)
    floor_scores = cross_val_score(_floor_model(), spectrograms, sounds.target, cv=cv)

    say(
        f"NPID pre-training on all {len(waves)} clips without labels (DLS phase 2), "
        f"{args.epochs} epochs on {resolve_device(args.device)}:"
    )
    embedder = NPIDEmbedder(
        backbone="esresnet_tiny",
        nce_k=min(64, len(waves) - 1),
        max_epochs=args.epochs,
        batch_size=32,
        device=args.device,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )
    embeddings = embedder.fit_transform(spectrograms)
    _stop_if_interrupted()
    npid_scores = cross_val_score(
        WeightedKNeighborsClassifier(n_neighbors=5), embeddings, sounds.target, cv=cv
    )

    smallest = min(np.sum(sounds.folds == fold) for fold in np.unique(sounds.folds))
    if smallest < args.n_classes:
        say(
            f"note: a fold holds only {smallest} clips for {args.n_classes} classes: the "
            "accuracies below say little; raise --n-samples or lower --n-folds"
        )
    say("accuracy per fold (train on the other folds, test on this one):")
    say(f"{'fold':>6}  {'log-mel floor':>13}  {'NPID + kNN':>10}")
    for fold, a, b in zip(np.unique(sounds.folds), floor_scores, npid_scores):
        say(f"{fold:>6}  {a:>13.3f}  {b:>10.3f}")
    say(
        f"{'mean':>6}  {floor_scores.mean():>13.3f}  {npid_scores.mean():>10.3f}   "
        f"(chance {1 / args.n_classes:.3f}; the demo took {time.perf_counter() - start:.0f} s)"
    )
    return 0


def _floor_spectrograms(waves, sample_rate):
    """Log-mel spectrograms of the floor (and of the demo's NPID): 64 bands, n_fft 1024 (a
    smaller power of two for clips shorter than that), a quarter-frame hop."""
    from sklaudio.features import SpectrogramTransformer

    n_fft = min(1024, 2 ** int(np.log2(max(waves.shape[-1], 16))))
    log_mel = SpectrogramTransformer(
        "log_mel",
        sample_rate=sample_rate,
        n_mels=64,
        n_fft=n_fft,
        hop_length=n_fft // 4,
        device="cpu",
    )
    with warnings.catch_warnings():  # empty bands at low rates: the floor is only a reference
        warnings.filterwarnings("ignore", message=".*mel bands")
        return log_mel.fit_transform(waves)


def _floor_model():
    """The hand-crafted floor every learned embedding has to beat: log-mel statistics + 5-NN."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklaudio.features import TemporalStatistics

    return make_pipeline(
        TemporalStatistics(), StandardScaler(), KNeighborsClassifier(5, weights="distance")
    )


# pretrain's settings of one method: (flag, default)
# (the library's defaults, tested, but for the backbone: a CPU-sized one here)
METHOD_FLAGS = {
    "npid": dict(backbone="esresnet_tiny", embedding_dim=128, nce_k=64, nce_t=0.4, loss="nce"),
    "afp": dict(frame_duration=2.56, pair_loss=True, threshold=1.0, margin=1.0, code_channels=128),
}
# pretrain's settings of one kind of --features (ESResNet's spectrograms have no mel bands)
FEATURE_FLAGS = {"log_mel": dict(n_mels=64), "esresnet": {}}


def _resolve_flags(args, option: str, flags_by_choice: dict) -> None:
    """Refuse the settings of another choice of ``--option`` than the one given (they would
    be ignored), fill in the defaults of the settings left out."""
    chosen = getattr(args, option)
    for choice, flags in flags_by_choice.items():
        foreign = []
        for name, default in flags.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
            elif choice != chosen:
                flag = "--" + name.replace("_", "-")
                if name == "pair_loss":
                    flag = "--pair-loss" if args.pair_loss else "--no-pair-loss"
                foreign.append(flag)
        if foreign:
            are = "is a setting" if len(foreign) == 1 else "are settings"
            raise ValueError(f"{', '.join(foreign)} {are} of --{option} {choice}, not {chosen}")


def _default_epochs() -> tuple[int, int, int]:
    """The library's epochs: NPID's ``max_epochs``, AFP's ``mse_epochs`` and ``pair_epochs``."""
    import inspect

    from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder

    npid = inspect.signature(NPIDEmbedder).parameters
    afp = inspect.signature(AFPPairLossEmbedder).parameters
    return npid["max_epochs"].default, afp["mse_epochs"].default, afp["pair_epochs"].default


def _cluster(Z, n_clusters: int, tsne: bool, seed: int) -> np.ndarray:
    """k-means cluster labels of the rows of ``Z``; with ``tsne``, of their 2-d t-SNE map
    (the AFP paper's protocol: t-SNE, then k-means on the map)."""
    from sklearn.cluster import KMeans

    if tsne and Z.shape[1] > 2:  # (a map of two or fewer columns is its own map)
        from sklearn.manifold import TSNE

        if len(Z) < 5:
            raise ValueError(
                f"--tsne maps each test fold, and a fold of {len(Z)} clips is too small for "
                "t-SNE (5 or more); drop --tsne"
            )

        # perplexity must stay below the clips of a fold; sklearn's 30 for 90 clips or more
        perplexity = max(1.0, min(30.0, (len(Z) - 1) / 3))
        Z = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(Z)
    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(Z)


def _decode_once_budget() -> int:
    """Bytes of waveforms a streaming model's corpus may take when decoded once: a quarter
    of the memory available (fine-tuning copies the training and test folds), at most 4 GiB."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on this platform
        available = 16 * 2**30
    return min(4 * 2**30, available // 4)


def _in_memory_copy(model):
    """A copy of a streaming model that reads decoded waveforms (its spectrogram step only)."""
    import copy

    model = copy.deepcopy(model)
    model.frontend = model.frontend.steps[-1][1]  # the network runs this step itself
    # arrays in memory need no DataLoader workers (each would get a copy of them)
    return model.set_params(iterator_train__num_workers=0, iterator_valid__num_workers=0)


def _output_path(path, flag: str, figure: bool = False) -> Path | None:
    """The file to write, ready before the work: ``~`` expanded, its folder made, and for a
    figure a format matplotlib writes (so that nothing fails after minutes of work)."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"{flag} {path}: {path.parent} is a file, not a folder")
    if figure:
        try:
            from matplotlib.backend_bases import FigureCanvasBase
        except ImportError:
            raise ImportError(f"{flag} needs matplotlib: pip install matplotlib") from None
        formats = FigureCanvasBase.get_supported_filetypes()
        if path.suffix.lstrip(".").lower() not in formats:
            raise ValueError(
                f"{flag} {path}: matplotlib writes {', '.join(sorted(formats))}, not "
                f"{path.suffix or 'a file without a suffix'}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _writable_folder(folder: Path, flag: str, path) -> None:
    """Fail now, not after hours of training, when nothing can be written in ``folder``."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sklaudio-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot write in {folder} ({exc.strerror})") from None


def _is_model_file(path: Path) -> bool:
    """Whether ``path`` is a file torch saved (a zip holding ``data.pkl``), as models are."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _model_output_path(path) -> Path:
    """``pretrain --out``: a new file, or a model file to replace, never a folder or another
    kind of file (an audio file given by mistake would be lost), checked before training."""
    if not str(path).strip():
        raise ValueError("--out must name the model file to write, like model.pt")
    folder = str(path).rstrip("/" + os.sep)
    if str(path) != folder or Path(path).expanduser().is_dir():
        raise ValueError(
            f"--out {path} is a folder; give the model file's name, like {folder}/model.pt"
        )
    out = _output_path(path, "--out")
    if out.exists() and not _is_model_file(out):
        raise ValueError(
            f"--out {path} exists and is not a model file; it would be overwritten. Remove it "
            "or choose another name"
        )
    _writable_folder(out.parent, "--out", path)
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


CORPORA = {
    "esc10": "load_esc10",
    "esc50": "load_esc50",
    "urbansound8k": "load_urbansound8k",
    "dcase2013": "load_dcase2013_scenes",
    "folder": "load_folder",
}
PROTOCOLS = ("knn", "linear", "finetune", "cluster")
WORKERS_HELP = (
    "DataLoader worker processes that decode files for a model made with pretrain --stream "
    "(default: as saved; 0 decodes in this process)"
)


def _load_corpus(
    name: str,
    root: str,
    on_error: str = "raise",
    n_folds: int | None = None,
    labelled=True,
    say=print,
):
    from sklaudio import datasets

    if n_folds is not None and name != "folder":
        raise ValueError(f"--n-folds is for --dataset folder; {name} has official folds")
    extra = {"n_folds": n_folds} if n_folds is not None else {}
    if name == "folder" and not labelled:  # pre-training: every file, no folds to make
        extra["labelled"] = False
    load = getattr(datasets, CORPORA[name])
    if name != "dcase2013":
        return load(root, on_error=on_error, **extra)
    try:
        return load(root, on_error=on_error)
    except FileNotFoundError as exc:
        message = str(exc)
        hint = re.search(r"; pass subset='(\w+)' to load the other set alone", message)
        if hint is None:
            raise
        if labelled:  # evaluation trains on one set and tests on the other: both are needed
            raise FileNotFoundError(message.replace(hint.group(0), "")) from None
        # pre-training needs no labels and no folds: the set that is there will do
        missing = re.search(r"the DCASE 2013 (\w+) set is missing", message).group(1)
        try:
            corpus = load(root, on_error=on_error, subset=hint.group(1))
        except FileNotFoundError as other:
            if "set is missing" not in str(other):
                raise
            raise FileNotFoundError(  # neither set: the layout, once
                f"neither DCASE 2013 set is in {root}: "
                + message.replace(hint.group(0), "").split(": ", 1)[1]
            ) from None
        say(f"{name}: the {missing} set is not in {root}; pre-training on the {hint.group(1)} set")
        return corpus


# corpora whose clips are known by their FOLD-SOURCE-TAKE name in every release: ESC-10 is
# a subset of ESC-50, and its original release holds the same clips as .ogg files
ESC_CORPORA = ("esc10", "esc50")


def _pooled_once(corpus, name, root, seen: dict, say) -> dict:
    """Leave out of ``corpus`` (in place) the files an earlier pooled corpus already holds
    (the same folder twice, ESC-10 beside ESC-50, a link), and the ESC clips it holds under
    another file name (ESC-10's original ``1-100032-A.ogg`` is ESC-50's ``1-100032-A-0.wav``),
    saying how many: each clip is trained on once. Returns this corpus' files, by their real
    path, and its ESC clips, by their ``("esc clip", FOLD-SOURCE-TAKE)`` key."""
    from sklaudio.datasets._esc import esc_clip_key

    real = [os.path.realpath(f) for f in corpus.filenames]
    clip_names = [esc_clip_key(f) if name in ESC_CORPORA else None for f in corpus.filenames]
    keys = [None if clip is None else ("esc clip", clip) for clip in clip_names]
    here = f"{name} at {root}"
    mine: dict = {}
    again = np.zeros(len(real), dtype=bool)
    same_clip = np.zeros(len(real), dtype=bool)
    for i, (r, key) in enumerate(zip(real, keys)):  # in an earlier corpus, or twice here
        again[i] = r in seen or r in mine
        same_clip[i] = not again[i] and key is not None and (key in seen or key in mine)
        mine.setdefault(r, here)
        if key is not None:
            mine.setdefault(key, here)
    if again.any():
        first = next(seen.get(r, here) for r, a in zip(real, again) if a)
        say(
            f"note: {int(again.sum())} of the {len(real)} files of {here} were already "
            f"pooled (from {first}); each file is used once"
        )
    if same_clip.any():
        first = next(seen.get(k, here) for k, a in zip(keys, same_clip) if a)
        example = next(k[1] for k, a in zip(keys, same_clip) if a)
        say(
            f"note: {int(same_clip.sum())} of the {len(real)} files of {here} are ESC clips "
            f"already pooled under another file name (from {first}; ESC-10 is a subset of "
            f"ESC-50, a clip is known by its fold-source-take name, like {example!r}); each "
            "clip is used once"
        )
    corpus.filenames = corpus.filenames[~(again | same_clip)]
    return mine


def _say(args):
    return (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, flush=True))


# --out names that are meant as files of another format, not folders to create
FILE_SUFFIXES = {".txt", ".csv", ".tsv", ".npz", ".json", ".pt", ".pth", ".pkl", ".h5", ".hdf5"}
CHECK_CHUNK = 256  # files decoded at once when only checking which ones can be read


def _read_skipping(reader, files):
    """``reader.transform(files)`` with ``on_error='skip'``: ``(waves, kept)``, where
    ``kept`` indexes the files that could be read; ``waves`` is None when none could."""
    reader.skipped_ = []
    try:
        waves = reader.transform(files)
    except ValueError:
        if len(reader.skipped_) == len(files):  # every file failed (each one is listed)
            return None, np.zeros(0, dtype=np.int64)
        raise
    dropped = {i for i, _, _ in reader.skipped_}
    return waves, np.array([i for i in range(len(files)) if i not in dropped], dtype=np.int64)


def _decodable(reader, files):
    """Indices of the files ``reader`` can decode, checked chunk by chunk so that no more
    than ``CHECK_CHUNK`` waveforms are ever held (for models and runs that stream)."""
    reader = reader.set_params(on_error="skip")
    kept = []
    for start in range(0, len(files), CHECK_CHUNK):
        _, ok = _read_skipping(reader, files[start : start + CHECK_CHUNK])
        kept.append(ok + start)
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _model_input(model, files, n_jobs=None, on_error="raise", reader=None):
    """What ``model.transform`` takes for these files, and which of them it holds.

    The paths themselves for a model that streams (its front end starts with an
    AudioReader), else the waveforms decoded by ``reader`` (by default the AudioReader of
    the model's input). With ``on_error='skip'`` the files that fail to decode are left out
    (the AudioReader warns with the list); ``kept`` indexes the files that remain (``X`` is
    None when none does).
    """
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    files = np.asarray(files, dtype=object)
    if isinstance(getattr(model, "frontend", None), Pipeline):
        if on_error == "raise":  # the model decodes each file while it embeds it
            return files, np.arange(len(files))
        kept = _decodable(clone(model.frontend.steps[0][1]).set_params(n_jobs=n_jobs), files)
        return (files[kept] if len(kept) else None), kept
    reader = _reader_for(model, n_jobs) if reader is None else clone(reader)
    reader = reader.set_params(on_error=on_error).fit(files)
    if on_error == "raise":
        X, kept = reader.transform(files), np.arange(len(files))
    else:
        X, kept = _read_skipping(reader, files)
    return _in_model_channels(model, X), kept


def _in_model_channels(model, X):
    """Mono clips ``(n, samples)`` as ``(n, 1, samples)`` for a model fitted on one channel
    axis (files mixed to its one channel); anything else as it is."""
    shape = tuple(getattr(model, "input_shape_", ()))
    if X is not None and X.ndim == 2 and len(shape) == 2 and shape[0] == 1:
        return X[:, None]
    return X


def _load_model(args):
    """The saved model of ``--model``, with the read-out of ``--output`` when one is given."""
    from sklaudio.persist import load

    model = load(args.model, device=args.device)
    if not hasattr(model, "transform"):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}, not an embedder; `sklaudio "
            f"{args.command}` needs a model made by `sklaudio pretrain` (an NPIDEmbedder or "
            "AFPPairLossEmbedder)"
        )
    if getattr(args, "workers", None) is not None:  # a saved model keeps its pre-training's
        if not _streams(model):
            _say(args)(
                "note: --workers is for a model made with pretrain --stream; this one reads "
                "decoded clips, so --workers is not used"
            )
        else:
            model.set_params(iterator_valid__num_workers=args.workers)
    if args.output is not None:
        if "output" not in model.get_params():
            raise ValueError(f"{type(model).__name__} has no `output` read-out to set")
        if getattr(args, "protocol", None) == "finetune":
            raise ValueError("--output chooses a read-out; --protocol finetune trains the encoder")
        model.set_params(output=args.output)
        model._raise_on_failed(model._output_checks())  # before any file is decoded
    return model


def _say_reading_changes(args, name, files, reader):
    """Say what the AudioReader will change in the files (from their headers: nothing is
    decoded): clips cropped or padded to its duration, channels mixed to mono, sample rates
    resampled, so that a corpus of 30 s stereo scenes at 48 kHz read as 5 s mono clips at
    22.05 kHz, say, is not a surprise. Informational only: a header that cannot be read is
    passed over (the reader reports such files itself)."""
    import soundfile as sf

    from sklaudio.io import _sf_path

    if args.quiet or len(files) == 0:
        return
    infos = []
    for f in files:
        try:
            info = sf.info(_sf_path(f))
        except (RuntimeError, OSError):
            continue
        if info.frames > 0:  # a file without samples is refused by the reader, not padded
            infos.append((info.duration, info.samplerate, info.channels))
    if not infos:
        return
    lengths, rates, channels = (np.asarray(column) for column in zip(*infos))
    duration = reader.duration
    if duration is not None:
        longer = int(np.sum(lengths > duration + 1e-3))
        shorter = int(np.sum(lengths < duration - 1e-3))
        fixes = []
        if longer:
            fixes.append(
                f"{_plural(longer, 'longer clip')} centre-cropped (up to {lengths.max():.3g} s)"
            )
        if shorter:
            fixes.append(
                f"{_plural(shorter, 'shorter clip')} zero-padded (down to {lengths.min():.3g} s)"
            )
        if fixes:
            whose = "--duration" if args.command == "pretrain" else "the model's duration"
            print(f"{name}: clips are read as {duration:g} s ({whose}): {', '.join(fixes)}")
    if reader.mono and (channels > 1).any():
        most = int(channels.max())
        print(
            f"{name}: {_plural(int(np.sum(channels > 1)), 'multichannel file')} (up to {most} "
            "channels) averaged to mono"
        )
    if reader.sample_rate is not None:
        up = np.unique(rates[rates < reader.sample_rate])
        down = np.unique(rates[rates > reader.sample_rate])
        for moved, which, note in (
            (up, "upsampled", _nothing_above(up)),
            (down, "downsampled", ""),
        ):
            if moved.size:
                count = int(np.isin(rates, moved).sum())
                listed = ", ".join(f"{r:g}" for r in moved[:4])
                listed += ", ..." if moved.size > 4 else ""
                print(
                    f"{name}: {_plural(count, 'file')} at {listed} Hz {which} to "
                    f"{reader.sample_rate} Hz{note}"
                )
    sys.stdout.flush()


def _nothing_above(rates) -> str:
    """What upsampled files lack: nothing above half their own rate."""
    if not rates.size:
        return ""
    low, high = rates.min() / 2, rates.max() / 2
    if low == high:
        return f"; they hold nothing above {high:g} Hz"
    return f"; they hold nothing above half their rate ({low:g} to {high:g} Hz)"


def _model_reader(model):
    """The AudioReader a saved model reads files with (its front end's, or one for its input)."""
    reader = model.frontend.steps[0][1] if _streams(model) else None
    return reader if reader is not None else _reader_for(model)


def _reader_for(model, n_jobs=None):
    """The AudioReader that gives a saved model the waveforms it was trained on."""
    from sklaudio.io import AudioReader

    frontend = getattr(model, "frontend", None)
    if frontend is None or not hasattr(frontend, "sample_rate"):
        raise ValueError(
            "this model reads spectrograms, not audio files; models made by "
            "`sklaudio pretrain` carry their front end"
        )
    n_samples = int(model.input_shape_[-1])
    return AudioReader(
        sample_rate=frontend.sample_rate,
        duration=n_samples / frontend.sample_rate,
        # a model fitted in Python on (n, channels, samples) waveforms reads every channel
        # (one channel: any file, mixed down; the channel axis is added by _model_input)
        mono=len(model.input_shape_) == 1 or int(model.input_shape_[0]) == 1,
        n_jobs=n_jobs,
    )


def _pretrain(args) -> int:
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    from sklaudio.callbacks import CHECKPOINT_FILE
    from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder
    from sklaudio.features import ESRESNET_STFT, SpectrogramTransformer, _check_device_available
    from sklaudio.io import AudioReader
    from sklaudio.nn import BACKBONES
    from sklaudio.persist import save

    say = _say(args)
    if len(args.root) != len(args.dataset):
        raise ValueError(
            f"give one --root per --dataset ({len(args.dataset)} datasets, {len(args.root)} roots)"
        )
    if args.sample_rate is None:
        args.sample_rate = 44100 if args.features == "esresnet" else 22050
    reader = AudioReader(sample_rate=args.sample_rate, duration=args.duration, n_jobs=args.n_jobs)
    _resolve_flags(args, "method", METHOD_FLAGS)
    _resolve_flags(args, "features", FEATURE_FLAGS)
    # log-mel at a 1024/512 STFT; the esresnet kind keeps its own (2048/561/1654) sizes
    stft = dict(n_fft=1024, hop_length=512) if args.features == "log_mel" else {}
    if args.n_fft is not None:
        stft["n_fft"] = args.n_fft
        if args.features == "esresnet" and args.n_fft < ESRESNET_STFT["win_length"]:
            stft["win_length"] = args.n_fft  # its window spans the frame when it cannot be longer
    if args.hop_length is not None:
        stft["hop_length"] = args.hop_length
    bands = {"n_mels": args.n_mels} if args.features == "log_mel" else {}
    frontend = SpectrogramTransformer(
        args.features, sample_rate=args.sample_rate, device=args.device, **bands, **stft
    )
    # settings that cannot work fail now, before the corpus is decoded
    out_path = _model_output_path(args.out)
    if args.workers and not args.stream:
        raise ValueError(
            "--workers sets the processes that decode files with --stream; add --stream"
        )
    if args.method == "afp" and args.features != "log_mel":
        raise ValueError("--method afp reads log-mel spectrograms; use --features log_mel")
    if args.method == "npid" and args.backbone not in BACKBONES:
        raise ValueError(f"--backbone {args.backbone}: choose one of {', '.join(BACKBONES)}")
    _check_device_available(args.device)
    silence = np.zeros((1, reader.n_samples_out), dtype=np.float32)
    clone(frontend).set_params(device="cpu").fit(silence)
    clips, seen = [], {}
    for name, root in zip(args.dataset, args.root):
        with warnings.catch_warnings():  # folds play no part in pre-training
            warnings.filterwarnings("ignore", message=".*fewer than n_folds")
            warnings.filterwarnings("ignore", message=".*looks like (ESC|UrbanSound8K)")
            corpus = _load_corpus(name, root, args.on_error, labelled=False, say=say)
        seen.update(_pooled_once(corpus, name, root, seen, say))
        if not len(corpus.filenames):
            continue
        say(f"{name}: {len(corpus.filenames)} clips from {root}")
        _say_reading_changes(args, name, corpus.filenames, reader)
        # --stream: the model reads the files per batch; else they are decoded here, once
        if args.stream and args.on_error == "skip":  # a DataLoader cannot drop a file
            say(f"{name}: checking that every file decodes (--on-error skip)")
            kept = _decodable(clone(reader), corpus.filenames)
            clips.append(corpus.filenames[kept])
        elif args.stream:
            clips.append(corpus.filenames)
        else:
            reader.set_params(on_error=args.on_error).fit(corpus.filenames)
            decoded, _ = _read_skipping(reader, corpus.filenames)
            if decoded is None:
                raise ValueError(f"no file of {name} at {root} could be read (see the warning)")
            clips.append(decoded)
        if len(clips[-1]) < len(corpus.filenames):
            say(f"{name}: {len(clips[-1])} clips kept")
    if not sum(len(c) for c in clips):
        raise ValueError("no file could be read (see the warnings)")
    clips = np.concatenate(clips)
    reader.set_params(on_error="raise")  # a streaming model cannot drop a file mid-epoch
    if args.stream:
        frontend = make_pipeline(reader.set_params(n_jobs=None), frontend)
    common = dict(
        frontend=frontend,
        device=args.device,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
        checkpoint=args.checkpoint,
        iterator_train__num_workers=args.workers,
        iterator_valid__num_workers=args.workers,
    )
    npid_epochs, afp_mse_epochs, afp_pair_epochs = _default_epochs()
    if args.method == "npid":
        nce_k = min(args.nce_k, len(clips) - 1)
        batch_size = min(args.batch_size or 64, len(clips))
        lowered = []
        if nce_k < args.nce_k and args.loss == "nce":
            lowered.append(
                f"nce_k={nce_k} negatives (--nce-k {args.nce_k} needs more than {args.nce_k} clips)"
            )
        if batch_size < (args.batch_size or 64):
            lowered.append(f"batches of {batch_size} (all the clips)")
        if lowered:
            say(f"note: {len(clips)} clips: NPID uses {' and '.join(lowered)}")
        model = NPIDEmbedder(
            backbone=args.backbone,
            embedding_dim=args.embedding_dim,
            nce_k=nce_k,
            nce_t=args.nce_t,
            loss=args.loss,
            max_epochs=npid_epochs if args.epochs is None else args.epochs,
            batch_size=batch_size,
            **common,
        )
        epochs = _plural(model.max_epochs, "epoch")
    else:
        if args.epochs is None:  # the library's phases, the paper's
            mse_epochs, pair_epochs = afp_mse_epochs, afp_pair_epochs
        else:
            mse_epochs = max(1, (2 * args.epochs) // 3)  # the paper's two phases, 2:1
            pair_epochs = args.epochs - mse_epochs
        if args.epochs is not None and not pair_epochs and args.pair_loss:
            say(
                f"note: with --epochs {args.epochs} AFP trains its MSE phase only, without "
                "the pair loss; 2 or more epochs give both phases (2:1 from 3, as in the paper)"
            )
        model = AFPPairLossEmbedder(
            frame_duration=args.frame_duration,
            pair_loss=args.pair_loss,
            threshold=args.threshold,
            margin=args.margin,
            code_channels=args.code_channels,
            mse_epochs=mse_epochs,
            pair_epochs=pair_epochs,
            batch_size=args.batch_size or 16,
            **common,
        )
        epochs = _plural(mse_epochs + pair_epochs, "epoch")
        if args.pair_loss and pair_epochs:
            epochs += f" ({mse_epochs} of MSE only, then {pair_epochs} with the pair loss)"
        else:
            epochs += " of MSE only"
    streamed = ", streamed from the files" if args.stream else ""
    say(f"pre-training {args.method} on {len(clips)} pooled clips{streamed}, {epochs}")
    if args.checkpoint and (Path(args.checkpoint) / CHECKPOINT_FILE).exists():
        say(f"{args.checkpoint} holds a checkpoint: the run resumes from it if it is this one")
    model.fit(clips)
    _stop_if_interrupted()
    save(model, out_path)
    say(f"saved {type(model).__name__} to {args.out}")
    return 0


def _embed(args) -> int:
    from sklaudio.io import list_audio_files

    say = _say(args)
    out = Path(args.out).expanduser()  # checked before any file is embedded
    if out.suffix.lower() in FILE_SUFFIXES and not out.is_dir():
        raise ValueError(f"--out {args.out}: give a file ending in .npy, or a folder")
    if out.suffix.lower() != ".npy" and out.exists() and not out.is_dir():
        raise ValueError(
            f"--out {args.out} exists and is not a folder or a .npy file; it would be "
            "overwritten. Remove it or choose another name"
        )
    if out.suffix.lower() == ".npy":
        out = _output_path(out, "--out")
        if out.is_dir():
            raise ValueError(f"--out {args.out} is a folder; give another name for the .npy file")
    model = _load_model(args)
    files = []
    for item in args.files:
        files += list_audio_files(item) if Path(item).is_dir() else [item]
    if not files:
        raise ValueError(f"no audio file in {args.files}")
    broken = next((f for f in files if "\n" in str(f) or "\r" in str(f)), None)
    if broken is not None:
        raise ValueError(
            f"the file name {str(broken)!r} holds a line break; the file list written beside "
            "the embeddings has one name per line. Rename the file"
        )

    reader = _model_reader(model)
    if args.hop is None:
        _say_reading_changes(args, "embed", files, reader)
    elif args.hop > reader.duration:
        raise ValueError(
            f"--hop {args.hop:g}: at most the model's clip length, {reader.duration:g} s "
            "(longer steps would leave parts of the recordings out)"
        )
    else:  # every clip is read, none cropped: only the rates and channels change
        _say_reading_changes(args, "embed", files, _without_duration(reader))
    segmenter = None if args.hop is None else _in_memory_copy(model) if _streams(model) else model
    chunks, written, starts, n_read = [], [], [], 0
    if segmenter is None:
        batches = [files[i : i + args.chunk_size] for i in range(0, len(files), args.chunk_size)]
    else:  # files of any length: about --chunk-size clips' worth of audio at a time
        batches = _chunks_by_duration(files, args.chunk_size * reader.duration)
    done = 0
    for chunk in batches:  # never holds all waveforms at once
        if segmenter is not None:
            X, kept, chunk_starts = _segments_input(segmenter, reader, chunk, args)
            if len(kept):
                chunks.append(segmenter.transform(X))
                written += [chunk[i] for i in kept]  # a file's name on each of its rows
                starts.append(chunk_starts)
                n_read += len(np.unique(kept))
        else:
            X, kept = _model_input(model, chunk, args.n_jobs, args.on_error)
            if len(kept):  # with --on-error skip a chunk may hold no readable file
                chunks.append(model.transform(X))
                written += [chunk[i] for i in kept]
                n_read += len(kept)
        done += len(chunk)
        if not args.quiet and sys.stderr.isatty():  # progress, not output: stdout stays clean
            print(
                f"{done}/{len(files)} files done, {len(written)} embedded",
                end="\r",
                file=sys.stderr,
                flush=True,
            )
    if not written:
        raise ValueError(f"none of the {len(files)} files could be read (see the warnings)")
    embeddings = np.concatenate(chunks)
    if n_read < len(files):
        left_out = _plural(len(files) - n_read, "file")
        say(f"left out {left_out} that could not be read (--on-error skip)")
    files = written
    if out.suffix.lower() != ".npy":
        out.mkdir(parents=True, exist_ok=True)
        out = out / "embeddings.npy"
    with open(out, "wb") as f:  # (np.save would add .npy to a name ending in .NPY)
        np.save(f, embeddings)
    # names that are not valid UTF-8 (a Latin-1 drive) are written back as their bytes
    out.with_name(out.stem + ".files.txt").write_text(
        "\n".join(map(str, files)) + "\n", encoding="utf-8", errors="surrogateescape"
    )
    if segmenter is None:
        say(f"wrote {embeddings.shape} embeddings to {out} (file order in {out.stem}.files.txt)")
        return 0
    starts_path = out.with_name(out.stem + ".starts.npy")
    with open(starts_path, "wb") as f:
        np.save(f, np.concatenate(starts))
    say(
        f"wrote {embeddings.shape} embeddings of the clips of {_plural(n_read, 'file')} to {out} "
        f"(each row's file in {out.stem}.files.txt, its start in seconds in "
        f"{starts_path.name})"
    )
    return 0


def _chunks_by_duration(files, seconds: float) -> list:
    """``files`` in runs of at most ``seconds`` of audio (from their headers), at least one
    file each: with ``--hop`` a file gives as many clips as it is long, so chunks of a fixed
    number of hour-long recordings would hold hundreds of times more than the clip chunks."""
    import soundfile as sf

    from sklaudio.io import _sf_path

    chunks, chunk, total = [], [], 0.0
    for f in files:
        try:
            length = sf.info(_sf_path(f)).duration
        except (RuntimeError, OSError):
            length = 0.0  # unreadable: the reader says why (or skips it)
        if chunk and total + length > seconds:
            chunks.append(chunk)
            chunk, total = [], 0.0
        chunk.append(f)
        total += length
    return chunks + ([chunk] if chunk else [])


def _without_duration(reader):
    from sklearn.base import clone

    return clone(reader).set_params(duration=None)


def _streams(model) -> bool:
    """Whether a saved model reads its files itself (made with ``pretrain --stream``)."""
    return hasattr(getattr(model, "frontend", None), "steps")


def _segments_input(model, reader, files, args):
    """The clips of ``reader``'s length every ``--hop`` seconds of each file, for a model that
    reads waveforms: ``(X, kept, starts)``, ``kept`` indexing the file of every clip."""
    from sklaudio.io import segment_recordings

    try:
        seg = segment_recordings(
            files,
            sample_rate=reader.sample_rate,
            duration=reader.duration,
            hop=args.hop,
            mono=reader.mono,
            n_jobs=args.n_jobs,
            on_error=args.on_error,
        )
    except ValueError as exc:  # with --on-error skip, a chunk of files none of which reads
        if args.on_error == "skip" and str(exc).startswith("no audio file could be read"):
            return None, np.zeros(0, dtype=np.int64), None
        raise
    return _in_model_channels(model, seg.data), seg.groups, seg.start


def _evaluate(args) -> int:
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklaudio.classifiers import FineTunedClassifier, WeightedKNeighborsClassifier
    from sklaudio.features import TemporalStatistics
    from sklaudio.metrics import cluster_accuracy

    say = _say(args)
    if args.tsne and args.protocol != "cluster":
        raise ValueError("--tsne is for --protocol cluster (k-means on a t-SNE map)")
    finetune_only = {
        "--epochs": args.epochs,
        "--head-init": args.head_init,
        "--head-features": args.head_features,
        "--lr": args.lr,
        "--head-lr": args.head_lr,
    }
    given = [flag for flag, value in finetune_only.items() if value is not None]
    if given and args.protocol != "finetune":
        raise ValueError(f"{', '.join(given)}: for --protocol finetune, which trains the encoder")
    args.epochs = 30 if args.epochs is None else args.epochs
    args.head_init = args.head_init or "random"
    args.head_features = args.head_features or "pooled"
    args.lr = 1e-3 if args.lr is None else args.lr
    plot = _output_path(args.plot, "--plot", figure=True)  # before minutes of work
    json_path = _json_output_path(args.json)
    model = _load_model(args)
    corpus = _load_corpus(args.dataset, args.root, args.on_error, args.n_folds)
    if corpus.target is None:
        raise ValueError(f"{args.root} has no class folders, so there is nothing to evaluate")
    if len(np.unique(corpus.target)) < 2:
        raise ValueError(
            f"{args.root} holds one class "
            f"({corpus.target_names[int(np.unique(corpus.target)[0])]!r}): accuracy needs two "
            "or more"
        )
    reader = model.frontend.steps[0][1] if _streams(model) else None
    decode_once = False
    if reader is not None and args.protocol == "finetune":
        # a model made with --stream reads its files per batch; fine-tuning would decode
        # them again in every epoch, so the corpus is decoded once when it fits in memory
        n_bytes = len(corpus.filenames) * int(np.prod(model.input_shape_)) * 4
        decode_once = n_bytes <= _decode_once_budget()
        if decode_once:
            say(f"decoding the {len(corpus.filenames)} clips once ({n_bytes / 2**20:.0f} MiB)")
            saved_workers = getattr(model, "iterator_valid__num_workers", 0)
            n_jobs = args.n_jobs if args.n_jobs is not None else saved_workers
            reader = clone(reader).set_params(n_jobs=n_jobs or None)
            model = _in_memory_copy(model)  # reads waveforms, which _model_input decodes
        else:
            say(
                f"the model streams its files ({n_bytes / 2**30:.1f} GiB decoded, more than "
                "this machine can hold): every fine-tuning epoch decodes them again"
            )
    decoder = reader if decode_once else None
    waves, kept = _model_input(model, corpus.filenames, args.n_jobs, args.on_error, decoder)
    if waves is None:
        raise ValueError(f"no file of {args.root} could be read (see the warning)")
    y, folds = corpus.target[kept], corpus.folds[kept]
    say(f"{args.dataset}: {len(y)} clips from {args.root}, {len(np.unique(folds))} folds")
    _say_reading_changes(args, args.dataset, corpus.filenames[kept], _model_reader(model))
    floor = None
    if args.floor and isinstance(waves[0], str):
        warnings.warn(
            "no floor: the model streams its files, so they are not decoded here "
            "(--no-floor silences this)",
            UserWarning,
            stacklevel=1,
        )
    elif args.floor:
        try:
            floor = _floor_spectrograms(waves, _reader_for(model).sample_rate)
        except ValueError as exc:  # clips too short for its STFT, say
            say(f"no floor: {exc}")
    if args.protocol != "finetune":
        say(f"embedding {len(waves)} clips with {type(model).__name__}")
    Z = None if args.protocol == "finetune" else model.transform(waves)
    # stage statistics differ in scale by stage: kNN and k-means read them standardised
    scaled = getattr(model, "output", None) == "stats"
    scores, curves, chance, floor_scores = [], [], [], []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        if args.protocol == "knn":
            knn = WeightedKNeighborsClassifier(n_neighbors=5)
            clf = make_pipeline(StandardScaler(), knn) if scaled else knn
            score = clf.fit(Z[train], y[train]).score(Z[test], y[test])
        elif args.protocol == "linear":
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            score = clf.fit(Z[train], y[train]).score(Z[test], y[test])
        elif args.protocol == "cluster":
            k = len(np.unique(y[test]))
            Z_test = StandardScaler().fit_transform(Z[test]) if scaled else Z[test]
            pred = _cluster(Z_test, k, args.tsne, seed=0)
            score = cluster_accuracy(y[test], pred)
            # the same cluster sizes at random: with few clips per class even random
            # clusters match the classes well, and this says how well
            rng = np.random.default_rng(fold)
            chance.append(
                np.mean([cluster_accuracy(y[test], rng.permutation(pred)) for _ in range(20)])
            )
        else:
            from skorch.dataset import Dataset
            from skorch.helper import predefined_split

            say(f"fold {fold}: fine-tuning on the other folds' {int(train.sum())} clips")
            clf = FineTunedClassifier(
                embedder=model,
                head_init=args.head_init,
                head_features=args.head_features,
                lr=args.lr,
                head_lr=args.head_lr,
                max_epochs=args.epochs,
                train_split=predefined_split(Dataset(waves[test], y[test])),
                device=args.device,
                random_state=0,
                verbose=0 if args.quiet else 1,
            ).fit(waves[train], y[train])
            _stop_if_interrupted()
            curves.append(clf.history_[:, "valid_acc"])
            score = curves[-1][-1]
        scores.append(score)
        if floor is not None:
            if args.protocol == "cluster":  # the floor is clustered alike
                stats = StandardScaler().fit_transform(
                    TemporalStatistics().fit_transform(floor[test])
                )
                floor_pred = _cluster(stats, k, args.tsne, seed=0)
                floor_scores.append(cluster_accuracy(y[test], floor_pred))
            else:
                floor_model = _floor_model().fit(floor[train], y[train])
                floor_scores.append(floor_model.score(floor[test], y[test]))
            say(f"fold {fold}: {score:.3f}  (log-mel floor {floor_scores[-1]:.3f})")
        else:
            say(f"fold {fold}: {score:.3f}")
    scores = np.asarray(scores)
    mean, std = scores.mean(), scores.std()
    print(f"{args.protocol} accuracy: {mean:.3f} ± {std:.3f} over {len(scores)} folds")
    if floor_scores:
        floor_name = "5-NN"
        if args.protocol == "cluster":
            floor_name = "t-SNE + k-means" if args.tsne else "k-means"
        # clusters are not guesses: their baseline is random clusters (printed below), not 1/k
        chance_note = "" if chance else f"; chance {1 / len(np.unique(y)):.3f}"
        print(
            f"floor, log-mel statistics + {floor_name}: {np.mean(floor_scores):.3f} ± "
            f"{np.std(floor_scores):.3f} (what a learned representation has to beat"
            f"{chance_note})"
        )
    if chance:
        per_class = len(y) / len(np.unique(y)) / len(scores)
        print(_random_clusters_line(np.mean(chance), args.tsne, per_class))
    if json_path is not None:
        result = _evaluation_record(args, model, corpus, y, folds, scores, chance, floor_scores)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        say(f"results written to {args.json}")
    if args.plot:
        from sklaudio.plotting import EmbeddingDisplay, FineTuningCurveDisplay

        title = (
            f"{args.dataset}: {type(model).__name__}, {args.protocol} accuracy "
            f"{mean:.3f} ± {std:.3f}"
        )
        if curves:
            display = FineTuningCurveDisplay.from_histories({"fine-tuned": curves})
            display.plot(title=title)
        else:  # the embeddings' PCA map, whichever protocol scored them
            display = EmbeddingDisplay.from_embeddings(Z, y, target_names=corpus.target_names)
            display.plot(title=title)
        display.figure_.savefig(plot, dpi=120, bbox_inches="tight")
        say(f"plot written to {args.plot}")
    return 0


def _random_clusters_line(chance: float, tsne: bool, per_class: float) -> str:
    """What ``evaluate --protocol cluster`` says of its baseline, random clusters of the
    same sizes: ``chance`` their mean cluster accuracy, ``per_class`` the test clips per
    class and fold (an average: ``8``, or ``about 7.3``)."""
    clustering = "t-SNE + k-means" if tsne else "k-means"
    caveat = (
        f"{clustering} on the embeddings should beat it by far"
        if chance < 0.8
        else "too few clips per class and fold for cluster accuracy to mean much"
    )
    whole = np.isclose(per_class, round(per_class))
    count = str(round(per_class)) if whole else f"about {per_class:.1f}"
    return (
        f"random clusters of the same sizes: {chance:.3f} ({caveat}; {count} test clips per "
        "class and fold)"
    )


def _json_output_path(path) -> Path | None:
    """``evaluate --json``: a file to write, checked before the work (not a folder, in a
    folder that can be written)."""
    if path is None:
        return None
    if not str(path).strip() or Path(path).expanduser().is_dir():
        raise ValueError(f"--json {path!r}: give the name of the file to write, like results.json")
    out = _output_path(path, "--json")
    _writable_folder(out.parent, "--json", path)
    return out


def _evaluation_record(args, model, corpus, y, folds, scores, chance, floor_scores) -> dict:
    """What ``evaluate --json`` writes: the settings, the score of every fold, their mean
    and (population) standard deviation, the baseline and the floor."""
    from sklaudio import __version__

    n_classes = len(np.unique(y))
    parameters = {
        "model": os.fspath(args.model),
        "model_class": type(model).__name__,
        "dataset": args.dataset,
        "root": os.fspath(args.root),
        "protocol": args.protocol,
        "tsne": bool(args.tsne),
        "n_folds": args.n_folds,
        "output": getattr(model, "output", None),
        "on_error": args.on_error,
        "floor": bool(args.floor),
        "device": args.device,
    }
    if args.protocol == "finetune":
        parameters.update(
            epochs=args.epochs,
            head_init=args.head_init,
            head_features=args.head_features,
            lr=args.lr,
            head_lr=args.head_lr,
        )
    if chance:  # clusters: the same cluster sizes at random, fold by fold
        baseline = {
            "kind": "random_clusters",
            "description": "cluster accuracy of random clusters of the same sizes",
            "scores": [float(c) for c in chance],
            "mean": float(np.mean(chance)),
        }
    else:
        baseline = {
            "kind": "chance",
            "description": "1 / number of classes",
            "mean": 1 / n_classes,
        }
    floor = None
    if floor_scores:
        method = "5-NN"
        if args.protocol == "cluster":
            method = "t-SNE + k-means" if args.tsne else "k-means"
        floor = {
            "description": f"log-mel statistics + {method}",
            "scores": [float(f) for f in floor_scores],
            "mean": float(np.mean(floor_scores)),
            "std": float(np.std(floor_scores)),
        }
    return {
        "sklaudio_version": __version__,
        "command": "evaluate",
        "parameters": parameters,
        "n_clips": int(len(y)),
        "n_classes": int(n_classes),
        "target_names": [str(name) for name in corpus.target_names],
        "metric": "cluster_accuracy" if args.protocol == "cluster" else "accuracy",
        "folds": [int(fold) for fold in np.unique(folds)],
        "fold_sizes": [int(np.sum(folds == fold)) for fold in np.unique(folds)],
        "scores": [float(score) for score in scores],
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "baseline": baseline,
        "floor": floor,
    }


def _number(text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fold_count(text: str) -> int:
    value = _number(text, int)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"must be at least 2 (one fold tests, the rest train), got {text}"
        )
    return value


def _non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _n_jobs(text: str) -> int:
    value = _number(text, int)
    if value == 0:
        raise argparse.ArgumentTypeError(
            "must be a number of jobs, or negative as in joblib (-1: all cores, -2: all but one)"
        )
    return value


def _positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sklaudio`` command."""
    from sklaudio import __version__

    parser = argparse.ArgumentParser(
        prog="sklaudio", description="Unsupervised sound representations for scikit-learn."
    )
    parser.add_argument("--version", action="version", version=f"sklaudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the main job on generated sounds (offline, no arguments needed)",
        description="Generate labelled synthetic sounds, pre-train an NPID embedder on them "
        "without labels, and print the weighted-kNN accuracy per fold beside a log-mel floor.",
    )
    demo.add_argument("--n-samples", type=_positive_int, default=200, help="clips (default 200)")
    demo.add_argument("--n-classes", type=_positive_int, default=5, help="classes (default 5)")
    demo.add_argument("--n-folds", type=_fold_count, default=5, help="folds (default 5)")
    demo.add_argument("--sample-rate", type=_positive_int, default=16000, help="Hz (default 16000)")
    demo.add_argument("--duration", type=_positive_float, default=1.0, help="seconds (default 1)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    demo.add_argument("--epochs", type=_positive_int, default=60, help="NPID epochs (default 60)")
    demo.add_argument("--device", default="auto", help="torch device (default: cuda if present)")
    demo.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel file decoding")
    demo.add_argument("--quiet", action="store_true", help="print nothing")
    demo.set_defaults(func=_demo)

    def common(p, on_error: str, read_out=True, scored=False):
        p.add_argument("--device", default="auto", help="torch device (default: cuda if present)")
        if read_out:
            standardised = " (kNN and k-means then standardise them)" if scored else ""
            p.add_argument(
                "--output",
                default=None,
                help="the model's read-out (its `output` parameter): NPID 'embedding', "
                f"'features' or 'stats'{standardised}, AFP 'distribution' or 'code' (default: "
                "as saved)",
            )
        p.add_argument(
            "--n-jobs", type=_n_jobs, default=None, help="parallel file decoding (-1: all cores)"
        )
        p.add_argument(
            "--on-error",
            choices=("raise", "skip"),
            default="raise",
            help="a file that cannot be read stops the run (default), or " + on_error,
        )
        p.add_argument("--quiet", action="store_true", help="no progress output (warnings print)")

    npid_epochs, afp_mse, afp_pair = _default_epochs()
    pretrain = sub.add_parser(
        "pretrain",
        help="pre-train an embedder without labels on one or several corpora, save it",
        description="Pre-train NPID (DLS) or AFP on the pooled audio of the given corpora "
        "(labels are not used) and save the model with sklaudio.persist.",
    )
    pretrain.add_argument("--dataset", nargs="+", required=True, choices=sorted(CORPORA))
    pretrain.add_argument("--root", nargs="+", required=True, help="one folder per --dataset")
    pretrain.add_argument(
        "--method", choices=("npid", "afp"), default="npid", help="DLS (NPID) or AFP (default npid)"
    )
    pretrain.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=f"training epochs (default: the method's own: {npid_epochs} for npid; for afp "
        f"{afp_mse + afp_pair}, the paper's {afp_mse} of MSE only, then {afp_pair} of MSE + "
        "the pair loss). AFP splits a given --epochs 2:1 between its two phases (--epochs 3: "
        "2 + 1)",
    )
    pretrain.add_argument("--out", required=True, help="model file to write")
    pretrain.add_argument(
        "--features",
        choices=("log_mel", "esresnet"),
        default="log_mel",
        help="log-mel at a 1024/512 STFT, or ESResNet's 3-band power spectrograms "
        "(default log_mel)",
    )
    pretrain.add_argument("--backbone", default=None, help="NPID backbone (default esresnet_tiny)")
    npid = pretrain.add_argument_group("NPID (DLS) settings")
    npid.add_argument(
        "--embedding-dim", type=_positive_int, default=None, help="embedding size (default 128)"
    )
    npid.add_argument(
        "--nce-k",
        type=_positive_int,
        default=None,
        help="NCE negatives per clip (default 64; lowered to the clips - 1 on a small corpus)",
    )
    npid.add_argument(
        "--nce-t", type=_positive_float, default=None, help="softmax temperature (default 0.4)"
    )
    npid.add_argument(
        "--loss",
        choices=("nce", "softmax"),
        default=None,
        help="NCE with --nce-k negatives (the paper), or the exact softmax of Eq. 1, fine for "
        "a few thousand clips (default nce)",
    )
    afp = pretrain.add_argument_group("AFP settings")
    afp.add_argument(
        "--pair-loss",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="phase 2 adds the pair loss (default); --no-pair-loss trains MSE only, the "
        "paper's 'w/o PairLoss' system",
    )
    afp.add_argument(
        "--threshold",
        type=_positive_float,
        default=None,
        help="pair loss: pairs below this normalised KL count as similar (default 1.0; the "
        "AFP docs say how to choose it)",
    )
    afp.add_argument(
        "--margin",
        type=_positive_float,
        default=None,
        help="pair loss: dissimilar pairs pushed this far apart in KL (default 1.0)",
    )
    afp.add_argument(
        "--code-channels",
        type=_positive_int,
        default=None,
        help="channels of the code, the feature size K (default 128)",
    )
    pretrain.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="clips per batch (default 64 for npid; sequences per batch, 16, for afp)",
    )
    pretrain.add_argument(
        "--sample-rate",
        type=_positive_int,
        default=None,
        help="Hz every file is resampled to (default 22050 for log_mel features, 44100 for "
        "esresnet, whose STFT sizes are ESResNet's at 44.1 kHz; the corpus' own rate avoids "
        "resampling, and upsampling adds no content)",
    )
    pretrain.add_argument(
        "--duration",
        type=_positive_float,
        default=5.0,
        help="seconds per clip: longer files are centre-cropped, shorter ones zero-padded "
        "(default 5, ESC's length; use 4 for UrbanSound8K)",
    )
    pretrain.add_argument(
        "--n-mels",
        type=_positive_int,
        default=None,
        help="log-mel bands (default 64; --features log_mel only)",
    )
    pretrain.add_argument(
        "--n-fft",
        type=_positive_int,
        default=None,
        help="STFT size in samples (default 1024 for log_mel, 2048 for esresnet, whose "
        "1654-sample window shrinks to a smaller size; raise it when mel bands fall between "
        "FFT bins)",
    )
    pretrain.add_argument(
        "--hop-length",
        type=_positive_int,
        default=None,
        help="STFT hop in samples (default 512 for log_mel, 561 for esresnet)",
    )
    pretrain.add_argument(
        "--frame-duration",
        type=_positive_float,
        default=None,
        help="AFP: seconds per frame; 4 frames with a quarter-frame hop make one training "
        "sequence (default 2.56, the paper's; lower it for clips shorter than 4.5 s)",
    )
    pretrain.add_argument("--random-state", type=int, default=0, help="(default 0)")
    pretrain.add_argument("--checkpoint", default=None, help="directory to resume from / save to")
    pretrain.add_argument(
        "--stream",
        action="store_true",
        help="read the files per batch instead of decoding the corpus into memory first "
        "(for corpora larger than memory; the model keeps its AudioReader)",
    )
    pretrain.add_argument(
        "--workers",
        type=_non_negative_int,
        default=0,
        help="DataLoader worker processes that decode files with --stream (default 0)",
    )
    common(
        pretrain,
        "is left out of training and listed in a warning (with --stream every file is "
        "decoded once before training to find those)",
        read_out=False,
    )
    pretrain.set_defaults(func=_pretrain)

    evaluate = sub.add_parser(
        "evaluate",
        help="official-fold evaluation of a saved model",
        description="Embed a labelled corpus with a saved model and score it over the corpus' "
        "official folds: weighted kNN, a linear classifier, k-means cluster accuracy, or "
        "fine-tuning (DLS section 5).",
    )
    evaluate.add_argument("--model", required=True, help="a model file of sklaudio pretrain")
    evaluate.add_argument("--dataset", required=True, choices=sorted(CORPORA))
    evaluate.add_argument("--root", required=True, help="the corpus' folder")
    evaluate.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="knn",
        help="weighted 5-NN on the embeddings, a logistic regression, k-means cluster "
        "accuracy, or fine-tuning all layers (default knn)",
    )
    evaluate.add_argument(
        "--tsne",
        action="store_true",
        help="for cluster: k-means on a 2-d t-SNE map of each test fold (the AFP paper's "
        "protocol) instead of on the embeddings",
    )
    evaluate.add_argument(
        "--n-folds",
        type=_fold_count,
        default=None,
        help="--dataset folder only: stratified folds to make (default 5; the other corpora "
        "have official folds)",
    )
    evaluate.add_argument(
        "--epochs", type=_positive_int, default=None, help="for finetune (default 30)"
    )
    evaluate.add_argument(
        "--head-features",
        choices=("pooled", "stats"),
        default=None,
        help="for finetune: the new layer reads the pooled last stage (the paper, default) or "
        "the statistics of stages 2-4",
    )
    evaluate.add_argument(
        "--head-init",
        choices=("random", "linear_probe"),
        default=None,
        help="for finetune: the new layer starts random (the paper, default) or from a linear "
        "probe (LP-FT)",
    )
    evaluate.add_argument(
        "--lr", type=_positive_float, default=None, help="for finetune (default 1e-3)"
    )
    evaluate.add_argument(
        "--head-lr",
        type=_positive_float,
        default=None,
        help="for finetune: the new layer's learning rate (default --lr); after "
        "--head-init linear_probe, --lr 3e-4 --head-lr 1e-2 keeps the probe's start",
    )
    evaluate.add_argument(
        "--plot",
        default=None,
        help="write a figure (PNG, PDF, ...): the learning curves for finetune, else a PCA "
        "map of the embeddings coloured by class",
    )
    evaluate.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score log-mel statistics on the same folds, the hand-crafted floor: by "
        "5-NN, or clustered as the model is for --protocol cluster (default on)",
    )
    evaluate.add_argument(
        "--json",
        default=None,
        metavar="PATH",
        help="also write the results as JSON: the score of every fold, their mean and "
        "standard deviation, the baseline, the floor, the settings and the sklaudio version",
    )
    evaluate.add_argument("--workers", type=_non_negative_int, default=None, help=WORKERS_HELP)
    common(
        evaluate,
        "is left out of every fold and listed in a warning (a model made with pretrain "
        "--stream decodes every file once first to find those)",
        scored=True,
    )
    evaluate.set_defaults(func=_evaluate)

    embed = sub.add_parser(
        "embed",
        help="embed audio files with a saved model",
        description="Write the embeddings of audio files (or of every audio file in the "
        "given folders) to a .npy file, with the file order beside it.",
    )
    embed.add_argument("--model", required=True, help="a model file of sklaudio pretrain")
    embed.add_argument("files", nargs="+", help="audio files or folders")
    embed.add_argument("--out", required=True, help="embeddings.npy, or a folder")
    embed.add_argument("--chunk-size", type=_positive_int, default=256, help="files per batch")
    embed.add_argument(
        "--hop",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="embed every clip of the model's length that starts SECONDS after the last one "
        "(at most the clip length; the end of a file is padded), one row per clip, with the "
        "clips' start times in <out>.starts.npy; default: one clip from each file's centre",
    )
    embed.add_argument("--workers", type=_non_negative_int, default=None, help=WORKERS_HELP)
    common(
        embed,
        "is left out of the embeddings and of the file list beside them, and listed in a "
        "warning (a model made with pretrain --stream decodes every file once first to find "
        "those)",
    )
    embed.set_defaults(func=_embed)
    for command in sub.choices.values():  # what its messages may name: its options
        options = {o for action in command._actions for o in action.option_strings}
        command.set_defaults(cli_options=frozenset(options), subparser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sklaudio`` console script."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command is None:
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        parser.print_help()
        return 2
    if unknown and args.command == "embed" and not any(u.startswith("-") for u in unknown):
        args.files += unknown  # files after an option (argparse takes them before or after)
        unknown = []
    if unknown:  # named by the sub-command, whose --help lists what it takes
        args.subparser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _INTERRUPTED.clear()
    with warnings.catch_warnings(), _interrupts_noted():
        warnings.showwarning = _show_warning(args.command, args.cli_options)
        try:
            return args.func(args)
        except KeyboardInterrupt:
            hint = ""
            if getattr(args, "checkpoint", None):
                hint = f"; run the same command again to resume from {args.checkpoint}"
            print(f"sklaudio {args.command}: interrupted, nothing written{hint}", file=sys.stderr)
            return 130
        except (ValueError, TypeError, OSError, ImportError) as exc:
            message = _with_skip_advice(_cli_words(_reason(exc), args.cli_options), args)
            lines = message.splitlines()
            lines = lines or [type(exc).__name__]
            print(f"sklaudio {args.command}: error: {lines[0]}", file=sys.stderr)
            for line in lines[1:]:  # e.g. the layout a data set folder should have
                print(line, file=sys.stderr)
            return 1


# Set when Ctrl-C (SIGINT) arrives: skorch ends training quietly on a KeyboardInterrupt and
# keeps the model, which a command must neither save nor score.
_INTERRUPTED: list[bool] = []


@contextlib.contextmanager
def _interrupts_noted():
    """Note every SIGINT (and raise KeyboardInterrupt, as Python's own handler does)."""

    def on_sigint(signum, frame):
        _INTERRUPTED.append(True)
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # ignored on purpose (a background job, `trap
        yield  # '' INT`), or a handler set outside Python that could not be put back
        return
    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def console_main() -> None:
    """The ``sklaudio`` console script: :func:`main`, and after a Ctrl-C the process ends by
    SIGINT, as Python's own handling does, so that a shell loop running it stops too (bash
    goes on after a child that exits normally, whatever its exit code)."""
    code = main()
    if code == 130 and _INTERRUPTED and os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(code)


def _stop_if_interrupted() -> None:
    """After a fit: a Ctrl-C that training swallowed stops the command too."""
    if _INTERRUPTED:
        raise KeyboardInterrupt


def _reason(exc: BaseException) -> str:
    """The message of ``exc``; for an error raised in a DataLoader worker process, the
    original error's last line (torch re-raises it as "Caught ... Original Traceback")."""
    message = str(exc)
    if message.startswith("Caught ") and "Original Traceback" in message:
        lines = message.splitlines()
        prefix = f"{type(exc).__name__}: "
        starts = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        if starts:
            return "\n".join([lines[starts[-1]][len(prefix) :], *lines[starts[-1] + 1 :]])
    return message


# what the reader advises for a file it cannot decode, where the command has a way past it
_FILE_ADVICE = ("convert the file or remove it", "fetch it again or remove it")


def _with_skip_advice(message: str, args) -> str:
    """An error about a file that cannot be read, with ``--on-error skip`` beside the
    reader's advice when the command takes it and was not given it."""
    if getattr(args, "on_error", None) != "raise" or "--on-error" not in args.cli_options:
        return message
    for advice in _FILE_ADVICE:
        if advice in message:
            return message.replace(
                advice,
                f"{advice} (or pass --on-error skip to leave out every file that cannot be read)",
                1,
            )
    return message


def _show_warning(command: str, options: set[str]):
    def show(message, category, filename, lineno, file=None, line=None):
        if _INTERRUPTED and "training stopped after" in str(message):
            return  # the command says it was interrupted, and writes nothing
        kind = "warning" if category is UserWarning else category.__name__
        text = _cli_words(str(message), options)
        print(f"sklaudio {command}: {kind}: {text}", file=sys.stderr)

    return show


# Python parameters that the library's messages name, and the options that set them here
_OPTIONS = {
    "on_error": "--on-error",
    "device": "--device",
    "output": "--output",
    "checkpoint": "--checkpoint",
    "n_folds": "--n-folds",
    "batch_size": "--batch-size",
    "backbone": "--backbone",
    "frame_duration": "--frame-duration",
    "n_mels": "--n-mels",
    "n_fft": "--n-fft",
    "hop_length": "--hop-length",
    "duration": "--duration",
    "sample_rate": "--sample-rate",
    "embedding_dim": "--embedding-dim",
    "nce_k": "--nce-k",
    "nce_t": "--nce-t",
    "loss": "--loss",
    "threshold": "--threshold",
    "margin": "--margin",
    "code_channels": "--code-channels",
}
# What a message must not have rewritten: quoted text (paths) and reprs, Name(...)
_PROTECTED = re.compile(r"'[^']*'|\"[^\"]*\"|\b[A-Z]\w*\([^()]*\)")


def _cli_words(message: str, options: set[str] | None = None) -> str:
    """A library message with the command's options in place of Python parameters:
    "pass on_error='skip'" becomes "pass --on-error skip". Only names of ``options`` (the
    command's own) are rewritten, never inside quotes (paths) or reprs."""
    # the model fixes its channels (no command has a mono option): the files must match
    for python_advice, cli_advice in (
        ("pass mono=True or convert the files", "convert the files to the model's channels"),
        ("pass mono=True or convert them", "convert them to the model's channels"),
        (
            "pass mono=True to the AudioReader or convert the file",
            "convert the file to the model's channels",
        ),
    ):
        message = message.replace(python_advice, cli_advice)
    names = [n for n in _OPTIONS if options is None or _OPTIONS[n] in options]
    if not names:
        return message
    alternatives = "|".join(names)
    pattern = re.compile(
        rf"(?:(?<=\s)|(?<=^)|(?<=\())({alternatives})(?:='([^']*)'|=([^\s,;:)']+)| must be)"
        rf"|\b(lower|raise|set) ({alternatives})\b"
    )
    protected = [m.span() for m in _PROTECTED.finditer(message)]

    def replace(m):
        if any(a <= m.start() < b for a, b in protected):
            return m[0]
        if m[4]:
            return f"{m[4]} {_OPTIONS[m[5]]}"
        option = _OPTIONS[m[1]]
        if m[0].endswith(" must be"):
            return f"{option} must be"
        return f"{option} {m[2] if m[2] is not None else m[3]}"

    message = pattern.sub(replace, message)
    # where a Python user finds the list; the command prints it with the warning
    from sklaudio.datasets._base import _IN_BUNCH_SKIPPED
    from sklaudio.io import _IN_RESULT_SKIPPED, _IN_SKIPPED

    for python_only in (_IN_BUNCH_SKIPPED, _IN_SKIPPED, _IN_RESULT_SKIPPED):
        message = message.replace(python_only, "")
    if options is None or "--device" in options:
        message = message.replace("there is one) or 'cpu'", "there is one) or --device cpu")
    if options is None or "--checkpoint" in options:
        message = message.replace("same checkpoint= directory", "same --checkpoint directory")
    return message


if __name__ == "__main__":  # pragma: no cover
    console_main()

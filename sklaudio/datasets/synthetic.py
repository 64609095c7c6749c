"""Synthetic sound events: a labelled audio corpus made in memory, in well under a second."""

from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_sounds"]

# One generator per family; class c uses family c % 5 in frequency band c.
_FAMILIES = ("tone", "chirp", "noise_burst", "clicks", "harmonic")

# Frequency range shared by all classes, as fractions of the Nyquist frequency so
# that any sample_rate works: 110 Hz to 6.6 kHz at 22050 Hz.
_LOWEST, _HIGHEST = 0.01, 0.6
# Each band spans this many band spacings, so neighbouring classes overlap.
_BAND_OVERLAP = 2.5
_N_HARMONICS = 6
# Attack and release of every event, to avoid clicks at its edges.
_FADE_S = 0.01

_DESCR = """\
Synthetic sound events (sklaudio.datasets.make_sounds)
------------------------------------------------------

Each clip holds one sound event over white background noise. A class is a generator
family (tone, linear chirp, band-limited noise burst, click train, harmonic stack)
combined with a class-specific frequency band; classes beyond the fifth reuse the
families in other bands ('tone_2', ...). Neighbouring bands overlap, and onset, event
length, pitch and gain (-20 to 0 dB) are random per clip, so classes are separable by
spectral statistics but not perfectly. Folds spread every class evenly. Generated data:
no citation, no license restrictions.
"""


def _class_names(n_classes: int) -> list[str]:
    names = []
    for c in range(n_classes):
        family, variant = _FAMILIES[c % len(_FAMILIES)], c // len(_FAMILIES)
        names.append(family if variant == 0 else f"{family}_{variant + 1}")
    return names


def _class_bands(n_classes: int, nyquist: float) -> np.ndarray:
    """``(n_classes, 2)`` lower and upper band edges in Hz, overlapping neighbours."""
    lo, hi = np.log(_LOWEST * nyquist), np.log(_HIGHEST * nyquist)
    spacing = (hi - lo) / n_classes
    centres = lo + spacing * (np.arange(n_classes) + 0.5)
    half = 0.5 * _BAND_OVERLAP * spacing
    edges = np.stack([centres - half, centres + half], axis=1)
    return np.exp(np.clip(edges, lo, hi))


def _uniform(rng, low, high, k):
    """``(k, 1)`` float32 draws, to broadcast against ``(k, n)`` float32 time axes."""
    return rng.uniform(low, high, (k, 1)).astype(np.float32)


def _log_uniform(rng, low, high, k):
    return np.exp(_uniform(rng, np.log(low), np.log(high), k))


def _tone(rng, tau, band, sample_rate, length):
    k = tau.shape[0]
    freq = _log_uniform(rng, *band, k)
    return np.sin(2 * np.pi * freq * tau + _uniform(rng, 0, 2 * np.pi, k))


def _chirp(rng, tau, band, sample_rate, length):
    k = tau.shape[0]
    start, stop = _log_uniform(rng, *band, k), _log_uniform(rng, *band, k)
    # linear sweep from start to stop Hz over the event
    return np.sin(2 * np.pi * tau * (start + (stop - start) * tau / (2 * length)))


def _noise_burst(rng, tau, band, sample_rate, length):
    k, n = tau.shape
    centre = _log_uniform(rng, *band, k)
    width = _uniform(rng, 1.2, 2.0, k)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate).astype(np.float32)
    mask = (freqs >= centre / width) & (freqs <= centre * width)
    spectrum = np.fft.rfft(rng.standard_normal((k, n), dtype=np.float32), axis=1) * mask
    return np.fft.irfft(spectrum, n=n, axis=1).astype(np.float32)


def _clicks(rng, tau, band, sample_rate, length):
    k = tau.shape[0]
    period = 1 / _uniform(rng, 8.0, 30.0, k)
    decay = _uniform(rng, 0.002, 0.006, k)
    ring = _log_uniform(rng, *band, k)
    # each click is a damped sinusoid restarting every period
    local = np.mod(np.maximum(tau, 0), period)
    return np.exp(-local / decay) * np.sin(2 * np.pi * ring * local)


def _harmonic(rng, tau, band, sample_rate, length):
    k = tau.shape[0]
    f0 = _log_uniform(rng, *band, k)
    theta = 2 * np.pi * f0 * tau + _uniform(rng, 0, 2 * np.pi, k)
    # sin(h * theta) by the Chebyshev recurrence: one sin and one cos for all harmonics
    two_cos = 2 * np.cos(theta)
    previous, current = np.zeros_like(theta), np.sin(theta)
    out = current.copy()
    for h in range(2, _N_HARMONICS + 1):
        previous, current = current, two_cos * current - previous
        out += current * ((h * f0 < 0.95 * sample_rate / 2) / np.float32(h))
    return out


_GENERATORS = {
    "tone": _tone,
    "chirp": _chirp,
    "noise_burst": _noise_burst,
    "clicks": _clicks,
    "harmonic": _harmonic,
}


def _check_params(n_samples, n_classes, sample_rate, duration, n_folds, noise, format):
    for name, value, low in (
        ("n_classes", n_classes, 1),
        ("n_samples", n_samples, 1),
        ("sample_rate", sample_rate, 1),
        ("n_folds", n_folds, 1),
    ):
        if not isinstance(value, Integral | np.integer) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if n_samples < n_classes:
        raise ValueError(
            f"n_samples={n_samples} is smaller than n_classes={n_classes}; every class needs "
            "at least one clip, so raise n_samples or lower n_classes"
        )
    if not isinstance(duration, Real) or not duration > 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if round(duration * sample_rate) < 2:
        raise ValueError(
            f"duration={duration} s at sample_rate={sample_rate} Hz gives fewer than 2 samples "
            "per clip; raise duration or sample_rate"
        )
    if not isinstance(noise, Real) or not noise >= 0:
        raise ValueError(f"noise must be a non-negative standard deviation, got {noise!r}")
    from sklaudio.io import AUDIO_EXTENSIONS

    formats = sf.available_formats()
    if not isinstance(format, str) or format.upper() not in formats:
        raise ValueError(
            f"format must be one of soundfile's formats {sorted(f.lower() for f in formats)}, "
            f"got {format!r}"
        )
    if "." + _extension(format) not in AUDIO_EXTENSIONS:
        listed = sorted(f.lower() for f in formats if "." + _extension(f) in AUDIO_EXTENSIONS)
        raise ValueError(
            f"format={format!r} writes .{_extension(format)} files, which the loaders do not "
            f"list as audio; use one of {listed}"
        )


def _extension(format: str) -> str:
    """The file name extension of a soundfile format."""
    fmt = format.upper()
    return {"WAVEX": "wav", "NIST": "sph"}.get(fmt, fmt.lower())


def make_sounds(
    n_samples: int = 100,
    n_classes: int = 5,
    *,
    sample_rate: int = 22050,
    duration: float = 1.0,
    n_folds: int = 5,
    noise: float = 0.05,
    random_state: int | np.random.RandomState | None = None,
    directory: str | os.PathLike | None = None,
    format: str = "wav",
) -> Bunch:
    """Generate a labelled corpus of synthetic sound events.

    Every clip holds one event over white background noise. The first five
    classes are a pure tone, a linear chirp, a band-limited noise burst, a
    click train and a harmonic stack; classes 6 to 10 reuse these generators
    as ``'tone_2'``, ``'chirp_2'``, ... and so on. Each class draws its pitch
    from its own frequency band, and neighbouring bands overlap. Onset, event
    length (15 to 80 % of the clip), pitch and gain (-20 to 0 dB) are random
    per clip, so a classifier on log-mel statistics does well above chance
    without being perfect.

    Parameters
    ----------
    n_samples : int, default=100
        Number of clips, at least ``n_classes``. Classes get ``n_samples //
        n_classes`` clips each, the first ``n_samples % n_classes`` one more.
    n_classes : int, default=5
        Number of classes, at least 1.
    sample_rate : int, default=22050
        Sampling rate in Hz.
    duration : float, default=1.0
        Length of every clip in seconds.
    n_folds : int, default=5
        Clips of each class are spread evenly over folds ``1..n_folds``.
    noise : float, default=0.05
        Standard deviation of the background noise; events peak at 0.1 to 1.
    random_state : int, RandomState instance or None, default=None
        Seed for every random draw; an int makes the output reproducible.
    directory : str or path-like, default=None
        Also write each clip to ``directory/{fold}-{index}-{class}.{ext}``
        (created if needed; a folder that holds other audio files is refused, so
        that clips of two different calls never mix). ``None`` writes nothing.
    format : str, default='wav'
        File format when writing, any of :func:`soundfile.available_formats`
        (case-insensitive); also the file extension.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        data : ndarray of float32, shape (n_samples, round(duration * sample_rate))
            The waveforms, peak at most 1.
        target : ndarray of int64, shape (n_samples,)
            Class ids, in shuffled order.
        target_names : list of str
            Name of each class id.
        folds : ndarray of int64, shape (n_samples,)
            Fold of each clip, 1..n_folds.
        sample_rate : int
            The sampling rate of ``data``.
        filenames : ndarray of object (str paths), shape (n_samples,), or None
            Absolute paths of the written files, aligned with ``data``.
        DESCR : str
            Description of the generator.

    Examples
    --------
    >>> from sklaudio.datasets import make_sounds
    >>> sounds = make_sounds(n_samples=20, n_classes=4, sample_rate=8000, duration=0.5,
    ...                      random_state=0)
    >>> sounds.data.shape, sounds.data.dtype
    ((20, 4000), dtype('float32'))
    >>> sounds.target_names
    ['tone', 'chirp', 'noise_burst', 'clicks']
    >>> sorted(set(sounds.folds.tolist()))
    [1, 2, 3, 4, 5]
    """
    _check_params(n_samples, n_classes, sample_rate, duration, n_folds, noise, format)
    # a Generator for speed (ziggurat normals), seeded from sklearn's random_state
    rng = np.random.default_rng(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    n_per_clip = round(duration * sample_rate)
    clip_s = n_per_clip / sample_rate

    target = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    # sort by class (random order within a class), then deal folds round-robin
    order = np.lexsort((rng.random(n_samples), target))
    folds = np.empty(n_samples, dtype=np.int64)
    folds[order] = np.arange(n_samples) % n_folds + 1

    event_s = (rng.uniform(0.15, 0.8, n_samples) * clip_s).astype(np.float32)
    onset_s = (rng.uniform(0.0, 1.0, n_samples) * (clip_s - event_s)).astype(np.float32)
    gain = (10.0 ** rng.uniform(-1.0, 0.0, n_samples)).astype(np.float32)

    t = np.arange(n_per_clip, dtype=np.float32) / np.float32(sample_rate)
    bands = _class_bands(n_classes, sample_rate / 2)
    data = np.empty((n_samples, n_per_clip), dtype=np.float32)
    for c in range(n_classes):
        rows = np.flatnonzero(target == c)
        tau = t - onset_s[rows, None]
        length = event_s[rows, None]
        fade = np.minimum(np.float32(_FADE_S), length / 4)
        envelope = np.clip(tau / fade, 0, 1) * np.clip((length - tau) / fade, 0, 1)
        generator = _GENERATORS[_FAMILIES[c % len(_FAMILIES)]]
        event = generator(rng, tau, bands[c], sample_rate, length) * envelope
        peak = np.abs(event).max(axis=1, keepdims=True)
        data[rows] = event * (gain[rows, None] / np.maximum(peak, 1e-12))

    data += np.float32(noise) * rng.standard_normal(data.shape, dtype=np.float32)
    # keep every clip within [-1, 1] so that integer file formats do not clip it
    data /= np.maximum(np.abs(data).max(axis=1, keepdims=True), 1.0)

    target_names = _class_names(n_classes)
    filenames = None
    if directory is not None:
        filenames = _write_clips(data, target, target_names, folds, sample_rate, directory, format)
    return Bunch(
        data=data,
        target=target,
        target_names=target_names,
        folds=folds,
        sample_rate=int(sample_rate),
        filenames=filenames,
        DESCR=_DESCR,
    )


def _write_clips(data, target, target_names, folds, sample_rate, directory, format):
    from sklaudio.io import list_audio_files

    directory = Path(directory).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    fmt = format.upper()
    extension = _extension(fmt)
    width = len(str(len(data) - 1))
    names = [
        f"{fold}-{i:0{width}d}-{target_names[label]}.{extension}"
        for i, (label, fold) in enumerate(zip(target, folds, strict=True))
    ]
    # other clips in the folder would mix with these in a loader (the same call again
    # just rewrites its own files)
    others = sorted(set(map(os.path.basename, list_audio_files(directory))) - set(names))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise FileExistsError(
            f"{os.fspath(directory)!r} already holds {len(others)} other audio files ({shown}) "
            "that a loader would mix with these clips; pass a new or empty folder"
        )
    filenames = []
    for clip, name in zip(data, names, strict=True):
        path = directory / name
        try:
            sf.write(path, clip, sample_rate, format=fmt)
        except (sf.LibsndfileError, TypeError, ValueError) as exc:
            raise ValueError(
                f"cannot write {os.fspath(path)!r} as {format!r} at {sample_rate} Hz ({exc}); "
                "use format='wav' or 'flac'"
            ) from exc
        filenames.append(os.fspath(path))
    return np.asarray(filenames, dtype=object)

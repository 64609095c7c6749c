"""Spectrogram front ends: pure functions on torch tensors plus a transformer.

The functions take a batch of waveforms ``(..., n_samples)`` as a torch tensor
on any device and return ``(..., n_freq, n_frames)``; :class:`SpectrogramTransformer`
wraps them for numpy input, batching the work on ``device``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import torch
from scipy.signal import get_window
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from sklaudio._checks import is_int, is_real
from sklaudio._doc_link import DocLinkMixin
from sklaudio._warnings import warn_user
from sklaudio.io import (
    _ArrayOutputMixin,
    _NumbersNotBoolsMixin,
    check_waveform_input,
    check_waveforms_not_empty,
    pcm_to_float,
    refuse_none,
)

__all__ = [
    "SpectrogramTransformer",
    "TemporalStatistics",
    "esresnet_spectrogram",
    "frame_sequences",
    "hz_to_mel",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "power_spectrogram",
    "resolve_device",
]

#: ESResNet's STFT settings for 44.1 kHz audio (Guzhov et al., 2020), used by DLS.
ESRESNET_STFT = {"n_fft": 2048, "hop_length": 561, "win_length": 1654, "window": "blackmanharris"}
#: Defaults of the ``log_mel`` and ``power`` kinds (librosa's).
DEFAULT_STFT = {"n_fft": 2048, "hop_length": 512, "win_length": None, "window": "hann"}

_KINDS = ("esresnet", "log_mel", "power")


def resolve_device(device) -> torch.device:
    """``'auto'`` → CUDA when available else CPU; anything else → ``torch.device(device)``.

    Examples
    --------
    >>> from sklaudio.features import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        hint = " ('gpu' is 'cuda' in torch)" if str(device).lower().startswith("gpu") else ""
        raise ValueError(
            f"device={device!r} is not a torch device{hint}; use 'auto', 'cpu' or 'cuda[:N]'"
        ) from exc


def _check_device_available(device) -> None:
    """A clear error for a device this machine does not have (torch's own is an
    AssertionError about how torch was compiled)."""
    resolved = resolve_device(device)  # ValueError for what is not a torch device at all
    kind = resolved.type
    available = {
        "cpu": lambda: True,
        "cuda": torch.cuda.is_available,
        "mps": lambda: hasattr(torch.backends, "mps") and torch.backends.mps.is_available(),
        "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available(),
    }.get(kind)
    if available is None:  # 'meta', 'xla', ...: torch devices that sklaudio cannot run on
        raise ValueError(
            f"device={device!r}: sklaudio runs on 'cpu', 'cuda', 'mps' or 'xpu' devices, not "
            f"{kind!r}; use device='auto' (the GPU when there is one) or 'cpu'"
        )
    if not available():
        raise ValueError(
            f"device={device!r}, but this machine has no {kind} device that torch can use; "
            "use device='auto' (the GPU when there is one) or 'cpu'"
        )
    count = torch.cuda.device_count() if kind == "cuda" else 0
    if kind == "cuda" and resolved.index is not None and resolved.index >= count:
        raise ValueError(
            f"device={device!r}, but this machine has {count} CUDA device"
            f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1}); "
            "use device='auto' or one of those"
        )


@lru_cache(maxsize=32)
def _window_np(window: str, win_length: int) -> np.ndarray:
    # Periodic ("fftbins=True") windows, as torch.stft and ESResNet use.
    try:
        return get_window(window, win_length, fftbins=True)
    except ValueError as exc:
        raise ValueError(f"unknown window {window!r}: {exc}") from exc


def _window(window: str, win_length: int, device, dtype) -> torch.Tensor:
    return torch.from_numpy(_window_np(window, win_length)).to(device=device, dtype=dtype)


def _check_waveforms(x: torch.Tensor, n_fft: int) -> None:
    if not torch.is_floating_point(x):
        raise TypeError(f"waveforms must be a floating point tensor, got {x.dtype}")
    if x.shape[-1] < n_fft:
        raise ValueError(
            f"clips have {x.shape[-1]} samples (X has {x.shape[-1]} feature(s)), fewer than "
            f"n_fft={n_fft}; pad the clips (AudioReader(duration=...)) or lower n_fft"
        )


class _Workspace:
    """Buffers reused from batch to batch.

    A fresh multi-megabyte tensor is page-faulted in on every call; reusing
    the frame, spectrum and power buffers makes the CPU STFT about twice as
    fast. Only used without autograd (the ``out=`` variants are not
    differentiable).
    """

    def __init__(self):
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name, shape, dtype, device, zero=False) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != device:
            make = torch.zeros if zero else torch.empty
            buf = self._buffers[name] = make(shape, dtype=dtype, device=device)
        return buf


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _stft_frames(x, n_fft, hop_length, win_length, window, normalized, workspace=None):
    """Centred, reflect-padded one-sided STFT in frames-major layout ``(..., n_frames, n_bins)``.

    Equal to ``torch.stft(..., center=True, pad_mode='reflect').transpose(-1, -2)``
    (the window, periodic, centred in the ``n_fft`` frame), but faster on the
    CPU: the reflect padding is two small flipped copies instead of
    ``reflection_pad1d``, only the ``win_length`` non-zero samples of each
    frame are windowed, and the result stays contiguous for the element-wise
    steps that follow.
    """
    _check_sizes(n_fft=n_fft, hop_length=hop_length)
    win_length = n_fft if win_length is None else win_length
    _check_sizes(win_length=win_length)
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length={win_length} must be in [1, n_fft={n_fft}]")
    _check_waveforms(x, n_fft)
    half = n_fft // 2
    padded = torch.cat([x[..., 1 : half + 1].flip(-1), x, x[..., -half - 1 : -1].flip(-1)], dim=-1)
    windowed = padded.unfold(-1, n_fft, hop_length)
    left = (n_fft - win_length) // 2
    windowed = windowed[..., left : left + win_length]
    win = _window(window, win_length, x.device, x.dtype)
    norm = "ortho" if normalized else "backward"
    shape = (*windowed.shape[:-1], n_fft)
    if workspace is None or (torch.is_grad_enabled() and x.requires_grad):
        frames = torch.zeros(shape, dtype=x.dtype, device=x.device)
        frames[..., left : left + win_length] = windowed * win
        return torch.fft.rfft(frames, dim=-1, norm=norm)
    # Samples outside the window stay zero from the buffer's creation.
    frames = workspace.get("frames", shape, x.dtype, x.device, zero=True)
    torch.mul(windowed, win, out=frames[..., left : left + win_length])
    spec = workspace.get(
        "spec",
        (*shape[:-1], half + 1),
        torch.complex64 if x.dtype == torch.float32 else torch.complex128,
        x.device,
    )
    return torch.fft.rfft(frames, dim=-1, norm=norm, out=spec)


def _power(spec: torch.Tensor, workspace=None) -> torch.Tensor:
    # re² + im² with one temporary (two fewer full passes than .real.square() + ...).
    parts = torch.view_as_real(spec)
    real, imag = parts[..., 0], parts[..., 1]
    if workspace is None:
        power = real.square()
    else:
        power = workspace.get("power", real.shape, real.dtype, real.device)
        torch.mul(real, real, out=power)
    return power.addcmul_(imag, imag)


def power_spectrogram(
    x: torch.Tensor,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: str = "hann",
    normalized: bool = False,
) -> torch.Tensor:
    """One-sided power spectrogram ``|STFT|²`` of a batch of waveforms.

    Frames are centred (reflect padding of ``n_fft // 2``) and the window,
    periodic, is zero-padded to ``n_fft`` in the middle of the frame.

    Parameters
    ----------
    x : Tensor of shape (..., n_samples)
        Waveforms, ``n_samples >= n_fft``.
    n_fft, hop_length, win_length : int
        FFT size, frame step and window length in samples
        (``win_length=None`` means ``n_fft``).
    window : str
        Any :func:`scipy.signal.get_window` name.
    normalized : bool
        Scale the STFT by ``n_fft ** -0.5``.

    Returns
    -------
    Tensor of shape (..., n_fft // 2 + 1, 1 + n_samples // hop_length)

    Examples
    --------
    >>> import torch
    >>> from sklaudio.features import power_spectrogram
    >>> power_spectrogram(torch.zeros(2, 4096), n_fft=512, hop_length=256).shape
    torch.Size([2, 257, 17])
    """
    spec = _stft_frames(x, n_fft, hop_length, win_length, window, normalized)
    return _power(spec).transpose(-1, -2)


def esresnet_spectrogram(
    x: torch.Tensor,
    n_fft: int = 2048,
    hop_length: int = 561,
    win_length: int = 1654,
    window: str = "blackmanharris",
    n_bands: int = 3,
    out: torch.Tensor | None = None,
    workspace: _Workspace | None = None,
) -> torch.Tensor:
    """ESResNet's 3-band log-power spectrogram (DLS, section 3).

    A normalised one-sided STFT (scaled by ``n_fft ** -0.5``), power
    ``re² + im²``, the top bins dropped so the height divides into ``n_bands``
    equal bands, the bands stacked as channels (channel 0 the lowest
    frequencies), then ``10·log10(power)`` with ``power <= 0`` replaced by
    ``1e-18``. Multi-channel input ``(n, C, n_samples)`` yields ``C * n_bands``
    channels: the bands of audio channel 0, then those of channel 1, ...

    Parameters
    ----------
    x : Tensor of shape (n, n_samples) or (n, C, n_samples)
    n_fft, hop_length, win_length, window : STFT settings
        ESResNet's values for 44.1 kHz audio by default.
    n_bands : int, default=3
        Frequency bands turned into channels.
    out : Tensor, default=None
        Contiguous float tensor of the output shape to write into.
    workspace : optional
        Internal buffers reused between calls (:class:`SpectrogramTransformer`
        passes one from batch to batch).

    Returns
    -------
    Tensor of shape (n, C * n_bands, (n_fft // 2 + 1) // n_bands, n_frames)

    References
    ----------
    A. Guzhov, F. Raue, J. Hees, A. Dengel. "ESResNet: Environmental Sound
    Classification Based on Visual Domain Models", ICPR 2020.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.features import esresnet_spectrogram
    >>> esresnet_spectrogram(torch.zeros(1, 5 * 44100)).shape
    torch.Size([1, 3, 341, 394])
    """
    if x.ndim == 2:
        x = x[:, None]
    if x.ndim != 3:
        raise ValueError(
            f"expected waveforms of shape (n, n_samples) or (n, C, n_samples), got {tuple(x.shape)}"
        )
    _check_sizes(n_fft=n_fft, n_bands=n_bands)
    if n_bands > n_fft // 2 + 1:
        raise ValueError(f"n_bands={n_bands} exceeds the {n_fft // 2 + 1} bins of n_fft={n_fft}")
    spec = _stft_frames(x, n_fft, hop_length, win_length, window, True, workspace)
    n, channels, frames, n_bins = spec.shape
    band = n_bins // n_bands
    # Element-wise work runs in the contiguous frames-major layout; one copy
    # transposes to (bands, bins, frames) at the end.
    power = _power(spec[..., : band * n_bands], workspace)
    # power is a sum of squares, so "power <= 0" means power == 0, whose log is -inf (as
    # 1e-18's, -18); NaN input stays NaN. With autograd the zeros are replaced before the
    # log, so that silence has a zero gradient, not NaN (a pass more, only then).
    if power.requires_grad:
        floor = max(1e-18, torch.finfo(power.dtype).tiny)  # (float16 has no 1e-18)
        power = power.masked_fill(power <= 0, floor).log10()
    else:
        power.log10_().nan_to_num_(nan=math.nan, neginf=-18.0, posinf=math.inf)
    power = power.view(n, channels, frames, n_bands, band).permute(0, 1, 3, 4, 2)
    if out is None:
        out = torch.empty(power.shape, dtype=power.dtype, device=power.device)
    out = out.view(power.shape)
    out.copy_(power)
    return out.mul_(10.0).view(n, channels * n_bands, band, frames)


def hz_to_mel(frequencies):
    """Hz → mel on the Slaney (Auditory Toolbox) scale: linear below 1 kHz, log above.

    Parameters
    ----------
    frequencies : float or array-like
        Frequencies in Hz.

    Returns
    -------
    ndarray of float64, the shape of ``frequencies``

    Examples
    --------
    >>> from sklaudio.features import hz_to_mel
    >>> round(float(hz_to_mel(1000.0)), 9), round(float(hz_to_mel(6400.0)), 9)
    (15.0, 42.0)
    """
    f = np.asarray(frequencies, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    mels = f / f_sp
    log_region = f >= min_log_hz
    mels = np.where(
        log_region,
        min_log_hz / f_sp + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
        mels,
    )
    return mels


def mel_to_hz(mels):
    """Inverse of :func:`hz_to_mel`.

    Parameters
    ----------
    mels : float or array-like
        Values on the Slaney mel scale.

    Returns
    -------
    ndarray of float64, the shape of ``mels``: frequencies in Hz

    Examples
    --------
    >>> from sklaudio.features import mel_to_hz
    >>> round(float(mel_to_hz(15.0)), 9)
    1000.0
    """
    m = np.asarray(mels, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int = 128, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """Triangular mel filters, Slaney scale and Slaney (area) normalisation.

    The filters' corners are ``n_mels + 2`` points evenly spaced in mel between
    ``f_min`` and ``f_max``; filter ``i`` is scaled by
    ``2 / (f[i + 2] - f[i])`` so each has unit area over Hz.

    Parameters
    ----------
    sample_rate : int
        Rate of the signal in Hz.
    n_fft : int
        FFT size: the filters weight its ``n_fft // 2 + 1`` bins.
    n_mels : int, default=128
        Filters (mel bands).
    f_min, f_max : float, default=0.0, None
        Range of the filters in Hz; ``f_max=None`` is ``sample_rate / 2``.

    Returns
    -------
    ndarray of shape (n_mels, n_fft // 2 + 1), float64

    Examples
    --------
    >>> from sklaudio.features import mel_filterbank
    >>> mel_filterbank(16000, 512, n_mels=40).shape
    (40, 257)
    """
    for name, value, kind in (
        ("sample_rate", sample_rate, Real),
        ("n_fft", n_fft, Integral),
        ("n_mels", n_mels, Integral),
    ):
        if not (is_int(value) if kind is Integral else is_real(value)) or not value > 0:
            what = "number" if kind is Real else "integer"
            raise ValueError(f"{name} must be a positive {what}, got {value!r}")
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}, "
            f"sample_rate={sample_rate}"
        )
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(corners)
    ramps = corners[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (corners[2:] - corners[:-2]))[:, None]


@lru_cache(maxsize=16)
def _mel_filterbank_cached(sample_rate, n_fft, n_mels, f_min, f_max):
    return torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max))


def log_mel_spectrogram(
    x: torch.Tensor,
    sample_rate: int,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: str = "hann",
    n_mels: int = 128,
    f_min: float = 0.0,
    f_max: float | None = None,
    amin: float = 1e-10,
) -> torch.Tensor:
    """Log mel power spectrogram in dB: ``10·log10(max(M · |STFT|², amin))``.

    ``M`` is :func:`mel_filterbank` (Slaney scale and norm), so the result
    matches ``librosa.power_to_db(librosa.feature.melspectrogram(...))`` with
    ``ref=1.0, top_db=None``.

    Parameters
    ----------
    x : Tensor of shape (..., n_samples)
        Waveforms, on any device.
    sample_rate : int
        Their rate in Hz.
    n_fft, hop_length, win_length, window
        STFT settings, as in :func:`power_spectrogram` (``win_length=None``
        is ``n_fft``).
    n_mels, f_min, f_max
        The mel filters, as in :func:`mel_filterbank`.
    amin : float, default=1e-10
        Floor of the mel power before the logarithm (-100 dB): silence stays
        finite.

    Returns
    -------
    Tensor of shape (..., n_mels, n_frames)

    Examples
    --------
    >>> import torch
    >>> from sklaudio.features import log_mel_spectrogram
    >>> log_mel_spectrogram(torch.zeros(3, 22050), 22050, n_mels=64).shape
    torch.Size([3, 64, 44])
    """
    if not is_real(amin) or not amin > 0:
        raise ValueError(f"amin must be a number > 0 (the floor under the logarithm), got {amin!r}")
    power = power_spectrogram(x, n_fft, hop_length, win_length, window)
    fb = _mel_filterbank_cached(
        sample_rate, n_fft, n_mels, float(f_min), None if f_max is None else float(f_max)
    )
    mel = torch.matmul(fb.to(device=power.device, dtype=power.dtype), power)
    return 10.0 * torch.log10(torch.clamp(mel, min=amin))


class SpectrogramTransformer(
    DocLinkMixin, _NumbersNotBoolsMixin, _ArrayOutputMixin, TransformerMixin, BaseEstimator
):
    """Waveforms → float32 spectrogram images ``(n, channels, n_freq, n_frames)``.

    Runs batched on torch (``device``), so it is both the CPU pre-processing
    step of a pipeline and the on-device front end of the embedders.

    Parameters
    ----------
    kind : {'esresnet', 'log_mel', 'power'}, default='esresnet'
        - ``'esresnet'``: :func:`esresnet_spectrogram`, the 3-band dB power
          spectrogram of ESResNet/DLS (3 channels per audio channel).
        - ``'log_mel'``: :func:`log_mel_spectrogram` in dB, one channel per
          audio channel.
        - ``'power'``: linear :func:`power_spectrogram`, one channel per audio
          channel.
    sample_rate : int, default=22050
        Rate of the input in Hz (used by ``'log_mel'``). Waveform arrays carry
        no rate: give the same value as the :class:`~sklaudio.io.AudioReader`
        before this step. A mismatch cannot be detected and moves every mel
        band (16 kHz audio taken for 22.05 kHz puts a 1 kHz tone in the band
        of 1.38 kHz).
    n_fft, hop_length, win_length : int, default=None
        STFT settings; ``None`` takes the kind's default: ESResNet's
        2048 / 561 / 1654 (tuned for 44.1 kHz) or librosa's 2048 / 512 /
        n_fft.
    window : str, default=None
        :func:`scipy.signal.get_window` name; ``None`` = the kind's default
        (``'blackmanharris'`` for ESResNet, else ``'hann'``).
    n_mels : int, default=128
        Mel bands (``'log_mel'``).
    f_min, f_max : float, default=0.0, None
        Mel filterbank range in Hz; ``f_max=None`` is ``sample_rate / 2``.
    batch_size : int, default=None
        Clips transformed at once; ``None`` picks 2 on the CPU (small batches
        keep the STFT's working set in the caches) and 64 on a GPU.
    device : str, default='auto'
        Torch device; ``'auto'`` uses CUDA when available.

    Attributes
    ----------
    n_features_in_ : int
        Samples per clip (2-D input) or channels (3-D input) seen in ``fit``.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit``; absent otherwise.
    output_shape_ : tuple of int
        ``(channels, n_freq, n_frames)`` of one transformed clip of the
        length seen in ``fit``.
    device_ : torch.device
        The device the spectrograms are computed on (``device`` resolved).

    See Also
    --------
    sklaudio.io.AudioReader : the step before, files to waveforms.

    Notes
    -----
    The output is always a numpy array: spectrograms have no columns to name,
    so ``set_output(transform='pandas')`` is accepted (a Pipeline passes it to
    every step) and leaves this step's output as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.features import SpectrogramTransformer
    >>> X = np.zeros((2, 5 * 44100), dtype=np.float32)
    >>> SpectrogramTransformer().fit_transform(X).shape
    (2, 3, 341, 394)
    >>> SpectrogramTransformer("log_mel", sample_rate=16000, n_mels=40).fit_transform(
    ...     X[:, :16000]).shape
    (2, 1, 40, 32)
    """

    _parameter_constraints: dict = {
        "kind": [StrOptions(set(_KINDS))],
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "n_fft": [Interval(Integral, 1, None, closed="left"), None],
        "hop_length": [Interval(Integral, 1, None, closed="left"), None],
        "win_length": [Interval(Integral, 1, None, closed="left"), None],
        "window": [str, None],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "f_min": [Interval(Real, 0, None, closed="left")],
        "f_max": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, torch.device, None],
    }

    def __init__(
        self,
        kind="esresnet",
        *,
        sample_rate=22050,
        n_fft=None,
        hop_length=None,
        win_length=None,
        window=None,
        n_mels=128,
        f_min=0.0,
        f_max=None,
        batch_size=None,
        device="auto",
    ):
        self.kind = kind
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.window = window
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.batch_size = batch_size
        self.device = device

    def stft_params(self) -> dict:
        """The STFT settings in force: the kind's defaults with the set parameters on top."""
        defaults = ESRESNET_STFT if self.kind == "esresnet" else DEFAULT_STFT
        params = {
            name: defaults[name] if getattr(self, name) is None else getattr(self, name)
            for name in ("n_fft", "hop_length", "win_length", "window")
        }
        if params["win_length"] is None:
            params["win_length"] = params["n_fft"]
        return params

    def _check_settings(self):
        self._validate_params()
        params = self.stft_params()
        if params["win_length"] > params["n_fft"]:
            # say which of the two came from the kind's defaults: the user set only one
            origin = {
                name: "" if getattr(self, name) is not None else f" (the {self.kind} default)"
                for name in ("win_length", "n_fft")
            }
            raise ValueError(
                f"win_length={params['win_length']}{origin['win_length']} must not exceed "
                f"n_fft={params['n_fft']}{origin['n_fft']}; set both"
            )
        _window_np(params["window"], params["win_length"])
        if self.kind == "log_mel":
            f_max = self.sample_rate / 2 if self.f_max is None else self.f_max
            if not self.f_min < f_max <= self.sample_rate / 2:
                raise ValueError(
                    f"need f_min < f_max <= sample_rate / 2, got f_min={self.f_min}, "
                    f"f_max={self.f_max}, sample_rate={self.sample_rate}"
                )
        return params

    def _warn_empty_bands(self, n_fft: int) -> None:
        """Mel bands narrower than the FFT's bin spacing hold no bin: always at the floor."""
        bank = mel_filterbank(self.sample_rate, n_fft, self.n_mels, self.f_min, self.f_max)
        empty = np.flatnonzero(bank.max(axis=1) == 0)
        if empty.size:
            warn_user(
                f"{empty.size} of the n_mels={self.n_mels} mel bands (the lowest is band "
                f"{empty[0]}) fall between the FFT bins of n_fft={n_fft} at "
                f"sample_rate={self.sample_rate} and are always at the floor; lower n_mels "
                "or raise n_fft"
            )

    def _warn_settings(self, params: dict) -> None:
        """Warnings for settings that work but lose information (at fit, once)."""
        if self.kind == "log_mel":
            self._warn_empty_bands(params["n_fft"])
        if params["hop_length"] > params["win_length"]:
            warn_user(
                f"hop_length={params['hop_length']} exceeds the window of "
                f"{params['win_length']} samples: {params['hop_length'] - params['win_length']} "
                "samples between frames are never seen; lower hop_length"
            )

    def fit(self, X, y=None):
        """Check the parameters and the input shape; nothing is learned."""
        params = self._check_settings()
        self._warn_settings(params)
        X = check_waveform_input(X, type(self).__name__)
        X = validate_data(self, pcm_to_float(X), allow_nd=True, dtype=np.float32, reset=True)
        self._check_ndim(X)
        _check_device_available(self.device)
        self.device_ = resolve_device(self.device)
        # (np.require copies a read-only array, as pandas 3 and memory maps give, which
        # torch.from_numpy warns about; a writable one is used as it is)
        _check_waveforms(torch.from_numpy(np.require(X[:1], requirements=["W"])), params["n_fft"])
        self.output_shape_ = self._output_shape(X)
        return self

    def get_feature_names_out(self, input_features=None):
        """``'spectrogramtransformer_channel{c}'`` for each channel of the output (its
        axis 1, ``output_shape_[0]``): the features the next step counts
        (:class:`TemporalStatistics`, an embedder's ``n_features_in_``).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Checked as in scikit-learn: equal to ``feature_names_in_``, or of
            length ``n_features_in_``; it names no output channel.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "output_shape_")
        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = type(self).__name__.lower()
        return np.asarray(
            [f"{prefix}_channel{c}" for c in range(self.output_shape_[0])], dtype=object
        )

    def _output_shape(self, X) -> tuple[int, int, int]:
        params = self.stft_params()
        n_frames = 1 + X.shape[-1] // params["hop_length"]
        return (self._n_channels_out(X), self._n_freq(params), n_frames)

    @staticmethod
    def _check_ndim(X):
        if X.ndim not in (2, 3):
            raise ValueError(
                f"expected waveforms of shape (n_clips, n_samples) or (n_clips, n_channels, "
                f"n_samples), got an array with {X.ndim} dimensions"
            )
        check_waveforms_not_empty(X)

    def _n_channels_out(self, X) -> int:
        audio_channels = 1 if X.ndim == 2 else X.shape[1]
        return audio_channels * (3 if self.kind == "esresnet" else 1)

    def _n_freq(self, params) -> int:
        bins = params["n_fft"] // 2 + 1
        return {"esresnet": bins // 3, "log_mel": self.n_mels, "power": bins}[self.kind]

    def transform_tensor(
        self, x: torch.Tensor, out: torch.Tensor | None = None, workspace=None
    ) -> torch.Tensor:
        """Transform a waveform tensor on its own device (no batching, no copy to numpy).

        This is the hook the embedders use to compute spectrograms per batch
        on the GPU. ``out``, if given, receives the result (``'esresnet'`` only
        writes into it directly).
        """
        params = self.stft_params()
        if self.kind == "esresnet":
            return esresnet_spectrogram(x, **params, out=out, workspace=workspace)
        x = x if x.ndim == 3 else x[:, None]
        if self.kind == "power":
            return power_spectrogram(x, **params)
        if self.kind == "log_mel":
            mel = dict(n_mels=self.n_mels, f_min=self.f_min, f_max=self.f_max)
            return log_mel_spectrogram(x, self.sample_rate, **params, **mel)
        raise ValueError(f"kind={self.kind!r} must be one of {list(_KINDS)}")

    def transform(self, X):
        """Compute the spectrograms.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_samples) or (n_clips, n_channels, n_samples)

        Returns
        -------
        ndarray of float32, shape (n_clips, channels, n_freq, n_frames)
        """
        check_is_fitted(self)
        self._check_settings()
        X = check_waveform_input(X, type(self).__name__)
        X = validate_data(self, pcm_to_float(X), allow_nd=True, dtype=np.float32, reset=False)
        self._check_ndim(X)
        device = self.device_
        out = np.empty((X.shape[0], *self._output_shape(X)), dtype=np.float32)
        workspace = _Workspace()
        batch_size = self.batch_size or (2 if device.type == "cpu" else 64)
        with torch.inference_mode():
            for start in range(0, X.shape[0], batch_size):
                stop = min(start + batch_size, X.shape[0])
                # (copied only when not contiguous or read-only, as for fit's first clip)
                batch = torch.from_numpy(np.require(X[start:stop], requirements=["C", "W"]))
                # On the CPU the result is written straight into the output array.
                target = torch.from_numpy(out[start:stop]) if device.type == "cpu" else None
                spec = self.transform_tensor(
                    batch.to(device, non_blocking=True), out=target, workspace=workspace
                )
                if target is None or spec.data_ptr() != target.data_ptr():
                    out[start:stop] = spec.float().cpu().numpy()
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # always float32 output
        return tags


class TemporalStatistics(DocLinkMixin, TransformerMixin, BaseEstimator):
    """Summarise spectrograms over time: per-band statistics as a flat vector.

    ``(n, channels, n_freq, n_frames)`` → ``(n, len(stats) * channels * n_freq)``;
    any array whose last axis is time works the same way (``(n, n_frames)``
    gives ``len(stats)`` features).
    With a ``'log_mel'`` :class:`SpectrogramTransformer` before it and a kNN
    after it, this is the classic hand-crafted baseline that every learned
    embedding has to beat.

    Parameters
    ----------
    stats : tuple of {'mean', 'std', 'min', 'max'}, default=('mean', 'std')
        Statistics over the time axis, concatenated in this order.

    Attributes
    ----------
    n_features_in_ : int
        ``X.shape[1]`` in ``fit``: the channels of spectrograms, the frames of a
        2-d ``(n, n_frames)`` array.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit``; absent otherwise.
    n_bands_ : int
        Time series per clip (``channels * n_freq``); each gives one value per
        statistic, named ``'{stat}{band}'`` by ``get_feature_names_out``.
    band_shape_ : tuple of int
        The axes before time seen in ``fit`` (``(channels, n_freq)`` for
        spectrograms); ``transform`` refuses others, any number of frames is
        fine.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.features import TemporalStatistics
    >>> TemporalStatistics().fit_transform(np.ones((5, 1, 40, 100))).shape
    (5, 80)
    >>> TemporalStatistics().fit(np.ones((5, 1, 2, 100))).get_feature_names_out().tolist()
    ['mean0', 'mean1', 'std0', 'std1']
    """

    _parameter_constraints: dict = {"stats": [tuple, list]}
    _STATS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}

    def __init__(self, stats=("mean", "std")):
        self.stats = stats

    def fit(self, X, y=None):
        """Check the input; nothing is learned."""
        self._validate_params()
        self._check_stats()
        refuse_none(X, type(self).__name__)
        X = validate_data(self, X, allow_nd=True, dtype=np.float32, reset=True)
        self.n_bands_ = int(np.prod(X.shape[1:-1]))
        self.band_shape_ = tuple(int(d) for d in X.shape[1:-1])
        return self

    def _check_stats(self):
        unknown = set(self.stats) - set(self._STATS)
        if unknown or not self.stats or len(set(self.stats)) != len(self.stats):
            raise ValueError(
                f"stats={self.stats!r} must be a non-empty tuple of distinct names from "
                f"{sorted(self._STATS)}"
            )

    def get_feature_names_out(self, input_features=None):
        """``'{stat}{band}'`` for every output column, in order (``'mean0'``, ...).

        ``input_features`` names no output (a band has no input column name), but
        is checked as in scikit-learn: it must match ``feature_names_in_``, or
        hold ``n_features_in_`` names.
        """
        check_is_fitted(self, "n_bands_")
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            if given.ndim != 1:
                raise ValueError(
                    f"input_features must be a 1-d sequence of names, got {input_features!r}"
                )
            seen = getattr(self, "feature_names_in_", None)
            if seen is not None and not np.array_equal(given, seen):
                raise ValueError("input_features is not equal to feature_names_in_")
            if len(given) != self.n_features_in_:
                raise ValueError(
                    f"input_features should have length equal to number of features "
                    f"({self.n_features_in_}), got {len(given)}"
                )
        self._check_stats()
        names = [f"{stat}{band}" for stat in self.stats for band in range(self.n_bands_)]
        return np.asarray(names, dtype=object)

    def transform(self, X):
        """Return ``(n, len(stats) * channels * n_freq)`` float32 features."""
        check_is_fitted(self)
        self._check_stats()
        X = validate_data(self, X, allow_nd=True, dtype=np.float32, reset=False)
        bands = tuple(X.shape[1:-1])
        # a model fitted before band_shape_ and n_bands_ existed checks what it can (its
        # n_features_in_, checked by validate_data)
        fitted_bands = getattr(self, "n_bands_", int(np.prod(bands)))
        if bands != getattr(self, "band_shape_", bands) or int(np.prod(bands)) != fitted_bands:
            raise ValueError(
                f"X has {bands} bands per clip before the time axis (shape {X.shape[1:]}), but "
                f"TemporalStatistics was fitted on {getattr(self, 'band_shape_', fitted_bands)}"
                "; the number of time frames may differ, the bands may not"
            )
        parts = [self._STATS[s](X, axis=-1).reshape(X.shape[0], -1) for s in self.stats]
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # always float32 output
        return tags


def frame_sequences(
    spectrograms: torch.Tensor,
    frame_steps: int,
    hop_steps: int,
    sequence_length: int = 4,
    short: str = "raise",
) -> torch.Tensor:
    """Cut spectrograms into sequences of consecutive overlapping frames (AFP, section 2).

    The AFP paper frames audio in windows of ``T_f = 2.56 s`` with a hop of
    ``T_f / 4`` and trains on sequences of 4 consecutive frames (3 context
    frames predict the 4th). Here durations are in spectrogram steps:
    ``frame_steps = round(T_f · sample_rate / hop_length)``.

    Parameters
    ----------
    spectrograms : Tensor of shape (n, n_freq, n_steps)
    frame_steps, hop_steps : int
        Frame length and hop, in spectrogram steps.
    sequence_length : int, default=4
        Consecutive frames per sequence (``n_context + 1``).
    short : {'raise', 'pad'}, default='raise'
        A clip shorter than one sequence raises, or (``'pad'``) is padded
        at the end with its minimum value (silence in dB) to exactly one
        sequence.

    Returns
    -------
    Tensor of shape (n, n_sequences, sequence_length, n_freq, frame_steps)
        ``n_sequences = (n_frames - sequence_length) + 1`` with
        ``n_frames = 1 + (n_steps - frame_steps) // hop_steps``.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.features import frame_sequences
    >>> frame_sequences(torch.zeros(2, 40, 200), frame_steps=64, hop_steps=16).shape
    torch.Size([2, 6, 4, 40, 64])
    """
    if spectrograms.ndim != 3:
        raise ValueError(
            f"expected spectrograms of shape (n, n_freq, n_steps), got {tuple(spectrograms.shape)}"
        )
    for name, value in (
        ("frame_steps", frame_steps),
        ("hop_steps", hop_steps),
        ("sequence_length", sequence_length),
    ):
        if not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if short not in ("raise", "pad"):
        raise ValueError(f"short must be 'raise' or 'pad', got {short!r}")
    needed = frame_steps + (sequence_length - 1) * hop_steps
    n_steps = spectrograms.shape[-1]
    if n_steps < needed:
        if short == "raise":
            raise ValueError(
                f"clips have {n_steps} spectrogram steps, fewer than the {needed} one sequence "
                f"of {sequence_length} frames needs; use longer clips, a shorter "
                "frame_duration, or short='pad'"
            )
        floor = spectrograms.amin(dim=(-2, -1), keepdim=True)
        pad = floor.expand(*spectrograms.shape[:-1], needed - n_steps)
        spectrograms = torch.cat([spectrograms, pad], dim=-1)
    frames = spectrograms.unfold(-1, frame_steps, hop_steps)  # (n, F, n_frames, frame_steps)
    frames = frames.permute(0, 2, 1, 3)  # (n, n_frames, F, frame_steps)
    sequences = frames.unfold(1, sequence_length, 1)  # (n, n_seq, F, frame_steps, length)
    return sequences.permute(0, 1, 4, 2, 3)

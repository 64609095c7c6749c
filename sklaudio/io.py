"""Reading audio files into float32 waveforms.

Everything here works in *channels-first* layout: a mono clip is ``(n_samples,)``,
a multi-channel clip ``(n_channels, n_samples)`` and a batch adds a leading axis.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from fractions import Fraction
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from joblib import Parallel, delayed
from scipy.signal import resample_poly
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    check_array,
    check_is_fitted,
)

from sklaudio._doc_link import DocLinkMixin
from sklaudio._warnings import warn_user

__all__ = [
    "AudioFileDataset",
    "AudioReader",
    "fix_length",
    "pcm_to_float",
    "pool_segments",
    "read_audio",
    "resample",
    "segment_recordings",
]


SKIP_ADVICE = "on_error='skip'"


def _without_skip_advice(message: str) -> str:
    """A reason for a file that was skipped, without the advice to skip it."""
    return message.replace(f"; remove it or pass {SKIP_ADVICE}", "")


def _describe(path) -> str:
    return repr(str(os.fsdecode(path)))  # str(): numpy's np.str_ has another repr


def _sndfile_reason(exc: Exception) -> str:
    """libsndfile's reason without the path it starts with ("Error opening 'x': reason")."""
    message = str(exc)
    if message.startswith("Error opening "):
        # the path is quoted with ' or, when it holds a ', with "
        for quote in ("': ", '": '):
            if quote in message:
                message = message.split(quote, 1)[1]
                break
    return message.replace("Error : ", "").strip().rstrip(".")


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis by an exact rational factor.

    Uses a polyphase filter (:func:`scipy.signal.resample_poly`) with
    ``up / down = target_sr / orig_sr`` reduced to lowest terms, so 44.1 kHz to
    22.05 kHz is ``1 / 2`` and 48 kHz to 44.1 kHz is ``147 / 160``.

    Parameters
    ----------
    waveform : ndarray of shape (..., n_samples)
        Signal to resample.
    orig_sr, target_sr : int
        Sampling rates in Hz, both > 0.

    Returns
    -------
    ndarray of float32, shape (..., ceil(n_samples * target_sr / orig_sr))

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.io import resample
    >>> resample(np.zeros(44100, dtype=np.float32), 44100, 22050).shape
    (22050,)
    """
    for name, value in (("orig_sr", orig_sr), ("target_sr", target_sr)):
        if not isinstance(value, Integral | np.integer) or value <= 0:
            raise ValueError(f"{name} must be a positive integer number of Hz, got {value!r}")
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sr == target_sr:
        return waveform
    ratio = Fraction(int(target_sr), int(orig_sr))
    out = resample_poly(waveform, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32, copy=False)


def _sf_path(path):
    """``path`` as soundfile opens it: a str, except a name that is not valid UTF-8 (a file
    from a Latin-1 drive, which Python holds with surrogate escapes): its bytes, which
    soundfile passes on as they are instead of failing to encode them."""
    path = os.fspath(path)
    if isinstance(path, str):
        try:
            path.encode(sys.getfilesystemencoding())
        except UnicodeEncodeError:
            return os.fsencode(path)
    return path


# Where a Python caller finds every skipped file (the command line drops it: it lists them).
_IN_SKIPPED = "; all of them are in skipped_"
_IN_RESULT_SKIPPED = "; all of them are in the result's skipped"

# Formats whose centre AudioReader reads without decoding the whole file.
_WINDOWED_FORMATS = frozenset({"WAV", "WAVEX", "AIFF"})
# ... except these codecs, in which libsndfile cannot seek (read from sf.info's subtype, so
# that no file is opened once more per read)
_UNSEEKABLE_SUBTYPES = frozenset({"GSM610", "G721_32", "G723_24", "G723_40", "MPEG_LAYER_III"})
_UNSEEKABLE_PREFIXES = ("NMS_ADPCM", "DWVW")


# Size fields that writers unable to seek back leave unset: 0, 0xFFFFFFFF, or sox's
# 0x7FFFF000 when it writes to a pipe. Such a header says nothing about the file's length.
def _unknown_size(size: int) -> bool:
    return size == 0 or size >= 0x7FFFF000


def _riff_chunks(fh, byteorder: str):
    """``(id, size, offset of the data)`` of each chunk after a RIFF/FORM header; the
    caller may read from the chunk, the next one is found from its offset."""
    while True:
        head = fh.read(8)
        if len(head) < 8:
            return
        size = int.from_bytes(head[4:], byteorder)
        start = fh.tell()
        yield head[:4], size, start
        fh.seek(start + size + (size & 1))


def _declared_audio(fh) -> tuple[int, int, int] | None:
    """``(frames, bytes per frame, offset of the first frame)`` that an uncompressed WAV,
    RF64, Wave64, AIFF or AU header declares, or None (another format, compressed audio,
    unset sizes, a damaged header)."""
    magic = fh.read(12)
    if magic[:4] in (b"RIFF", b"RIFX", b"RF64") and magic[8:12] == b"WAVE":
        byteorder = "big" if magic[:4] == b"RIFX" else "little"
        bytes_per_frame = data64 = None
        for chunk, size, start in _riff_chunks(fh, byteorder):
            if chunk == b"ds64" and size >= 16:  # RF64: the 64-bit sizes
                sizes = fh.read(16)
                if len(sizes) < 16:
                    return None
                data64 = int.from_bytes(sizes[8:16], "little")
            elif chunk == b"fmt " and size >= 16:
                bytes_per_frame = _pcm_frame_bytes(fh.read(16), byteorder)
            elif chunk == b"data":
                if magic[:4] == b"RF64" and size == 0xFFFFFFFF and data64:
                    size = data64  # (more than 4 GB is what RF64 is for: no size limit)
                elif _unknown_size(size):
                    return None
                if bytes_per_frame is None:
                    return None
                return size // bytes_per_frame, bytes_per_frame, start
    elif magic[:4] == b"riff" and magic[4:12] == _W64_RIFF[4:12]:  # Sony Wave64
        fh.seek(40)  # after the riff GUID, its size and the wave GUID
        bytes_per_frame = None
        while True:
            head = fh.read(24)  # a chunk's GUID and its size, the 24 bytes included
            if len(head) < 24:
                return None
            size, start = int.from_bytes(head[16:], "little") - 24, fh.tell()
            if head[:4] == b"fmt " and size >= 16:
                bytes_per_frame = _pcm_frame_bytes(fh.read(16), "little")
            elif head[:4] == b"data":
                if bytes_per_frame is None or size <= 0:
                    return None
                return size // bytes_per_frame, bytes_per_frame, start
            fh.seek(start + (size + 7) // 8 * 8)  # chunks are aligned on 8 bytes
    elif magic[:4] in (b".snd", b"dns."):  # Sun/NeXT AU: a 24-byte header at least
        byteorder = "big" if magic[:4] == b".snd" else "little"
        more = fh.read(12)
        if len(more) < 12:
            return None
        first, size = (int.from_bytes(magic[i : i + 4], byteorder) for i in (4, 8))
        encoding, channels = (int.from_bytes(more[i : i + 4], byteorder) for i in (0, 8))
        width = _AU_SAMPLE_BYTES.get(encoding)
        if width is None or not channels or size in (0, 0xFFFFFFFF):
            return None
        return size // (width * channels), width * channels, first
    elif magic[:4] == b"FORM" and magic[8:12] == b"AIFF":  # AIFC may be compressed
        frames = bytes_per_frame = None
        for chunk, size, start in _riff_chunks(fh, "big"):
            if chunk == b"COMM" and size >= 8:
                comm = fh.read(8)
                if len(comm) < 8:
                    return None
                channels = int.from_bytes(comm[:2], "big")
                frames = int.from_bytes(comm[2:6], "big")
                bytes_per_frame = channels * ((int.from_bytes(comm[6:8], "big") + 7) // 8)
            elif chunk == b"SSND":
                if not frames or not bytes_per_frame or _unknown_size(frames):
                    return None
                offset = fh.read(4)  # the first frame lies `offset` bytes after 8 more
                if len(offset) < 4:
                    return None
                return frames, bytes_per_frame, start + 8 + int.from_bytes(offset, "big")
    return None


# the first 12 bytes of Wave64's riff GUID
_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb"
# bytes per sample of AU's uncompressed encodings (mu-law, 8/16/24/32-bit PCM, float,
# double, A-law)
_AU_SAMPLE_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}


def _pcm_frame_bytes(fmt: bytes, byteorder: str) -> int | None:
    """Bytes per frame of a WAV ``fmt `` chunk's uncompressed audio, else None."""
    if len(fmt) < 16:
        return None
    codec, channels, block, bits = (
        int.from_bytes(fmt[i : i + 2], byteorder) for i in (0, 2, 12, 14)
    )
    if codec in (1, 3, 0xFFFE) and channels and block == channels * ((bits + 7) // 8):
        return block
    return None


_OGG_PAGE = 27 + 255 + 255 * 255  # the largest Ogg page: header, segment table, body


def _ogg_page_end(data: bytes, start: int) -> int | None:
    """Where the Ogg page that starts at ``start`` ends, or None if it is not complete."""
    if data[start : start + 4] != b"OggS" or len(data) < start + 27 or data[start + 4] != 0:
        return None
    table = data[start + 27 : start + 27 + data[start + 26]]
    if len(table) < data[start + 26]:
        return None
    end = start + 27 + len(table) + sum(table)
    return end if end <= len(data) else None


def _ogg_tail(fh, file_size: int) -> str | None:
    """How an Ogg file (Vorbis, Opus) ends: ``'cut'``, ``'unterminated'`` or None (whole).

    libsndfile takes an Ogg stream's length from its last complete page, so a
    file cut mid-page or between pages (an interrupted download or copy)
    decodes as a shorter clip without an error. The pages at the end of the
    file are walked: ``'cut'`` when they end in an incomplete page;
    ``'unterminated'`` when the last page is complete but not flagged
    end-of-stream, which a cut between pages gives, but also a writer that
    omits the flag (Android's recorder, live-stream dumps). Bytes after the
    last page that are not a page (an ID3 tag, padding) are allowed.
    """
    fh.seek(max(file_size - 2 * _OGG_PAGE, 0))
    tail = fh.read()
    start = tail.find(b"OggS")
    while start >= 0:
        pos, pages, last = start, 0, start
        while (end := _ogg_page_end(tail, pos)) is not None:
            pos, pages, last = end, pages + 1, pos
        # (pages that chain to the next "OggS" or to the end are not "OggS" in a packet)
        if pages and tail.startswith(b"OggS", pos):
            return "cut"
        if pages >= 2 or (pages == 1 and pos == len(tail)):
            return None if tail[last + 5] & 0x04 else "unterminated"  # header type: last page
        start = tail.find(b"OggS", start + 1)
    return None  # no page found: libsndfile judges the file


def _how_it_ends(path) -> tuple[str | None, str | None]:
    """``(why the file is cut short, or None; a doubt about its end, or None)``."""
    try:
        with open(path, "rb") as fh:
            file_size = os.fstat(fh.fileno()).st_size
            if fh.read(4) == b"OggS":
                tail = _ogg_tail(fh, file_size)
                if tail == "cut":
                    return (
                        "is truncated: it ends in an incomplete Ogg page (cut short, e.g. by an "
                        "interrupted download or copy)",
                        None,
                    )
                if tail == "unterminated":
                    return None, (
                        "ends without an Ogg end-of-stream page: it may be cut short between "
                        "pages (an interrupted download or copy), or its writer omits the flag "
                        "(Android's recorder does); it is read as it is"
                    )
                return None, None
            fh.seek(0)
            declared = _declared_audio(fh)
    except OSError:
        return None, None
    if declared is None:
        return None, None
    frames, bytes_per_frame, first = declared
    missing = first + frames * bytes_per_frame - file_size
    if missing <= max(1024, frames * bytes_per_frame // 100):
        return None, None
    present = max(file_size - first, 0) // bytes_per_frame
    return (
        f"is truncated: its header declares {frames} frames but the file holds {present} "
        "(cut short, e.g. by an interrupted download or copy)",
        None,
    )


def cut_short(path) -> str | None:
    """Why a WAV (RF64, Wave64), AIFF, AU or Ogg file is cut short, or None.

    libsndfile shrinks its frame count to the frames a file holds, so a WAV cut
    off mid-data (an interrupted download or copy) reads as a shorter clip
    without a word. This compares the frames the header declares with the end
    of the file. A shortfall of at most 1 KiB or 1 % of the audio is tolerated
    (some writers overstate the data size by a few bytes, which players
    accept). An Ogg file (Vorbis, Opus) cut mid-page reads short too: its last
    page is incomplete. (One cut exactly between pages ends in a page not
    flagged end-of-stream, as do files of writers that omit the flag:
    :func:`read_audio` warns about those.) Headers with unset sizes and other
    formats give None (libsndfile's own checks catch a cut FLAC stream).
    """
    return _how_it_ends(path)[0]


def pcm_to_float(X):
    """Integer PCM waveforms as float32 in [-1, 1), as decoding a file gives them.

    int8, int16 and int32 samples (either byte order) are divided by their full
    scale (int16 by 32768) and uint8 samples (8-bit WAV) are centred at 128
    first, so that what ``scipy.io.wavfile.read`` returns gives the same
    spectrogram as the file. Arrays, lists of arrays (one per file) and torch
    tensors are converted; anything else (floats, int64, DataFrames) is
    returned unchanged, with a warning for other integer arrays whose samples
    exceed 1 (``np.array`` of Python ints is int64: unscaled PCM, most likely).

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.io import pcm_to_float
    >>> pcm_to_float(np.array([[-32768, 0, 16384]], dtype=np.int16)).tolist()
    [[-1.0, 0.0, 0.5]]
    """
    if isinstance(X, torch.Tensor) and not X.dtype.is_floating_point and not X.is_complex():
        return pcm_to_float(X.detach().cpu().numpy())
    if isinstance(X, list | tuple) and X and all(isinstance(x, np.ndarray) for x in X):
        if any(_pcm_scale(x.dtype) is not None for x in X):
            # each file's samples by its own full scale (an int16 and an int32 file side by
            # side, or PCM beside floats)
            X = [pcm_to_float(x) for x in X]
            try:
                return np.asarray(X)
            except ValueError:
                return X  # ragged: refused with the shapes by the caller
    if not isinstance(X, np.ndarray) or _pcm_scale(X.dtype) is None:
        if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and X.size and _peak(X) > 1:
            warn_user(
                f"{X.dtype} samples reaching {_peak(X):.0f} are taken as they are, not "
                "scaled: audio is expected in about [-1, 1], and only int8, int16, int32 and "
                "uint8 arrays are integer PCM to sklaudio (X.astype(np.int16) if these are "
                "16-bit samples)"
            )
        return X
    out = X.astype(np.float32)
    if X.dtype.kind == "u":
        out -= 128
    out *= np.float32(1 / _pcm_scale(X.dtype))  # (powers of two: exact)
    return out


def _pcm_scale(dtype: np.dtype) -> int | None:
    """Full scale of an integer PCM sample type, or None for any other dtype."""
    if dtype.kind == "i" and dtype.itemsize in (1, 2, 4):
        return 2 ** (8 * dtype.itemsize - 1)
    if dtype.kind == "u" and dtype.itemsize == 1:
        return 128
    return None


# samples this large overflow a spectrogram's float32 powers (|STFT|² ~ (peak · n_fft)²)
_OVERFLOWING_PEAK = 1e15


def _peak(X: np.ndarray) -> float:
    """The largest absolute sample, without np.abs's copy of the whole array."""
    return max(float(X.max()), -float(X.min())) if X.size else 0.0


def check_waveforms_not_empty(X: np.ndarray) -> None:
    """Refuse ``(n, 0, samples)`` and ``(n, [channels,] 0)`` waveform arrays, channels-last
    ones (more channels than samples) and samples large enough to overflow a spectrogram."""
    if X.ndim == 3 and X.shape[1] == 0:
        raise ValueError(f"waveforms of shape {X.shape} have 0 channels; need at least one")
    if X.shape[-1] == 0:
        raise ValueError(f"waveforms of shape {X.shape} have 0 samples per clip")
    peak = _peak(X)
    if peak >= _OVERFLOWING_PEAK:
        row = int(np.argmax(np.abs(X).reshape(len(X), -1).max(axis=1)))
        raise ValueError(
            f"waveform {row} reaches {peak:.3g}: audio is expected in about [-1, 1], and "
            f"samples of {_OVERFLOWING_PEAK:.0e} or more overflow a spectrogram's float32 "
            "powers into inf (a float file written without scaling?)"
        )
    if X.ndim == 3 and X.shape[1] > X.shape[2]:
        raise ValueError(
            f"waveforms of shape {X.shape} would be {X.shape[1]} channels of {X.shape[2]} "
            "samples each; sklaudio takes channels first, (n_clips, n_channels, n_samples), "
            "while soundfile.read and scipy.io.wavfile.read give (n_samples, n_channels): "
            "pass X.transpose(0, 2, 1)"
        )


def read_audio(
    path,
    sample_rate: int | None = None,
    mono: bool = True,
    duration: float | None = None,
    offset: float = 0.0,
) -> tuple[np.ndarray, int]:
    """Decode an audio file into a float32 waveform.

    Any format libsndfile reads works (wav, flac, ogg/vorbis, and on recent
    libsndfile mp3 and opus).

    Parameters
    ----------
    path : str or path-like
        The file to read.
    sample_rate : int, default=None
        Resample to this rate (Hz) with :func:`resample`. ``None`` keeps the
        file's own rate.
    mono : bool, default=True
        Average the channels into one.
    duration : float, default=None
        Read at most this many seconds (measured in the file's own rate).
    offset : float, default=0.0
        Start reading this many seconds into the file.

    Returns
    -------
    waveform : ndarray of float32
        ``(n_samples,)`` when ``mono`` else ``(n_channels, n_samples)``.
    sample_rate : int
        The rate of ``waveform``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        The path does not name a file.
    ValueError
        The file is empty, cannot be decoded, holds NaN or inf samples, is
        truncated, or ``offset`` lies past its end; the message names the file.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from sklaudio.io import read_audio
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(path, np.zeros((8000, 2), dtype=np.float32), 16000)
    >>> y, sr = read_audio(path, sample_rate=8000)
    >>> y.shape, y.dtype, sr
    ((4000,), dtype('float32'), 8000)
    """
    if sample_rate is not None and (not isinstance(sample_rate, Integral) or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive integer or None, got {sample_rate!r}")
    if duration is not None and not (isinstance(duration, Real) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds or None, got {duration!r}")
    if not (isinstance(offset, Real) and offset >= 0):
        raise ValueError(f"offset must be a non-negative number of seconds, got {offset!r}")

    name = _describe(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file {name} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"audio path {name} is a directory, not a file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"audio file {name} is empty (0 bytes)")

    path = str(os.fsdecode(path))  # libsndfile's messages then quote it plainly
    try:
        with sf.SoundFile(_sf_path(path)) as f:
            native_sr = f.samplerate
            declared = f.frames
            short, doubt = _how_it_ends(path)
            if short is not None:
                raise ValueError(f"audio file {name} {short}; fetch it again or remove it")
            if doubt is not None:
                warn_user(f"audio file {name} {doubt}")
            start = int(round(offset * native_sr))
            if declared > 0 and start >= declared:
                raise ValueError(
                    f"offset={offset} s lies past the end of {name} "
                    f"({declared / native_sr:.3f} s long)"
                )
            if start and f.seekable():
                f.seek(start)
            elif start:  # read up to the offset (a codec that cannot seek)
                for _ in f.blocks(blocksize=1 << 16, frames=start, dtype="float32"):
                    pass
            frames = -1 if duration is None else int(round(duration * native_sr))
            # a codec that cannot seek (GSM 6.10, G.721, NMS ADPCM in a WAV) needs the count
            count = declared - start if frames < 0 and not f.seekable() else frames
            try:
                data = f.read(frames=count, dtype="float32", always_2d=True)
            except (ValueError, MemoryError) as exc:  # numpy cannot allocate the frames
                raise ValueError(
                    f"cannot decode audio file {name}: libsndfile "
                    f"{sf.__libsndfile_version__} reports {declared} frames "
                    f"({declared / native_sr / 3600:.3g} h), more than memory holds: a long "
                    "recording (read part of it with duration= and offset=), a damaged "
                    "header, or bytes after an Ogg stream that this libsndfile misreads"
                ) from exc
    except sf.LibsndfileError as exc:
        reason = _sndfile_reason(exc)
        raise ValueError(
            f"cannot decode audio file {name}: {reason}. sklaudio reads what libsndfile reads "
            "(wav, flac, ogg/vorbis, ...); convert the file or remove it"
        ) from exc

    if data.shape[0] == 0:
        raise ValueError(f"audio file {name} has 0 samples; remove it or pass {SKIP_ADVICE}")
    expected = declared - start if frames < 0 else min(frames, declared - start)
    if declared > 0 and data.shape[0] < expected:
        raise ValueError(
            f"audio file {name} is truncated: its header declares {declared} frames "
            f"but only {start + data.shape[0]} could be decoded"
        )
    if not np.isfinite(data).all():
        raise ValueError(f"audio file {name} contains NaN or infinite samples")
    peak = _peak(data)
    if peak >= _OVERFLOWING_PEAK:
        raise ValueError(
            f"audio file {name} holds samples up to {peak:.3g}: audio is expected in about "
            f"[-1, 1], and samples of {_OVERFLOWING_PEAK:.0e} or more overflow a "
            "spectrogram's float32 powers into inf (a float file written without scaling?)"
        )

    if mono:
        waveform = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    else:
        waveform = np.ascontiguousarray(data.T)  # channels first
    if sample_rate is not None and sample_rate != native_sr:
        waveform = resample(waveform, native_sr, sample_rate)
        native_sr = sample_rate
    return waveform.astype(np.float32, copy=False), int(native_sr)


def fix_length(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Centre-crop or zero-pad the last axis to exactly ``n_samples``.

    Longer signals keep their middle part, shorter ones are padded evenly on
    both sides (the extra sample, if any, goes to the end), as ESResNet's
    evaluation transforms do.

    Parameters
    ----------
    waveform : ndarray of shape (..., length)
    n_samples : int
        Length of the last axis after the call, at least 1.

    Returns
    -------
    ndarray of shape (..., n_samples)
        ``waveform`` itself when it has that length already, else a view
        (cropped) or a new array (padded).

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.io import fix_length
    >>> fix_length(np.arange(5.0), 3)
    array([1., 2., 3.])
    >>> fix_length(np.ones(2), 5)
    array([0., 1., 1., 0., 0.])
    """
    if not (isinstance(n_samples, Integral) and n_samples >= 1):
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    length = waveform.shape[-1]
    if length == n_samples:
        return waveform
    if length > n_samples:
        start = (length - n_samples) // 2
        return waveform[..., start : start + n_samples]
    before = (n_samples - length) // 2
    pad = [(0, 0)] * (waveform.ndim - 1) + [(before, n_samples - length - before)]
    return np.pad(waveform, pad)


#: What AudioReader.changes_ counts.
_CHANGES = ("resampled", "mixed_to_mono", "cropped", "padded")


def _skipped_entries(paths, results) -> list:
    """``(index, path, reason)`` of the files whose ``(result, error)`` holds an error."""
    return [
        (i, str(os.fsdecode(p)), _without_skip_advice(err))
        for i, (p, (_, err)) in enumerate(zip(paths, results))
        if err is not None
    ]


def _warn_skipped(who: str, skipped, n_files: int, where: str) -> None:
    """Warn with the first 20 ``(index, path, reason)`` of the files ``who`` left out."""
    listing = "\n".join(f"  [{i}] {err}" for i, _, err in skipped[:20])
    if len(skipped) > 20:
        listing += f"\n  ... and {len(skipped) - 20} more"
    warn_user(
        f"{who} skipped {len(skipped)} of {n_files} files, which could not be read "
        f"(on_error='skip'{where}):\n{listing}"
    )


def _is_path_like(x) -> bool:
    return isinstance(x, str | bytes | os.PathLike)


# dtype kinds that hold text: objects (str, Path), fixed-width str and bytes, numpy 2's
# variable-width StringDType
_TEXT_KINDS = "OUST"


def _as_path_list(X) -> list | None:
    """Return ``X`` as a list of paths, or ``None`` when ``X`` is numeric."""
    if isinstance(X, str | bytes | os.PathLike):
        raise ValueError(
            f"expected a 1-d sequence of audio paths, got the single path {_describe(X)}; "
            "wrap it in a list"
        )
    if isinstance(X, Iterator):
        raise TypeError(
            f"expected a list or array of audio paths or waveforms, got a "
            f"{type(X).__name__}, which can be read only once; pass list(...) of it"
        )
    if isinstance(X, list | tuple) and len(X) == 0:
        raise ValueError("expected audio paths or waveforms, got an empty sequence (0 clips)")
    if isinstance(X, list | tuple) and all(_is_path_like(x) for x in X):
        return list(X)
    if hasattr(X, "dtype"):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except ValueError as exc:  # a ragged list of waveforms
            if not isinstance(X, list | tuple):
                raise
            lengths = sorted({np.shape(x) for x in X})
            raise ValueError(
                f"the {len(X)} waveforms of X differ in shape ({lengths[0]} to {lengths[-1]}); "
                "an array of clips needs one shape: pad or crop them with "
                "sklaudio.io.fix_length, or pass their files to an AudioReader with duration="
            ) from exc
    dtype = getattr(arr, "dtype", None)
    if dtype is not None and not isinstance(dtype, np.dtype) and not isinstance(X, torch.Tensor):
        # A dtype numpy does not know: pandas' extension types tell their kind (strings
        # are 'O'), other libraries' may not (polars' String has no kind, and a Series of
        # paths was taken for numbers): the numpy form of X tells.
        if getattr(dtype, "kind", None) is None:
            arr = np.asarray(X)
            dtype = arr.dtype
    if not isinstance(dtype, np.dtype):  # torch tensors, pandas' numeric extension types
        kind = getattr(dtype, "kind", None)
        if kind is None or kind not in _TEXT_KINDS:
            return None
    if dtype is not None and dtype.kind in _TEXT_KINDS:
        arr = np.asarray(arr)
        if arr.dtype.kind == "O" and not any(_is_path_like(x) for x in arr.flat):
            return None  # numbers stored as objects: let check_array convert them
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(
                f"expected a 1-d array of audio paths, got an array of shape {arr.shape}"
            )
        bad = [i for i, x in enumerate(arr) if not _is_path_like(x)]
        if bad:
            raise ValueError(
                f"entries {bad[:5]} of X are not paths (got {arr[bad[0]]!r}); "
                "pass either paths or a numeric array of waveforms"
            )
        return list(arr)
    return None


def refuse_none(X, who: str) -> None:
    """Refuse ``X=None`` with the usual cause (check_array says "Expected 2D array, got
    scalar array instead: array=nan")."""
    if X is None:
        raise ValueError(
            f"X is None, but {who} takes an array of clips; a dataset Bunch made without "
            "files (make_sounds() without directory=) has filenames=None: pass its data"
        )


def check_waveform_input(X, who: str):
    """``X`` for an estimator that takes waveform arrays, refused with the fix when it holds
    file paths, is None or is one 1-d waveform (a ragged list is refused by
    :func:`_as_path_list`, with the shapes)."""
    refuse_none(X, who)
    if _as_path_list(X) is not None:
        raise ValueError(
            f"X holds audio file paths, but {who} takes waveforms: decode the files first "
            "with an AudioReader (make_pipeline(AudioReader(sample_rate=..., duration=...), "
            f"{who}))"
        )
    ndim = getattr(X, "ndim", None)
    if isinstance(X, list | tuple):  # (a list of arrays of several dtypes stays a list)
        ndim = 1 if X and all(isinstance(x, Real) for x in X[:1]) else None
    elif not isinstance(ndim, int):  # an array-like without ndim
        ndim = np.asarray(X).ndim
    if ndim == 1:
        arr = np.asarray(X)
        if arr.dtype.kind in "biuf" and arr.size:
            raise ValueError(
                f"X is one waveform of {arr.size} samples (a 1-d array), but {who} takes "
                "clips, (n_clips, n_samples). Reshape your data: X[None] (or "
                "X.reshape(1, -1)) for one clip"
            )
    return X


class _NumbersNotBoolsMixin:
    """scikit-learn's ``Interval(Integral, ...)`` takes True and False as 1 and 0; a number
    parameter here refuses them (``n_mels=True`` is a slip, not one band)."""

    def _validate_params(self):
        super()._validate_params()
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_) and any(
                isinstance(c, Interval) for c in constraints
            ):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be a number, not "
                    f"{value!r}"
                )


class _ArrayOutputMixin:
    """``set_output`` for steps whose output is waveforms or spectrograms, not a table."""

    def __init_subclass__(cls, **kwargs):
        # scikit-learn wraps the output of a transformer with get_feature_names_out in a
        # DataFrame under set_config(transform_output="pandas"); 3-d and 4-d arrays have no
        # table to be, so transform is left unwrapped (the steps after them return tables)
        kwargs.setdefault("auto_wrap_output_keys", None)
        super().__init_subclass__(**kwargs)

    def set_output(self, *, transform=None):
        """Accept a Pipeline's ``set_output``; the output stays a numpy array.

        ``Pipeline(...).set_output(transform="pandas")`` calls this on every
        step. Waveforms and spectrograms have no columns to name, so they stay
        arrays, and the steps after this one (statistics, embedders, scalers)
        return DataFrames.

        Parameters
        ----------
        transform : {'default', 'pandas', 'polars'} or None, default=None
            Recorded for the steps after; this step's output is an array.

        Returns
        -------
        self
        """
        if transform not in (None, "default", "pandas", "polars"):
            raise ValueError(
                f"transform must be 'default', 'pandas', 'polars' or None, got {transform!r}"
            )
        return self


class AudioReader(
    DocLinkMixin, _NumbersNotBoolsMixin, _ArrayOutputMixin, TransformerMixin, BaseEstimator
):
    """Turn audio paths into a fixed-size float32 array of waveforms.

    The first step of every sklaudio pipeline: ``X`` is a 1-d array of file
    paths (a dataset's ``filenames``) and the output is ``(n, n_samples)``
    (mono) or ``(n, n_channels, n_samples)``. Every clip is resampled to
    ``sample_rate`` and centre-cropped or zero-padded to ``duration`` seconds.

    Already decoded waveforms (a numeric ``(n, n_samples)`` or
    ``(n, n_channels, n_samples)`` array, assumed to be at ``sample_rate``) are
    accepted too; then only the length is fixed. Integer PCM arrays (int16 from
    ``scipy.io.wavfile.read``, int8, int32, uint8) are scaled to [-1, 1) by
    :func:`pcm_to_float`, as decoding their file would; so are they by
    :class:`~sklaudio.features.SpectrogramTransformer` and by an embedder's
    ``frontend``.

    Parameters
    ----------
    sample_rate : int, default=22050
        Output rate in Hz.
    duration : float, default=None
        Output length in seconds: longer clips keep their centre, shorter ones
        are zero-padded on both sides (:func:`fix_length`). From a WAV or AIFF
        file much longer than that, only a window around the centre is decoded
        and resampled, with the same samples as from the whole file. ``None``
        requires every clip of a call to have the same length after resampling
        (an error lists the shortest and longest file otherwise).
    mono : bool, default=True
        Average channels into one. With ``mono=False`` the output always has a
        channel axis, ``(n, n_channels, n_samples)``: a one-channel file, or a
        2-d array of waveforms, gives ``n_channels = 1``.
    n_jobs : int, default=None
        Files decoded in parallel (joblib threads; libsndfile releases the
        GIL). ``None`` means 1 unless in a :func:`joblib.parallel_config`
        context; ``-1`` uses all cores.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with a file that cannot be read. ``'skip'`` drops it from
        the output, warns with the list of skipped files and records them in
        ``skipped_``. Dropping rows misaligns ``y`` inside a Pipeline, so
        filter a dataset before fitting instead: the dataset loaders take the
        same ``on_error`` and drop files from ``filenames``, ``target`` and
        ``folds`` together.

    Attributes
    ----------
    n_features_in_ : int
        Number of samples per clip seen in ``fit`` when fitted on a numeric
        array.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit`` (a column of paths, or
        of samples); absent otherwise.
    n_channels_ : int
        Channels of an output clip: 1 with ``mono=True``; with ``mono=False``
        those of the waveforms given to ``fit``, or those that the header of
        the first readable file declares (read without decoding the audio).
        ``get_feature_names_out`` names them. Absent when no file's header
        could be read.
    input_kind_ : {'files', 'waveforms'}
        What ``fit`` was given. Waveform arrays given to a reader fitted on
        files are taken to be at ``sample_rate``; when ``duration`` then crops
        or pads them, a warning says so (audio at another rate would be cut
        unseen). Silence it with ``warnings.filterwarnings("ignore",
        message="AudioReader was fitted on files")`` when that is meant.
    skipped_ : list of (int, str, str)
        ``(index, path, reason)`` of the files dropped by the last
        ``transform`` of files with ``on_error='skip'`` (emptied by a later
        one on waveforms, which drops nothing).
    changes_ : dict of str to int
        How many files of the last ``transform`` of files were changed, and
        how: ``'resampled'`` (at another rate than ``sample_rate``),
        ``'mixed_to_mono'`` (several channels, with ``mono=True``),
        ``'cropped'`` and ``'padded'`` (to ``duration``). Set by ``transform``,
        as nothing is decoded at ``fit``; absent after a ``transform`` of
        waveform arrays (whose shapes say it all). The ``sklaudio`` commands
        print the same from the files' headers.

    See Also
    --------
    read_audio : decode a single file.
    sklaudio.features.SpectrogramTransformer : the next step of a pipeline.

    Notes
    -----
    The output is always a numpy array: waveforms have no columns to name, so
    ``set_output(transform='pandas')`` is accepted (a Pipeline passes it to
    every step) and leaves this step's output as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.io import AudioReader
    >>> waves = np.random.default_rng(0).normal(size=(4, 16000)).astype(np.float32)
    >>> AudioReader(sample_rate=16000, duration=0.5).fit_transform(waves).shape
    (4, 8000)
    """

    _parameter_constraints: dict = {
        "sample_rate": [Interval(Integral, 1, None, closed="left")],
        "duration": [Interval(Real, 0, None, closed="neither"), None],
        "mono": ["boolean"],
        "n_jobs": [  # joblib's: -1 is every core, 0 means nothing
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "on_error": [StrOptions({"raise", "skip"})],
    }

    def __init__(self, sample_rate=22050, duration=None, mono=True, n_jobs=None, on_error="raise"):
        self.sample_rate = sample_rate
        self.duration = duration
        self.mono = mono
        self.n_jobs = n_jobs
        self.on_error = on_error

    def fit(self, X, y=None):
        """Validate the parameters and the input; nothing is learned from paths."""
        self._validate_params()
        _ = self.n_samples_out  # a duration under one sample is refused here
        _check_feature_names(self, X, reset=True)
        paths = _as_path_list(X)
        self.__dict__.pop("n_channels_", None)
        if paths is None:
            X = self._validate_waveforms(X)
            self.n_features_in_ = X.shape[-1]
            self.n_channels_ = 1 if self.mono or X.ndim == 2 else X.shape[1]
            self.input_kind_ = "waveforms"
        else:
            self.__dict__.pop("n_features_in_", None)
            self.input_kind_ = "files"  # arrays given later are at an unknown rate
            channels = 1 if self.mono else _first_header_channels(paths)
            if channels is not None:
                self.n_channels_ = channels
        return self

    def get_feature_names_out(self, input_features=None):
        """``'audioreader_sample{i}'`` for each sample of a mono clip, or
        ``'audioreader_channel{c}'`` for each channel with ``mono=False``: one name
        per column of ``transform``'s output (its axis 1), as the step after it
        (:class:`~sklaudio.features.SpectrogramTransformer`) counts its input
        features.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Checked as in scikit-learn: equal to ``feature_names_in_``, or of
            length ``n_features_in_``; it names no output column.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "input_kind_")
        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = type(self).__name__.lower()
        if not self.mono:
            if not hasattr(self, "n_channels_"):
                raise ValueError(
                    "AudioReader(mono=False) could read no file's header in fit, so the "
                    "channels of its output are unknown; fit it on readable files, or pass "
                    "mono=True"
                )
            return np.asarray([f"{prefix}_channel{c}" for c in range(self.n_channels_)], object)
        n_samples = self.n_samples_out
        if n_samples is None:
            if self.input_kind_ == "files":
                raise ValueError(
                    "AudioReader(duration=None) fitted on files gives clips as long as the "
                    "files, unknown until they are read, so its output columns (one per "
                    "sample) cannot be named; set duration= to crop or pad the clips"
                )
            n_samples = self.n_features_in_  # waveforms keep their length
        return np.asarray([f"{prefix}_sample{i}" for i in range(n_samples)], dtype=object)

    @property
    def n_samples_out(self) -> int | None:
        """Samples per output clip, or ``None`` when ``duration`` is None."""
        if self.duration is None:
            return None
        n_samples = int(round(self.duration * self.sample_rate))
        if n_samples < 1:
            raise ValueError(
                f"duration={self.duration} s is less than one sample at "
                f"sample_rate={self.sample_rate} Hz"
            )
        return n_samples

    def _validate_waveforms(self, X) -> np.ndarray:
        X = pcm_to_float(check_waveform_input(X, type(self).__name__))
        X = check_array(X, allow_nd=True, dtype=np.float32, ensure_all_finite=True, input_name="X")
        if X.ndim not in (2, 3):
            raise ValueError(
                f"Expected 2D array (n_clips, n_samples) or 3D array (n_clips, n_channels, "
                f"n_samples) of waveforms, got {X.ndim}D array instead. Reshape your data."
            )
        check_waveforms_not_empty(X)
        return X

    def _read_centre(self, path, n_out: int, info) -> np.ndarray | None:
        """The centre ``n_out`` samples (at ``sample_rate``) of a file much longer than
        that, decoding and resampling only a window around them; None when the file is
        not much longer (or its header, ``info``, could not be read: ``read_audio`` then
        says why).

        Only uncompressed WAV and AIFF files, whose samples seek exactly and whose cut-short
        copies :func:`cut_short` catches from the header: an MP3 or Opus decoder needs
        the frames before a seek point, and a cut FLAC file fails only where it is cut.
        The window starts on a multiple of the resampler's decimation factor, so its
        resampled samples fall on the same output grid as the whole file's, and it has
        a margin wider than the filter on either side: the result matches decoding the
        whole file and cropping it, to float rounding, at a fraction of the cost for a
        long recording.
        """
        if info is None:
            return None
        if (
            info.format not in _WINDOWED_FORMATS
            or info.subtype in _UNSEEKABLE_SUBTYPES
            or info.subtype.startswith(_UNSEEKABLE_PREFIXES)
        ):
            return None  # (a GSM or G.721 WAV cannot seek: decoded whole)
        native, total = int(info.samplerate), int(info.frames)
        ratio = Fraction(int(self.sample_rate), native)
        up, down = ratio.numerator, ratio.denominator
        margin = 256 + 10 * max(up, down) // up  # native samples; > the filter's half-length
        total_out = -(-total * up // down)  # ceil: resample_poly's output length
        if total_out < n_out + 4 * margin * up // down + 2 * int(self.sample_rate):
            return None  # not worth it: decode everything
        start_out = (total_out - n_out) // 2  # fix_length's centre crop
        s0 = max(0, (start_out * down // up - margin) // down * down)
        s1 = min(total, -(-(start_out + n_out) * down // up) + margin)
        wave, _ = read_audio(
            path,
            sample_rate=self.sample_rate,
            mono=self.mono,
            offset=s0 / native,
            duration=(s1 - s0) / native,
        )
        first = start_out - s0 * up // down
        if wave.shape[-1] < first + n_out:
            return None
        return wave[..., first : first + n_out]

    def _read_one(self, path, row=None, changes=None):
        """Read one file as a clip; ``changes``, a dict, receives what was changed in it
        (``resampled``, ``mixed_to_mono``, ``cropped``, ``padded``: bools)."""
        n_out = self.n_samples_out
        try:
            info = sf.info(_sf_path(path))
        except (RuntimeError, OSError):
            info = None  # (read_audio says why the file cannot be read)
        wave = None if n_out is None else self._read_centre(path, n_out, info)
        centre = wave is not None  # only the centre was decoded: a longer file
        if wave is None:
            wave, _ = read_audio(path, sample_rate=self.sample_rate, mono=self.mono)
        if not self.mono and wave.ndim == 1:
            wave = wave[None]
        if changes is not None:
            length = wave.shape[-1]
            changes["resampled"] = info is not None and info.samplerate != self.sample_rate
            changes["mixed_to_mono"] = bool(self.mono and info is not None and info.channels > 1)
            changes["cropped"] = centre or (n_out is not None and length > n_out)
            changes["padded"] = n_out is not None and length < n_out
        if n_out is not None:
            wave = fix_length(wave, n_out)
        if row is not None:
            row[:] = wave
            return row
        return wave

    def _read_one_safe(self, path, row=None, changes=None):
        try:
            return self._read_one(path, row, changes), None
        except (OSError, ValueError) as exc:
            if self.on_error == "raise":
                raise
            return None, str(exc)

    def transform(self, X):
        """Decode, resample and fix the length of every clip.

        Parameters
        ----------
        X : array-like of shape (n_clips,) of paths, or numeric waveforms
            Paths to audio files, or decoded waveforms at ``sample_rate``.

        Returns
        -------
        ndarray of float32, shape (n_kept, n_samples) or (n_kept, n_channels, n_samples)
        """
        self._validate_params()
        n_samples_out = self.n_samples_out  # checked once, not per file
        if hasattr(self, "input_kind_"):  # (no fit needed; a fitted reader checks names)
            _check_feature_names(self, X, reset=False)
        paths = _as_path_list(X)
        if paths is None:
            if getattr(self, "skipped_", None):  # nothing is dropped from waveforms
                self.skipped_ = []  # (not a stale list of the last files' failures)
            return self._transform_waveforms(X)

        # With a known output shape every thread writes its row in place, so the
        # decoded clips are never copied again by a final np.stack.
        out = None
        if self.mono and n_samples_out is not None:
            out = np.empty((len(paths), n_samples_out), dtype=np.float32)
        changes = [{} for _ in paths]  # (each thread fills its own)
        results = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(self._read_one_safe)(p, None if out is None else out[i], changes[i])
            for i, p in enumerate(paths)
        )
        self.skipped_ = _skipped_entries(paths, results)
        if self.skipped_:
            _warn_skipped("AudioReader", self.skipped_, len(paths), _IN_SKIPPED)
        kept = [i for i, (_, err) in enumerate(results) if err is None]
        self.changes_ = {key: int(sum(changes[i][key] for i in kept)) for key in _CHANGES}
        if not kept:
            raise ValueError("no audio file could be read; see the warning for the reasons")
        if out is not None:
            return out if len(kept) == len(paths) else out[kept]
        return self._stack([results[i][0] for i in kept], [paths[i] for i in kept])

    def _stack(self, waves, paths) -> np.ndarray:
        lengths = np.array([w.shape[-1] for w in waves])
        channels = {w.shape[0] for w in waves if w.ndim == 2}
        if len(channels) > 1:
            first = {}  # one file for each channel count, the first of each
            for w, p in zip(waves, paths):
                first.setdefault(w.shape[0], p)
            examples = ", ".join(f"{c} in {_describe(first[c])}" for c in sorted(first))
            raise ValueError(
                f"clips have different numbers of channels ({examples}); "
                "pass mono=True or convert the files"
            )
        if lengths.min() != lengths.max():
            short, long_ = int(lengths.argmin()), int(lengths.argmax())
            raise ValueError(
                "clips have different lengths after resampling "
                f"({lengths.min()} samples for {_describe(paths[short])}, {lengths.max()} for "
                f"{_describe(paths[long_])}); set duration= to pad or crop them to a common length"
            )
        return np.stack(waves).astype(np.float32, copy=False)

    def _transform_waveforms(self, X) -> np.ndarray:
        X = self._validate_waveforms(X)
        if (
            hasattr(self, "n_features_in_")
            and self.duration is None
            and (X.shape[-1] != self.n_features_in_)
        ):
            raise ValueError(
                f"X has {X.shape[-1]} features, but AudioReader is expecting "
                f"{self.n_features_in_} features as input (samples per clip); set duration= to "
                "pad or crop clips to a common length"
            )
        n_out = self.n_samples_out
        fitted_on_files = getattr(self, "input_kind_", None) == "files"
        if fitted_on_files and n_out is not None and X.shape[-1] != n_out:
            # files are resampled and their length fixed in seconds; arrays can only be taken
            # to be at sample_rate, so audio at another rate would be cut (or padded) unseen
            warn_user(
                f"AudioReader was fitted on files and now gets arrays of {X.shape[-1]} samples "
                f"per clip, taken to be at sample_rate={self.sample_rate} Hz "
                f"({X.shape[-1] / self.sample_rate:g} s) and "
                f"{'centre-cropped' if X.shape[-1] > n_out else 'padded with silence'} to {n_out} "
                f"samples (duration={self.duration:g} s); resample arrays to "
                f"{self.sample_rate} Hz first, or pass the files"
            )
        self.__dict__.pop("changes_", None)  # (the last files' counts would not be these)
        if self.mono and X.ndim == 3:
            X = X.mean(axis=1)
        elif not self.mono and X.ndim == 2:  # (n, n_channels, n_samples), as for files
            X = X[:, None]
        if self.n_samples_out is not None:
            X = fix_length(X, self.n_samples_out)
        return np.ascontiguousarray(X, dtype=np.float32)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # waveforms are always float32
        return tags


def _first_header_channels(paths) -> int | None:
    """The channels that the header of the first readable file of ``paths`` declares
    (the audio is not decoded), or None if no header can be read."""
    for path in paths:
        try:
            return int(sf.info(_sf_path(path)).channels)
        except (RuntimeError, OSError, TypeError, ValueError):
            continue  # an unreadable file: reading it reports the error, or skips it
    return None


def _segment_starts(length: int, n: int, hop: int, tail: str) -> np.ndarray:
    """Start samples of the windows of ``n`` samples every ``hop`` samples over ``length``."""
    if length <= n:
        return np.zeros(1, dtype=np.int64)  # one window, padded (as AudioReader pads)
    starts = np.arange(0, length - n + 1, hop, dtype=np.int64)
    if tail == "pad" and starts[-1] + n < length:
        starts = np.append(starts, starts[-1] + hop)  # the rest, padded with silence
    return starts


def _cut_segments(wave: np.ndarray, n: int, hop: int, tail: str) -> np.ndarray:
    """``(n_segments, [n_channels,] n)`` windows of ``wave`` (channels first), copied."""
    starts = _segment_starts(wave.shape[-1], n, hop, tail)
    out = np.zeros((len(starts), *wave.shape[:-1], n), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = wave[..., s : s + n]
        out[i, ..., : piece.shape[-1]] = piece
    return out


def segment_recordings(
    X,
    *,
    sample_rate=22050,
    duration,
    hop=None,
    tail="pad",
    mono=True,
    n_jobs=None,
    on_error="raise",
):
    """Cut recordings of any length into clips of ``duration`` seconds.

    :class:`AudioReader` keeps one clip per file, from its centre; a field
    recording, a 30 s scene or a long stream holds many. This cuts each
    recording into windows of ``duration`` seconds every ``hop`` seconds and
    returns all of them as one array of clips, with the recording each came
    from (``groups``) and where it starts, so that the clips go through any
    sklaudio pipeline and their predictions can be pooled back per recording
    (:func:`pool_segments`).

    Keep the clips of one recording on one side of a split: index a corpus's
    folds with ``groups`` (``PredefinedSplit(folds[seg.groups])``) or pass
    ``groups=seg.groups`` to a :class:`~sklearn.model_selection.GroupKFold`;
    overlapping clips of one recording in both the training and the test set
    would inflate the score.

    Parameters
    ----------
    X : array-like of paths, or of waveforms
        Audio files (read as :class:`AudioReader` reads them: resampled to
        ``sample_rate``, channels averaged when ``mono``), or decoded
        waveforms at ``sample_rate``: a list (or 1-d object array) of 1-d
        arrays, or of ``(n_channels, n_samples)`` arrays, of any lengths, or
        one 2-d / 3-d array of recordings of the same length. Integer PCM
        arrays (int8, int16, int32, uint8) are scaled to [-1, 1)
        (:func:`pcm_to_float`); Python ints and int64 are taken as they are.
    sample_rate : int, default=22050
        Rate (Hz) of the clips; files are resampled to it.
    duration : float
        Length of each clip in seconds.
    hop : float, default=None
        Seconds from the start of one clip to the start of the next, at
        most ``duration``; ``None`` means ``duration`` (clips side by side,
        no overlap). ``duration / 2`` gives the usual half overlap.
    tail : {'pad', 'drop'}, default='pad'
        What to do with the end of a recording that does not fill a whole
        clip: ``'pad'`` makes one more clip of it, padded with silence at its
        end (nothing of the recording is lost); ``'drop'`` leaves it out. A
        recording shorter than ``duration`` always gives one clip, padded at
        its end, whatever ``tail`` is.
    mono : bool, default=True
        Average channels into one; with ``False`` the clips keep a channel
        axis, ``(n_segments, n_channels, n_samples)``, and all recordings must
        have the same number of channels.
    n_jobs : int, default=None
        Files decoded in parallel (joblib threads), as in :class:`AudioReader`.
    on_error : {'raise', 'skip'}, default='raise'
        What to do with a file that cannot be read: ``'skip'`` leaves it out,
        warns with the list and records it in ``skipped``.

    Returns
    -------
    segments : :class:`~sklearn.utils.Bunch`
        data : ndarray of float32, shape (n_segments, [n_channels,] n_samples)
            The clips, recording after recording, in time order (a channel axis
            when ``mono=False``).
        groups : ndarray of int, shape (n_segments,)
            Index in ``X`` of the recording each clip comes from.
        start : ndarray of float, shape (n_segments,)
            Where each clip starts in its recording, in seconds.
        filenames : ndarray of str, shape (n_segments,)
            The file each clip comes from (only when ``X`` holds paths).
        skipped : list of (int, str, str)
            ``(index, path, reason)`` of the files left out by
            ``on_error='skip'``.
        sample_rate : int
            The rate of ``data``.

    Notes
    -----
    The clips are copies: overlapping windows (``hop < duration``) take
    ``duration / hop`` times the recordings' size in memory. For a corpus
    larger than memory, call this on a part of the files at a time.

    See Also
    --------
    pool_segments : pool per-clip predictions back into one per recording.
    AudioReader : one clip per file, from its centre.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.io import segment_recordings
    >>> recordings = [np.ones(16000 * 3), np.ones(16000 * 5 // 2)]  # 3 s and 2.5 s at 16 kHz
    >>> seg = segment_recordings(recordings, sample_rate=16000, duration=1.0)
    >>> seg.data.shape, seg.groups.tolist(), seg.start.tolist()
    ((6, 16000), [0, 0, 0, 1, 1, 1], [0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    >>> float(seg.data[-1, 8000:].max())  # the last 0.5 s of recording 1: silence
    0.0
    >>> segment_recordings(recordings, sample_rate=16000, duration=1.0, tail="drop").groups.tolist()
    [0, 0, 0, 1, 1]
    """
    if not (isinstance(sample_rate, Integral) and not isinstance(sample_rate, bool)) or (
        sample_rate <= 0
    ):
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    for name, value in (("duration", duration), ("hop", hop)):
        if name == "hop" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    n = int(round(duration * sample_rate))
    if n < 1:
        raise ValueError(
            f"duration={duration} s is less than one sample at sample_rate={sample_rate} Hz"
        )
    step = n if hop is None else int(round(hop * sample_rate))
    if hop is not None and (step < 1 or step > n):
        raise ValueError(
            f"hop must be between one sample and duration={duration} s (clips would leave "
            f"gaps between them otherwise), got hop={hop}"
        )
    if tail not in ("pad", "drop"):
        raise ValueError(f"tail must be 'pad' or 'drop', got {tail!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")

    if isinstance(X, list | tuple) and X and not all(_is_path_like(x) for x in X):
        paths = None  # waveforms, which may differ in length
    else:
        paths = _as_path_list(X)
    skipped = []
    if paths is None:
        waves = _recordings_as_waveforms(X, mono)
        pieces = [_cut_segments(w, n, step, tail) for w in waves]
    else:
        reader = AudioReader(sample_rate=sample_rate, mono=mono, on_error=on_error)

        def cut(path):
            wave, err = reader._read_one_safe(path)
            return (None, err) if wave is None else (_cut_segments(wave, n, step, tail), None)

        results = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(cut)(p) for p in paths)
        skipped = _skipped_entries(paths, results)
        if skipped:
            _warn_skipped("segment_recordings", skipped, len(paths), _IN_RESULT_SKIPPED)
        if len(skipped) == len(paths):
            raise ValueError("no audio file could be read; see the warning for the reasons")
        pieces = [piece for piece, _ in results]
    kept = [i for i, piece in enumerate(pieces) if piece is not None]
    if not mono:
        channels = {pieces[i].shape[1] for i in kept}
        if len(channels) > 1:
            where = {}
            for i in kept:
                where.setdefault(pieces[i].shape[1], i)
            examples = ", ".join(
                f"{c} in {_describe(paths[i]) if paths is not None else f'recording {i}'}"
                for c, i in sorted(where.items())
            )
            raise ValueError(
                f"recordings have different numbers of channels ({examples}); "
                "pass mono=True or convert them"
            )
    counts = np.array([len(pieces[i]) for i in kept])
    groups = np.repeat(np.asarray(kept, dtype=np.int64), counts)
    data = np.concatenate([pieces[i] for i in kept])
    start = np.concatenate([np.arange(c, dtype=np.float64) * step / sample_rate for c in counts])
    bunch = Bunch(
        data=data, groups=groups, start=start, skipped=skipped, sample_rate=int(sample_rate)
    )
    if paths is not None:
        bunch.filenames = np.asarray([str(os.fsdecode(paths[i])) for i in kept])[
            np.repeat(np.arange(len(kept)), counts)
        ]
    return bunch


def _recordings_as_waveforms(X, mono: bool) -> list[np.ndarray]:
    """Each recording of ``X`` as a finite float32 array, channels first."""
    if isinstance(X, list | tuple) or getattr(getattr(X, "dtype", None), "kind", "") == "O":
        items = list(X)  # (a 1-d object array or Series of waveforms: one per recording)
    else:
        arr = pcm_to_float(X)
        arr = np.asarray(arr)
        if arr.ndim not in (2, 3):
            raise ValueError(
                f"expected recordings as a 2-d (n_recordings, n_samples) or 3-d (n_recordings, "
                f"n_channels, n_samples) array, or a list of waveforms; got a {arr.ndim}-d array"
            )
        items = list(arr)
    if not items:
        raise ValueError("expected recordings, got 0 of them")
    waves = []
    for i, item in enumerate(items):
        w = np.asarray(pcm_to_float(np.asarray(item)))
        if w.dtype.kind not in "fiub":
            raise ValueError(f"recording {i} is not numeric (dtype {w.dtype})")
        w = w.astype(np.float32, copy=False)
        if w.ndim not in (1, 2) or w.shape[-1] == 0:
            raise ValueError(
                f"recording {i} must be a non-empty 1-d waveform or a (n_channels, n_samples) "
                f"array, got shape {w.shape}"
            )
        if not np.isfinite(w).all():
            raise ValueError(f"recording {i} contains NaN or infinite samples")
        if w.ndim == 2 and w.shape[0] > w.shape[1]:
            raise ValueError(
                f"recording {i} of shape {w.shape} would be {w.shape[0]} channels of "
                f"{w.shape[1]} samples; recordings are channels first, (n_channels, n_samples), "
                "while soundfile.read gives (n_samples, n_channels): pass its .T"
            )
        if _peak(w) >= _OVERFLOWING_PEAK:
            raise ValueError(
                f"recording {i} reaches {_peak(w):.3g}: audio is expected in about [-1, 1], "
                f"and samples of {_OVERFLOWING_PEAK:.0e} or more overflow a spectrogram"
            )
        if mono:
            w = w.mean(axis=0) if w.ndim == 2 else w
        elif w.ndim == 1:
            w = w[None]
        waves.append(w)
    return waves


def pool_segments(values, groups, how="mean"):
    """Pool per-clip rows (predicted probabilities, embeddings) into one row per recording.

    Parameters
    ----------
    values : array-like of shape (n_segments, ...)
        One row per clip, e.g. ``predict_proba`` or ``transform`` of the
        clips of :func:`segment_recordings`.
    groups : array-like of shape (n_segments,)
        The recording of each clip (``segment_recordings(...).groups``).
    how : {'mean', 'max'}, default='mean'
        ``'mean'`` averages the clips' rows (a soft vote); ``'max'`` keeps
        each column's largest value (an event heard in any clip counts).

    Returns
    -------
    pooled : ndarray of shape (n_recordings, ...)
        One row per distinct group, in increasing group order.
    recordings : ndarray of shape (n_recordings,)
        The group of each row of ``pooled``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.io import pool_segments
    >>> proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    >>> pooled, recordings = pool_segments(proba, [0, 0, 1])
    >>> pooled.round(2).tolist(), recordings.tolist()
    ([[0.6, 0.4], [0.2, 0.8]], [0, 1])
    """
    values = np.asarray(values)
    groups = np.asarray(groups)
    if how not in ("mean", "max"):
        raise ValueError(f"how must be 'mean' or 'max', got {how!r}")
    if groups.ndim != 1 or values.ndim < 1 or len(groups) != len(values):
        raise ValueError(
            f"values and groups must have one row per clip: got {len(values)} rows of values "
            f"and groups of shape {groups.shape}"
        )
    if len(groups) == 0:
        raise ValueError("got 0 clips to pool")
    recordings, inverse = np.unique(groups, return_inverse=True)
    if how == "mean":
        sums = np.zeros((len(recordings), *values.shape[1:]), dtype=np.float64)
        np.add.at(sums, inverse, values)
        counts = np.bincount(inverse).reshape((-1,) + (1,) * (values.ndim - 1))
        pooled = sums / counts
        if values.dtype.kind == "f":
            pooled = pooled.astype(values.dtype)
    else:
        pooled = np.full((len(recordings), *values.shape[1:]), -np.inf, dtype=np.float64)
        np.maximum.at(pooled, inverse, values)
        pooled = pooled.astype(values.dtype)
    return pooled, recordings


#: File name extensions that :func:`list_audio_files` (and so the folder and ESC loaders)
#: treat as audio: the formats libsndfile reads that corpora are distributed in. ``.mat``
#: and headerless ``.raw`` are left out (a MATLAB data file or raw bytes beside the audio
#: would be taken for a clip); pass ``extensions=`` to list others.
AUDIO_EXTENSIONS = (
    ".wav",
    ".wave",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aiff",
    ".aif",
    ".aifc",
    ".au",
    ".snd",
    ".caf",
    ".w64",
    ".rf64",
    ".sph",
    ".voc",
)


def list_audio_files(root, extensions=AUDIO_EXTENSIONS):
    """Sorted audio files below ``root`` (recursively), as strings.

    Hidden files and folders (names starting with ``.``, such as the ``._*``
    resource forks that macOS leaves beside copied files) are not listed.
    Symbolic links to folders are followed, except those that point back up
    the tree (a loop). A link to a missing file is listed: reading it then
    names the missing file (it is not dropped unseen).

    Parameters
    ----------
    root : str or path-like
        A folder.
    extensions : tuple of str, default=AUDIO_EXTENSIONS
        File name endings to list, case-insensitive (``.wav``, ``.flac``,
        ``.ogg``, ``.mp3``, ``.aiff`` and the other formats libsndfile reads).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sklaudio.io import list_audio_files
    >>> list_audio_files(".", extensions=(".nothing",))
    []
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{_describe(root)} is not a directory")
    exts = tuple(e.lower() for e in extensions)
    found = []
    # the real paths of each folder and of those above it, handed down the walk
    chains = {os.fspath(root): frozenset({os.path.realpath(root)})}
    # os.walk rather than Path.rglob, which does not enter linked folders before Python 3.13
    for folder, subfolders, files in os.walk(root, followlinks=True):
        chain = chains.pop(folder)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for d in list(subfolders):
            real = os.path.realpath(os.path.join(folder, d))
            if real in chain:  # a link back up the tree: a loop
                subfolders.remove(d)
            else:
                chains[os.path.join(folder, d)] = chain | {real}
        found += [
            os.path.join(folder, name)
            for name in files
            if not name.startswith(".")
            and Path(name).suffix.lower() in exts
            # a link to a missing file (a git-annex or DataLad file not fetched) is listed,
            # so that reading it names the file, not dropped unseen
            and (os.path.isfile(p := os.path.join(folder, name)) or os.path.islink(p))
        ]
    return sorted(found, key=path_sort_key)


def path_sort_key(path) -> tuple[str, ...]:
    """Sort paths by their parts, not their text: the order (and the folds made from it) is
    then the same on every platform ('/' sorts before digits, Windows' '\\' after them)."""
    return Path(os.fsdecode(path)).parts


class AudioFileDataset(torch.utils.data.Dataset):
    """Audio files decoded one at a time: the torch Dataset behind streaming fits.

    Item ``i`` is ``(waveform, target)``: file ``paths[i]`` read by
    ``reader`` (resampled, mixed down if ``reader.mono``, centre-cropped or
    padded to ``reader.duration``) as a float32 tensor, and ``y[i]`` (``0``
    when ``y`` is None). Used by a DataLoader with ``num_workers > 0``, the
    files are decoded in worker processes, batch by batch, so no array of
    the whole corpus is ever built. The embedders and
    :class:`~sklaudio.classifiers.FineTunedClassifier` create it themselves
    when their ``frontend`` starts with an :class:`AudioReader` and ``X``
    holds paths.

    Parameters
    ----------
    paths : sequence of str or path-like
        The audio files.
    reader : AudioReader
        How to decode them; ``duration`` must be set (clips are batched) and
        ``on_error`` must be ``'raise'`` (a dataset cannot drop an item: filter
        the files first, e.g. with a dataset loader's ``on_error='skip'``).
    y : array-like of shape (n_files,), default=None
        Targets returned beside the waveforms.
    shape : tuple of int, default=None
        Expected shape of every decoded clip; a file that decodes to another
        shape (e.g. a different number of channels with ``mono=False``) raises
        an error naming it.

    Examples
    --------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> from sklaudio.io import AudioFileDataset, AudioReader
    >>> path = tempfile.mkdtemp() + "/tone.wav"
    >>> sf.write(path, np.zeros(8000, dtype=np.float32), 8000)
    >>> data = AudioFileDataset([path], AudioReader(sample_rate=16000, duration=0.5))
    >>> wave, target = data[0]
    >>> len(data), tuple(wave.shape), wave.dtype
    (1, (8000,), torch.float32)
    """

    def __init__(self, paths, reader: AudioReader, y=None, shape=None):
        if not isinstance(reader, AudioReader):
            raise TypeError(f"reader must be an AudioReader, got {type(reader).__name__}")
        if reader.duration is None:
            raise ValueError(
                "streaming audio files needs a fixed clip length to batch them: set "
                "AudioReader(duration=...) in the frontend"
            )
        if reader.on_error != "raise":
            raise ValueError(
                f"AudioReader(on_error={reader.on_error!r}) cannot drop files while streaming "
                "(every file is a training item); filter the files first, e.g. with a dataset "
                "loader's on_error='skip', and use on_error='raise'"
            )
        self.paths = list(paths)
        self.reader = reader
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.paths):
            raise ValueError(f"got {len(self.paths)} paths but {len(self.y)} targets")
        self.shape = None if shape is None else tuple(shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        wave = self.reader._read_one(path)
        if self.shape is not None and wave.shape != self.shape:
            raise ValueError(
                f"{_describe(path)} decodes to a clip of shape {wave.shape}, but this dataset "
                f"holds clips of shape {self.shape} (those a model was fitted on); pass "
                "mono=True to the AudioReader or convert the file"
            )
        target = 0 if self.y is None else self.y[index]
        return torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), target

"""Property-based fuzzing of everything that takes user input.

The only allowed outcomes are a correct result, or a documented exception
(ValueError, TypeError, FileNotFoundError) whose message says what was wrong
(and, for files, names the file). Examples are derandomised so that CI runs
the same cases every time.
"""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sklaudio import AudioReader, NPIDEmbedder, SpectrogramTransformer, read_audio  # noqa: E402

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DOCUMENTED = (ValueError, TypeError, FileNotFoundError)


def _clear(exc: BaseException, *must_name: str) -> None:
    """A documented exception type with a message that says something and names the input."""
    assert isinstance(exc, DOCUMENTED), f"undocumented {type(exc).__name__}: {exc}"
    message = str(exc)
    assert len(message) > 15, f"unhelpful message {message!r}"
    for name in must_name:
        assert name in message, f"{message!r} does not name {name!r}"


def _check_waveform(wave, sr, expected_sr=None):
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert np.isfinite(wave).all()
    assert isinstance(sr, int) and sr > 0
    if expected_sr is not None:
        assert sr == expected_sr


# -- read_audio ---------------------------------------------------------------------------


@FUZZ
@given(
    data=st.binary(min_size=0, max_size=2048),
    suffix=st.sampled_from([".wav", ".flac", ".ogg", ".bin", ""]),
)
def test_read_audio_random_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clip{suffix}"
        path.write_bytes(data)
        try:
            wave, sr = read_audio(path)
        except Exception as exc:
            _clear(exc, path.name)
        else:
            _check_waveform(wave, sr)


def _wav_bytes(fmt="WAV", subtype="PCM_16") -> bytes:
    import io

    buf = io.BytesIO()
    wave = np.sin(np.arange(800, dtype=np.float32) / 5)
    sf.write(buf, wave, 8000, format=fmt, subtype=subtype)
    return buf.getvalue()


@FUZZ
@given(
    base=st.sampled_from([("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16")]),
    edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_read_audio_corrupted_headers(base, edits):
    data = bytearray(_wav_bytes(*base))
    for position, value in edits:
        data[position] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"mutant.{base[0].lower()}"
        path.write_bytes(bytes(data))
        try:
            wave, sr = read_audio(path, sample_rate=8000)
        except Exception as exc:
            _clear(exc, path.name)
        else:
            _check_waveform(wave, sr, 8000)


@st.composite
def audio_files(draw):
    fmt, subtype = draw(
        st.sampled_from(
            [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("WAV", "PCM_24")]
        )
    )
    sr = draw(st.sampled_from([800, 8000, 11025, 16000, 22050, 44100, 48000]))
    n = draw(st.integers(0, 3000))
    channels = draw(st.integers(1, 3))
    poison = draw(st.sampled_from([None, np.nan, np.inf])) if subtype == "FLOAT" else None
    keep = draw(st.floats(0.0, 1.0))  # fraction of the file's bytes that survive
    return fmt, subtype, sr, n, channels, poison, keep


@FUZZ
@given(spec=audio_files(), target=st.sampled_from([None, 8000, 16000, 22050]))
def test_read_audio_real_and_truncated_files(spec, target):
    fmt, subtype, sr, n, channels, poison, keep = spec
    rng = np.random.default_rng(n)
    wave = rng.uniform(-0.9, 0.9, size=(n, channels)).astype(np.float32)
    if poison is not None and n:
        wave[n // 2, 0] = poison
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clip.{fmt.lower()}"
        sf.write(path, wave, sr, format=fmt, subtype=subtype)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)] if keep < 1 else data)
        try:
            out, out_sr = read_audio(path, sample_rate=target)
        except Exception as exc:
            _clear(exc, path.name)
            # an intact, finite, non-empty file must always be readable
            assert keep < 1 or poison is not None or n == 0, f"good file refused: {exc}"
        else:
            _check_waveform(out, out_sr, target or sr)
            if keep == 1 and target is None:
                assert len(out) == n


# -- AudioReader and SpectrogramTransformer on arrays -------------------------------------


@st.composite
def arrays(draw, max_len=3000):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(0, 3 if i < ndim - 1 else max_len)) for i in range(ndim))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int16, np.int32, bool]))
    rng = np.random.default_rng(sum(shape) + ndim)
    X = (rng.normal(size=shape) * (1000 if dtype in (np.int16, np.int32) else 0.3)).astype(dtype)
    poison = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
    if poison is not None and X.size and np.issubdtype(X.dtype, np.floating):
        X.flat[draw(st.integers(0, X.size - 1))] = poison
    return X


@FUZZ
@given(X=arrays(), duration=st.sampled_from([None, 0.01, 0.5]), mono=st.booleans())
def test_audio_reader_on_arrays(X, duration, mono):
    reader = AudioReader(sample_rate=8000, duration=duration, mono=mono)
    try:
        out = reader.fit_transform(X)
    except Exception as exc:
        _clear(exc)
    else:
        assert out.dtype == np.float32 and np.isfinite(out).all()
        assert out.shape[0] == X.shape[0]
        if duration is not None:
            assert out.shape[-1] == int(round(duration * 8000))


@FUZZ
@given(
    X=arrays(max_len=4000),
    kind=st.sampled_from(["esresnet", "log_mel", "power"]),
    sample_rate=st.sampled_from([1000, 8000, 16000, 44100]),
    n_mels=st.sampled_from([4, 16, 64]),
)
def test_spectrogram_transformer_on_arrays(X, kind, sample_rate, n_mels):
    spec = SpectrogramTransformer(kind=kind, sample_rate=sample_rate, n_mels=n_mels, device="cpu")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. empty mel filters at low rates are warned about
            out = spec.fit_transform(X)
    except Exception as exc:
        _clear(exc)
    else:
        assert out.dtype == np.float32 and out.ndim == 4 and out.shape[0] == X.shape[0]
        assert np.isfinite(out).all()


# -- embedders ----------------------------------------------------------------------------


@settings(FUZZ, max_examples=15)
@given(
    shape=st.lists(st.integers(0, 12), min_size=1, max_size=5).map(tuple),
    poison=st.sampled_from([None, np.nan, np.inf]),
    dtype=st.sampled_from([np.float32, np.float64, np.int32]),
)
def test_npid_embedder_on_arrays(shape, poison, dtype):
    X = np.random.default_rng(len(shape)).normal(size=shape).astype(dtype)
    if poison is not None and X.size and np.issubdtype(X.dtype, np.floating):
        X.flat[0] = poison
    emb = NPIDEmbedder(embedding_dim=4, loss="softmax", max_epochs=1, batch_size=4, random_state=0)
    try:
        Z = emb.fit_transform(X)
    except Exception as exc:
        _clear(exc)
    else:
        assert Z.shape == (shape[0], 4) and np.isfinite(Z).all()
        np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)

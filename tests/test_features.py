import warnings

import numpy as np
import pytest
import torch
from scipy.signal import get_window

from sklaudio.features import (
    SpectrogramTransformer,
    TemporalStatistics,
    esresnet_spectrogram,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    power_spectrogram,
    resolve_device,
)


def _clip(n_samples, sr=44100, seed=0):
    """Tones, a chirp and noise: energy spread over all three ESResNet bands."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 9000 * t)
    x += 0.05 * np.sin(2 * np.pi * (200 + 8000 * t) * t) + 0.01 * rng.normal(size=n_samples)
    return x.astype(np.float32)


def _numpy_power(x, n_fft, hop, win_length, window, normalized):
    """Independent STFT in float64: reflect pad, frame, centred periodic window, rfft."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(n_frames)])
    win = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    win[left : left + win_length] = get_window(window, win_length, fftbins=True)
    spec = np.fft.rfft(frames * win, axis=1).T
    if normalized:
        spec = spec / np.sqrt(n_fft)
    return spec.real**2 + spec.imag**2


def _numpy_esresnet(x):
    power = _numpy_power(x, 2048, 561, 1654, "blackmanharris", True)[:1023]
    power = np.where(power <= 0, 1e-18, power)
    return 10 * np.log10(power.reshape(3, 341, -1)), power.reshape(3, 341, -1)


def test_esresnet_matches_independent_numpy():
    x = _clip(5 * 44100)
    out = SpectrogramTransformer().fit_transform(x[None])
    assert out.shape == (1, 3, 341, 394) and out.dtype == np.float32
    expected, power = _numpy_esresnet(x)
    within_80db = power >= power.max() * 1e-8
    assert within_80db.mean() > 0.5  # the comparison covers most bins
    err = np.abs(out[0] - expected)[within_80db]
    assert err.max() <= 0.01, err.max()


def test_esresnet_band_order_and_stereo_channels():
    sr, n = 44100, 44100
    t = np.arange(n) / sr
    low = np.sin(2 * np.pi * 500 * t).astype(np.float32)  # bin 23: band 0
    high = np.sin(2 * np.pi * 18000 * t).astype(np.float32)  # bin 836: band 2
    spec = SpectrogramTransformer().fit_transform(np.stack([low, high])[None])
    assert spec.shape == (1, 6, 341, 79)
    energy = spec[0].mean(axis=(1, 2))
    assert np.argmax(energy[:3]) == 0  # audio channel 0's bands first, lowest band first
    assert np.argmax(energy[3:]) == 2
    mono = SpectrogramTransformer().fit_transform(high[None])
    np.testing.assert_allclose(spec[0, 3:], mono[0], atol=1e-4)


def test_esresnet_zero_power_floor():
    out = esresnet_spectrogram(torch.zeros(1, 4096))
    assert torch.all(out == -180.0)


def test_power_spectrogram_matches_numpy():
    x = _clip(8000, sr=8000, seed=1)
    ours = power_spectrogram(
        torch.from_numpy(x).double(), n_fft=256, hop_length=64, win_length=200, window="hann"
    ).numpy()
    np.testing.assert_allclose(
        ours, _numpy_power(x, 256, 64, 200, "hann", False), rtol=1e-9, atol=1e-9
    )
    st = SpectrogramTransformer("power", n_fft=256, hop_length=64, device="cpu")
    assert st.fit_transform(np.stack([x, x])).shape == (2, 1, 129, 126)


def _slaney_filters_loop(sr, n_fft, n_mels, fmin, fmax):
    """The Slaney filterbank written from its definition, one filter at a time."""

    def to_mel(f):
        return f / (200 / 3) if f < 1000 else 15 + 27 * np.log(f / 1000) / np.log(6.4)

    def to_hz(m):
        return m * 200 / 3 if m < 15 else 1000 * 6.4 ** ((m - 15) / 27)

    step = (to_mel(fmax) - to_mel(fmin)) / (n_mels + 1)
    edges = [to_hz(to_mel(fmin) + k * step) for k in range(n_mels + 2)]
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    out = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        for j, f in enumerate(freqs):
            if lo < f <= mid:
                out[i, j] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                out[i, j] = (hi - f) / (hi - mid)
        out[i] *= 2 / (hi - lo)
    return out


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax",
    [
        (22050, 2048, 128, 0.0, None),
        (16000, 512, 40, 50.0, 7000.0),
        (44100, 1024, 64, 20.0, 16000.0),
    ],
)
def test_mel_filterbank_matches_definition(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    ref = _slaney_filters_loop(sr, n_fft, n_mels, fmin, sr / 2 if fmax is None else fmax)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_mel_scale_round_trip_and_anchor_points():
    f = np.array([0.0, 200.0, 1000.0, 6400.0, 20000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(hz_to_mel([1000.0, 6400.0]), [15.0, 42.0])


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = _clip(22050, sr=22050)
    ours = SpectrogramTransformer(
        "log_mel", sample_rate=22050, n_mels=64, f_min=30.0, f_max=10000.0
    ).fit_transform(x[None])[0, 0]
    mel = librosa.feature.melspectrogram(
        y=x.astype(np.float64),
        sr=22050,
        n_fft=2048,
        hop_length=512,
        n_mels=64,
        fmin=30.0,
        fmax=10000.0,
        power=2.0,
        pad_mode="reflect",
    )
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_log_mel_matches_numpy_definition():
    x = _clip(16000, sr=16000, seed=3)
    ours = log_mel_spectrogram(
        torch.from_numpy(x).double(), 16000, n_fft=512, hop_length=128, n_mels=40
    ).numpy()
    power = _numpy_power(x, 512, 128, 512, "hann", False)
    ref = 10 * np.log10(
        np.maximum(_slaney_filters_loop(16000, 512, 40, 0.0, 8000.0) @ power, 1e-10)
    )
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_transformer_batches_equal_whole():
    X = np.stack([_clip(22050, seed=s) for s in range(5)])
    whole = SpectrogramTransformer(batch_size=5).fit_transform(X)
    batched = SpectrogramTransformer(batch_size=2).fit_transform(X)
    np.testing.assert_array_equal(whole, batched)
    st = SpectrogramTransformer(batch_size=2).fit(X)
    assert st.output_shape_ == whole.shape[1:]


@pytest.mark.parametrize(
    "params, X, match",
    [
        ({}, np.zeros((2, 1000)), "fewer than n_fft=2048"),
        ({"kind": "cqt"}, np.zeros((2, 4096)), "kind"),
        ({"n_fft": 256, "win_length": 512}, np.zeros((2, 4096)), r"win_length=512 must not"),
        (
            {"kind": "esresnet", "n_fft": 256},
            np.zeros((2, 4096)),
            r"win_length=\d+ \(the esresnet default\) must not exceed n_fft=256; set both",
        ),
        ({"window": "no-such-window"}, np.zeros((2, 4096)), "window"),
        ({"kind": "log_mel", "sample_rate": 8000, "f_max": 6000.0}, np.zeros((2, 4096)), "f_max"),
        ({"hop_length": 0}, np.zeros((2, 4096)), "hop_length"),
        ({"n_mels": True}, np.zeros((2, 4096)), "'n_mels' parameter .* a number, not True"),
        ({"device": "tpu9"}, np.zeros((2, 4096)), "device"),
        ({}, np.zeros((2, 1, 1, 4096)), "dimensions"),
        ({}, np.full((2, 4096), np.nan), "NaN"),
    ],
)
def test_transformer_bad_input(params, X, match):
    with pytest.raises(ValueError, match=match):
        SpectrogramTransformer(**params).fit(X)


def test_transformer_rejects_other_length_and_unfitted():
    st = SpectrogramTransformer("power", n_fft=64)
    with pytest.raises(Exception, match="not fitted"):
        st.transform(np.zeros((1, 256)))
    st.fit(np.zeros((2, 256)))
    with pytest.raises(ValueError, match="256 features"):
        st.transform(np.zeros((2, 300)))


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_temporal_statistics():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(4, 2, 5, 30)).astype(np.float32)
    out = TemporalStatistics(stats=("mean", "std", "max")).fit_transform(S)
    assert out.shape == (4, 30)
    np.testing.assert_allclose(out[:, :10], S.mean(-1).reshape(4, -1), rtol=1e-5)
    np.testing.assert_allclose(out[:, 20:], S.max(-1).reshape(4, -1))
    with pytest.raises(ValueError, match="stats"):
        TemporalStatistics(stats=("median",)).fit(S)
    flat = TemporalStatistics().fit_transform(S[:, 0, 0])  # (n, n_frames): one band
    np.testing.assert_allclose(flat[:, 0], S[:, 0, 0].mean(-1), rtol=1e-5)
    names = TemporalStatistics(stats=("mean", "max")).fit(S).get_feature_names_out()
    assert len(names) == 20 and names[0] == "mean0" and names[10] == "max0"
    assert TemporalStatistics().fit(S[:, 0, 0]).get_feature_names_out().tolist() == [
        "mean0",
        "std0",
    ]
    fitted = TemporalStatistics().fit(S)  # input_features are checked as in sklearn
    assert len(fitted.get_feature_names_out(["left", "right"])) == 20
    with pytest.raises(ValueError, match=r"number of features \(2\), got 1"):
        fitted.get_feature_names_out(["left"])
    with pytest.raises(ValueError, match="1-d sequence of names, got 'abc'"):
        fitted.get_feature_names_out("abc")
    with pytest.raises(ValueError, match="distinct"):
        TemporalStatistics(stats=("mean", "mean")).fit(S)


def test_temporal_statistics_refuses_other_bands_but_not_other_lengths():
    S = np.random.default_rng(0).normal(size=(4, 1, 20, 30)).astype(np.float32)
    stats = TemporalStatistics().fit(S)
    assert stats.transform(S[..., :12]).shape == (4, 40)  # fewer frames: the same columns
    with pytest.raises(ValueError, match=r"\(1, 10\) bands per clip.*fitted on \(1, 20\)"):
        stats.transform(S[:, :, :10])


def test_transformer_refuses_a_device_the_machine_lacks():
    X = np.zeros((2, 4000), dtype=np.float32)
    with pytest.raises(ValueError, match="device='gpu' is not a torch device"):
        SpectrogramTransformer("log_mel", n_mels=16, device="gpu").fit(X)
    if not torch.cuda.is_available():  # at fit, not at the first transform
        with pytest.raises(ValueError, match="device='cuda', but this machine has no cuda"):
            SpectrogramTransformer("log_mel", n_mels=16, device="cuda").fit(X)


def test_frame_sequences_windows_and_order():
    from sklaudio.features import frame_sequences

    S = torch.arange(2 * 3 * 20, dtype=torch.float32).reshape(2, 3, 20)
    seq = frame_sequences(S, frame_steps=8, hop_steps=2, sequence_length=4)
    # frames start at 0, 2, ..., 12 (7 frames) → 4 sequences of 4 frames
    assert seq.shape == (2, 4, 4, 3, 8)
    torch.testing.assert_close(seq[1, 2, 3], S[1, :, 10:18])  # sequence 2, frame 3 starts at 10
    torch.testing.assert_close(seq[0, 0, 0], S[0, :, 0:8])


def test_frame_sequences_short_clips():
    from sklaudio.features import frame_sequences

    S = torch.zeros(1, 3, 10) - 5.0
    S[..., 0] = -80.0
    with pytest.raises(ValueError, match="short='pad'"):
        frame_sequences(S, frame_steps=8, hop_steps=2)
    padded = frame_sequences(S, frame_steps=8, hop_steps=2, short="pad")
    assert padded.shape == (1, 1, 4, 3, 8)
    assert padded[0, 0, -1, 0, -1] == -80.0  # padded with the clip's minimum
    with pytest.raises(ValueError, match="short"):
        frame_sequences(S, 8, 2, short="drop")
    with pytest.raises(ValueError, match="hop_steps"):
        frame_sequences(S, 8, 0)


def test_mel_bands_between_fft_bins_are_warned_about():
    X = np.zeros((1, 48000), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"13 of the n_mels=128 mel bands .* lower n_mels"):
        SpectrogramTransformer("log_mel", sample_rate=48000, n_fft=512, n_mels=128).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SpectrogramTransformer("log_mel", sample_rate=48000, n_fft=2048, n_mels=128).fit(X)


def test_a_pipeline_of_audio_steps_takes_set_output():
    from sklearn.pipeline import make_pipeline

    from sklaudio.io import AudioReader

    pipe = make_pipeline(
        AudioReader(sample_rate=8000, duration=0.5),
        SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, n_mels=16),
        TemporalStatistics(),
    )
    assert pipe.set_output(transform="default") is pipe  # sklearn refused it before
    X = np.random.default_rng(0).normal(size=(4, 4000)).astype(np.float32)
    assert pipe.fit_transform(X).shape == (4, 32)
    with pytest.raises(ValueError, match="transform must be"):
        pipe[0].set_output(transform="excel")
    pd = pytest.importorskip("pandas")
    assert isinstance(pipe.set_output(transform="pandas").fit_transform(X), pd.DataFrame)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: power_spectrogram(x, 256, 0), "hop_length must be a positive integer, got 0"),
        (lambda x: power_spectrogram(x, 256.0, 64), "n_fft must be a positive integer"),
        (lambda x: log_mel_spectrogram(x, 16000, n_mels=0), "n_mels must be a positive integer"),
        (lambda x: log_mel_spectrogram(x, 16000, amin=0), "amin must be a number > 0"),
        (lambda x: esresnet_spectrogram(x, 512, 128, 400, n_bands=0), "n_bands must be"),
        (lambda x: esresnet_spectrogram(x, 512, 128, 400, n_bands=300), "exceeds the 257 bins"),
    ],
)
def test_functional_spectrograms_name_a_bad_size(call, match):
    # (they gave empty outputs, -inf, a ZeroDivisionError or torch's unfold error)
    with pytest.raises(ValueError, match=match):
        call(torch.randn(2, 4000))


def test_transformer_names_one_output_channel_per_name_and_a_pipeline_names_its_columns():
    import sklearn
    from sklearn.pipeline import make_pipeline

    from sklaudio.io import AudioReader

    stereo = np.stack([_clip(4096, seed=s).reshape(2, 2048) for s in range(3)])
    st = SpectrogramTransformer("esresnet", n_fft=256, hop_length=128, win_length=200).fit(stereo)
    names = st.get_feature_names_out()
    assert len(names) == st.transform(stereo).shape[1] == 6  # 3 bands per audio channel
    assert names[0] == "spectrogramtransformer_channel0" and names.dtype == object
    assert len(st.get_feature_names_out(["left", "right"])) == 6  # n_features_in_ channels
    with pytest.raises(ValueError, match="input_features should have length equal"):
        st.get_feature_names_out(["left"])
    with pytest.raises(Exception, match="not fitted"):
        SpectrogramTransformer().get_feature_names_out()
    pipe = make_pipeline(
        AudioReader(sample_rate=8000, duration=0.25),
        SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=8),
        TemporalStatistics(),
    )
    X = np.stack([_clip(2000, sr=8000, seed=s) for s in range(4)])
    out = pipe.fit_transform(X)
    np.testing.assert_array_equal(
        pipe.get_feature_names_out(), pipe[-1].get_feature_names_out()
    )  # (each step checks the names of the step before: AudioReader's did not exist)
    assert len(pipe.get_feature_names_out()) == out.shape[1]
    with sklearn.config_context(transform_output="pandas"):  # (no table to make of them)
        assert isinstance(pipe[:2].fit_transform(X), np.ndarray)


def test_a_read_only_array_or_a_pandas_3_frame_gives_no_torch_warning():
    # pandas 3's copy-on-write hands out read-only arrays; torch.from_numpy warned "The
    # given NumPy array is not writable" (in fit and for every batch of transform)
    X = np.stack([_clip(2048, sr=8000, seed=s) for s in range(3)])
    expected = SpectrogramTransformer(
        "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=8
    ).fit(X)
    expected = expected.transform(X)
    frozen = X.copy()
    frozen.flags.writeable = False
    inputs = [frozen]
    try:
        import pandas as pd

        inputs.append(pd.DataFrame(X, columns=[f"s{i}" for i in range(X.shape[1])]))
    except ImportError:
        pass
    for data in inputs:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="The given NumPy array is not writable")
            st = SpectrogramTransformer(
                "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=8
            )
            np.testing.assert_array_equal(st.fit(data).transform(data), expected)
    assert not frozen.flags.writeable  # (not made writable behind the user's back)

"""Cutting long recordings into clips (segment_recordings) and pooling back (pool_segments)."""

import numpy as np
import pytest
import soundfile as sf
from sklearn.model_selection import GroupKFold, PredefinedSplit, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from sklaudio.features import SpectrogramTransformer, TemporalStatistics
from sklaudio.io import AudioReader, pool_segments, segment_recordings


def test_waveforms_of_different_lengths_are_cut_in_time_order():
    rec = [np.arange(30, dtype=np.float32), np.arange(25, dtype=np.float32) + 100]
    seg = segment_recordings(rec, sample_rate=10, duration=1.0)
    assert seg.data.shape == (6, 10) and seg.data.dtype == np.float32
    assert seg.groups.tolist() == [0, 0, 0, 1, 1, 1]
    assert seg.start.tolist() == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    np.testing.assert_array_equal(seg.data[:3].ravel(), rec[0])
    np.testing.assert_array_equal(seg.data[5, :5], rec[1][20:])
    assert not seg.data[5, 5:].any()  # the tail, padded with silence at its end
    assert "filenames" not in seg and seg.skipped == [] and seg.sample_rate == 10


@pytest.mark.parametrize(
    "length, hop, tail, starts",
    [
        (30, 0.5, "pad", [0, 5, 10, 15, 20]),  # ends exactly on a window: nothing to pad
        (27, 0.5, "pad", [0, 5, 10, 15, 20]),  # the last window holds 7 of 10 samples
        (27, 0.5, "drop", [0, 5, 10, 15]),
        (27, None, "drop", [0, 10]),
        (7, None, "drop", [0]),  # shorter than one clip: always one, padded
        (10, 0.3, "pad", [0]),
    ],
)
def test_overlap_and_tail(length, hop, tail, starts):
    wave = np.arange(1, length + 1, dtype=np.float32)
    seg = segment_recordings([wave], sample_rate=10, duration=1.0, hop=hop, tail=tail)
    assert (seg.start * 10).round().astype(int).tolist() == starts
    for clip, s in zip(seg.data, starts):
        piece = wave[s : s + 10]
        np.testing.assert_array_equal(clip[: len(piece)], piece)
        assert not clip[len(piece) :].any()
    covered = set()
    for s in starts:
        covered |= set(range(s, min(s + 10, length)))
    assert (covered == set(range(length))) == (tail == "pad" or length <= 10 or length == 30)


def test_files_are_resampled_and_named(tmp_path):
    t = np.arange(48000 * 5 // 2) / 48000
    a = tmp_path / "a.wav"
    sf.write(a, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 48000)
    b = tmp_path / "b.flac"
    sf.write(b, np.zeros((16000 * 3, 2), dtype=np.float32) + 0.25, 16000)
    seg = segment_recordings([a, str(b)], sample_rate=16000, duration=1.0, n_jobs=2)
    assert seg.groups.tolist() == [0, 0, 0, 1, 1, 1]
    assert seg.filenames.tolist() == [str(a)] * 3 + [str(b)] * 3
    spectrum = np.abs(np.fft.rfft(seg.data[1]))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz per bin: the tone stays at 1 kHz
    np.testing.assert_allclose(seg.data[3:], 0.25)  # stereo averaged into one channel
    # the same samples as AudioReader's clip of the whole file
    whole = AudioReader(sample_rate=16000).transform([a])[0]
    np.testing.assert_allclose(seg.data[:2].ravel(), whole[:32000], atol=1e-6)


def test_channels_kept_and_mismatch_names_the_file(tmp_path):
    a = tmp_path / "stereo.wav"
    sf.write(a, np.zeros((800, 2), dtype=np.float32), 400)
    seg = segment_recordings([a], sample_rate=400, duration=1.0, mono=False)
    assert seg.data.shape == (2, 2, 400)
    b = tmp_path / "mono.wav"
    sf.write(b, np.zeros(800, dtype=np.float32), 400)
    with pytest.raises(ValueError, match=r"numbers of channels \(1 in '.*mono.wav', 2 in"):
        segment_recordings([a, b], sample_rate=400, duration=1.0, mono=False)


def test_unreadable_files_raise_or_are_skipped_and_reported(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.ones(300, dtype=np.float32) * 0.1, 100)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="bad.wav"):
        segment_recordings([bad, good], sample_rate=100, duration=1.0)
    with pytest.warns(UserWarning, match=r"skipped 1 of 2 .*\n  \[0\] .*bad.wav"):
        seg = segment_recordings([bad, good], sample_rate=100, duration=1.0, on_error="skip")
    assert seg.groups.tolist() == [1, 1, 1]  # indices into X, so y[seg.groups] still lines up
    assert [i for i, _, _ in seg.skipped] == [0] and seg.skipped[0][1] == str(bad)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no audio file"):
        segment_recordings([bad], sample_rate=100, duration=1.0, on_error="skip")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"duration": 0}, "duration must be a positive"),
        ({"duration": 1.0, "hop": 2.0}, "hop must be between"),
        ({"duration": 1.0, "hop": 0.0}, "hop must be a positive"),
        ({"duration": 1.0, "tail": "keep"}, "tail must be 'pad' or 'drop'"),
        ({"duration": 1.0, "on_error": "ignore"}, "on_error must be"),
        ({"duration": 1.0, "sample_rate": 16000.5}, "sample_rate must be a positive integer"),
        ({"duration": 1e-6}, "less than one sample"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        segment_recordings([np.zeros(100)], **{"sample_rate": 100, **kwargs})


@pytest.mark.parametrize(
    "X, match",
    [
        ([np.zeros(10), np.array([0.0, np.nan])], "recording 1 contains NaN"),
        ([np.zeros(10), np.zeros(0)], "recording 1 must be a non-empty"),
        ([np.zeros((2, 2, 2))], "recording 0 must be a non-empty 1-d"),
        (np.zeros(10), "got a 1-d array"),
        ([], "empty sequence"),
        ([np.zeros((48000, 2))], r"recording 0 of shape \(48000, 2\) would be 48000 channels"),
        ([np.full(25, 1e20)], "recording 0 reaches 1e"),
        (np.zeros((0, 100)), "got 0 of them"),
    ],
)
def test_bad_recordings_are_named(X, match):
    with pytest.raises(ValueError, match=match):
        segment_recordings(X, sample_rate=10, duration=1.0)


def test_int16_recordings_are_scaled_like_their_files():
    seg = segment_recordings([np.full(20, 16384, dtype=np.int16)], sample_rate=10, duration=1.0)
    np.testing.assert_allclose(seg.data, 0.5)


def test_pool_segments_mean_and_max():
    values = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]], dtype=np.float32)
    pooled, rec = pool_segments(values, [4, 4, 2])
    assert rec.tolist() == [2, 4] and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, [[0.2, 0.8], [0.6, 0.4]])
    pooled, _ = pool_segments(values, [4, 4, 2], how="max")
    np.testing.assert_allclose(pooled, [[0.2, 0.8], [0.9, 0.7]])
    with pytest.raises(ValueError, match="one row per clip"):
        pool_segments(values, [0, 1])
    with pytest.raises(ValueError, match="how must be"):
        pool_segments(values, [0, 0, 1], how="median")


def test_clips_of_a_recording_stay_in_one_fold():
    """The workflow of the docs: cut, classify per clip with folds indexed by groups, pool."""
    rng = np.random.default_rng(0)
    sr = 4000
    recordings, y = [], []
    for i in range(12):
        f = (300, 1200)[i % 2]
        t = np.arange(int(sr * rng.uniform(2.2, 3.5))) / sr
        recordings.append(np.sin(2 * np.pi * f * t) + 0.1 * rng.normal(size=t.size))
        y.append(("low", "high")[i % 2])
    y, folds = np.array(y), np.arange(12) % 3
    seg = segment_recordings(recordings, sample_rate=sr, duration=1.0, hop=0.5, tail="drop")
    pipe = make_pipeline(
        SpectrogramTransformer("log_mel", sample_rate=sr, n_fft=256, hop_length=128, n_mels=16),
        TemporalStatistics(),
        KNeighborsClassifier(n_neighbors=3),
    )
    cv = PredefinedSplit(folds[seg.groups])
    for train, test in cv.split(seg.data):
        assert not set(seg.groups[train]) & set(seg.groups[test])
    assert cross_val_score(pipe, seg.data, y[seg.groups], cv=cv).mean() == 1.0
    scores = cross_val_score(
        pipe, seg.data, y[seg.groups], groups=seg.groups, cv=GroupKFold(n_splits=3)
    )
    assert scores.mean() == 1.0
    pipe.fit(seg.data, y[seg.groups])
    proba, rec = pool_segments(pipe.predict_proba(seg.data), seg.groups)
    assert rec.tolist() == list(range(12))
    assert (pipe.classes_[proba.argmax(axis=1)] == y).all()


def test_an_object_array_of_recordings_is_a_list_of_them():
    X = np.empty(2, dtype=object)
    X[0], X[1] = np.ones(30, np.float32), np.ones(12, np.float32)
    seg = segment_recordings(X, sample_rate=10, duration=1.0)
    assert seg.groups.tolist() == [0, 0, 0, 1, 1]

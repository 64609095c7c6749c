"""Streaming: estimators that read audio files per batch (frontend = [AudioReader, spectrogram])."""

import os

import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import make_pipeline
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from sklaudio import persist
from sklaudio.classifiers import FineTunedClassifier
from sklaudio.datasets import make_sounds
from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioFileDataset, AudioReader

SR, DURATION = 8000, 0.5


def _spectrogram():
    return SpectrogramTransformer("log_mel", sample_rate=SR, n_mels=32, n_fft=256, hop_length=64)


def _frontend(**reader):
    return make_pipeline(AudioReader(sample_rate=SR, duration=DURATION, **reader), _spectrogram())


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sounds")
    return make_sounds(
        n_samples=32,
        n_classes=2,
        sample_rate=SR,
        duration=DURATION,
        random_state=0,
        directory=directory,
    )


def _npid(frontend, **kwargs):
    return NPIDEmbedder(
        embedding_dim=8,
        nce_k=4,
        max_epochs=2,
        batch_size=8,
        random_state=0,
        frontend=frontend,
        **kwargs,
    )


def test_streaming_fit_equals_fitting_on_decoded_waveforms(sounds):
    paths = sounds.filenames
    streamed = _npid(_frontend(), iterator_train__num_workers=2, iterator_valid__num_workers=2).fit(
        paths
    )
    waves = AudioReader(sample_rate=SR, duration=DURATION).fit_transform(paths)
    in_memory = _npid(_spectrogram()).fit(waves)
    assert streamed.input_shape_ == (int(SR * DURATION),)
    assert not hasattr(streamed, "n_features_in_")  # paths have no feature axis
    np.testing.assert_array_equal(streamed.transform(paths), in_memory.transform(waves))
    np.testing.assert_array_equal(
        streamed.memory_bank_.memory.numpy(), in_memory.memory_bank_.memory.numpy()
    )


def _fit_streaming_with_loader_workers(paths):
    emb = _npid(_frontend(), iterator_train__num_workers=1)
    return emb.set_params(iterator_valid__num_workers=1).fit_transform(paths)


def test_loader_workers_start_inside_a_joblib_worker(sounds):
    # cross_val_score(n_jobs=2) fits in loky workers, whose default start method a
    # DataLoader could not use ('Process' object has no attribute 'env')
    from joblib import Parallel, delayed

    (in_worker,) = Parallel(n_jobs=2)(
        delayed(_fit_streaming_with_loader_workers)(sounds.filenames) for _ in range(1)
    )
    # the worker runs torch on fewer threads (loky shares the cores out): float rounding
    here = _fit_streaming_with_loader_workers(sounds.filenames)
    assert in_worker.shape == here.shape == (len(sounds.filenames), 8)
    np.testing.assert_allclose(in_worker, here, atol=0.02)


def test_loader_context_outside_and_inside_loky(monkeypatch):
    import multiprocessing

    from sklaudio.embedders import _loader_context

    assert _loader_context() is None  # torch's default outside joblib
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "loky")
    monkeypatch.setattr("sys.platform", "darwin")
    context = _loader_context()
    assert context.get_start_method() == "loky" and hasattr(context, "Process")
    emb = _npid(_frontend(), iterator_train__num_workers=2)
    assert emb.get_params_for("iterator_train")["multiprocessing_context"] is context
    assert "multiprocessing_context" not in emb.get_params()  # not stored as a parameter
    # 'spawn' (or forkserver) set by the user cannot start there either: loky's context does
    for method in ("spawn", "forkserver", multiprocessing.get_context("spawn")):
        emb.set_params(iterator_train__multiprocessing_context=method)
        params = emb.get_params_for("iterator_train")
        assert params["multiprocessing_context"].get_start_method() == "loky"
    emb.set_params(iterator_train__multiprocessing_context="fork")  # works there: kept
    assert emb.get_params_for("iterator_train")["multiprocessing_context"] == "fork"


def test_classifier_streams_with_the_embedders_frontend_and_a_validation_fold(sounds):
    paths, labels = sounds.filenames, np.asarray(sounds.target_names)[sounds.target]
    npid = _npid(_frontend()).fit(paths)
    clf = FineTunedClassifier(
        embedder=npid,
        max_epochs=2,
        batch_size=8,
        random_state=0,
        train_split=predefined_split(Dataset(paths[:8], labels[:8])),
    ).fit(paths[8:], labels[8:])
    assert len(clf.history_[:, "valid_acc"]) == 2
    assert set(clf.predict(paths[:5])) <= set(labels)
    assert clf.predict_proba(paths).shape == (32, 2)


def test_streaming_model_saves_and_loads(sounds, tmp_path):
    npid = _npid(_frontend()).fit(sounds.filenames)
    persist.save(npid, tmp_path / "npid.pt")
    loaded = persist.load(tmp_path / "npid.pt")
    np.testing.assert_array_equal(
        loaded.transform(sounds.filenames), npid.transform(sounds.filenames)
    )


def test_streaming_refuses_arrays_and_names_unreadable_files(sounds, tmp_path):
    npid = _npid(_frontend())
    with pytest.raises(ValueError, match="1-d array of audio file paths"):
        npid.fit(np.zeros((10, 4000), dtype=np.float32))
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav")
    paths = np.array([*sounds.filenames[:20], str(bad)], dtype=object)
    with pytest.raises(Exception, match="broken.wav"):
        npid.fit(paths)


@pytest.mark.parametrize(
    ("reader", "match"),
    [
        (dict(duration=None), "duration"),
        (dict(on_error="skip"), "cannot drop files"),
    ],
)
def test_streaming_reader_settings_are_checked(sounds, reader, match):
    frontend = make_pipeline(
        AudioReader(**{"sample_rate": SR, "duration": DURATION, **reader}), _spectrogram()
    )
    with pytest.raises(ValueError, match=match):
        _npid(frontend).fit(sounds.filenames)


def test_frontend_pipeline_must_be_reader_then_spectrogram(sounds):
    frontend = make_pipeline(_spectrogram(), AudioReader(sample_rate=SR, duration=DURATION))
    with pytest.raises(ValueError, match=r"\[AudioReader, SpectrogramTransformer\]"):
        _npid(frontend).fit(sounds.filenames)


def test_afp_streams_whole_clips_and_matches_decoded_waveforms(sounds):
    afp_params = dict(
        frame_duration=0.128,
        code_channels=8,
        widths=(4, 4),
        mse_epochs=1,
        pair_epochs=1,
        batch_size=18,
        random_state=0,
    )
    waves = AudioReader(sample_rate=SR, duration=DURATION).fit_transform(sounds.filenames)
    streamed = AFPPairLossEmbedder(frontend=_frontend(), **afp_params).fit(sounds.filenames)
    in_memory = AFPPairLossEmbedder(frontend=_spectrogram(), **afp_params).fit(waves)
    assert streamed.frame_steps_ == in_memory.frame_steps_ == 16  # the frontend's hop is read
    # 63 frames: sequences of 16 + 3 * 4 steps, starting every 4 steps
    assert streamed.sequences_per_clip_ == in_memory.sequences_per_clip_ == 9
    # 2 clips of 9 sequences per step (batch_size=18): 16 steps per epoch
    assert streamed.history_[0, "train_batch_count"] == 16
    assert "pair" in streamed.history_[-1]["batches"][-1]
    Z = streamed.transform(sounds.filenames)
    assert Z.shape == (32, 8)
    np.testing.assert_allclose(Z.sum(axis=1), 1, rtol=1e-5)
    # the same trained weights embed the decoded waveforms identically
    in_memory.module_.load_state_dict(streamed.module_.state_dict())
    np.testing.assert_allclose(in_memory.transform(waves), Z, rtol=1e-5, atol=1e-7)


def test_audio_file_dataset_names_a_clip_of_another_shape(tmp_path):
    mono, stereo = tmp_path / "mono.wav", tmp_path / "stereo.wav"
    sf.write(mono, np.zeros(SR // 2, dtype=np.float32), SR)
    sf.write(stereo, np.zeros((SR // 2, 2), dtype=np.float32), SR)
    reader = AudioReader(sample_rate=SR, duration=DURATION, mono=False)
    data = AudioFileDataset([mono, stereo], reader, y=[0, 1], shape=(1, SR // 2))
    wave, target = data[0]
    assert tuple(wave.shape) == (1, SR // 2) and target == 0
    with pytest.raises(ValueError, match="stereo.wav"):
        data[1]
    with pytest.raises(ValueError, match="2 paths but 1 targets"):
        AudioFileDataset([mono, stereo], reader, y=[0])


def test_bytes_paths_are_read_like_str_paths(sounds):
    as_bytes = np.array([os.fsencode(p) for p in sounds.filenames], dtype=object)
    npid = _npid(_frontend()).fit(as_bytes)
    np.testing.assert_array_equal(
        npid.transform(as_bytes), _npid(_frontend()).fit(sounds.filenames).transform(as_bytes)
    )


def test_a_frontend_whose_two_steps_disagree_on_the_rate_is_refused(sounds):
    from sklearn.pipeline import make_pipeline

    from sklaudio.features import SpectrogramTransformer

    front = make_pipeline(
        AudioReader(sample_rate=SR, duration=DURATION),
        SpectrogramTransformer("log_mel", sample_rate=2 * SR, n_fft=256, hop_length=128),
    )
    with pytest.raises(ValueError, match=rf"sample_rate={SR} Hz, but its SpectrogramTrans"):
        _npid(front).fit(sounds.filenames)


def test_an_esresnet_frontend_at_44100_is_not_refused_for_its_unused_sample_rate(sounds):
    """sample_rate is read by the log-mel kind only: the documented
    make_pipeline(AudioReader(sample_rate=44100), SpectrogramTransformer("esresnet"))
    leaves it at its default."""
    from sklearn.pipeline import make_pipeline

    from sklaudio.features import SpectrogramTransformer

    front = make_pipeline(
        AudioReader(sample_rate=SR, duration=DURATION),
        SpectrogramTransformer("power", n_fft=256, hop_length=128),  # sample_rate: 22050
    )
    assert _npid(front).fit(sounds.filenames).transform(sounds.filenames).shape[1] == 8

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from sklaudio.datasets import make_sounds
from sklaudio.embedders import AFPPairLossEmbedder
from sklaudio.features import SpectrogramTransformer

TINY = dict(
    frame_duration=0.4,
    sample_rate=400,
    hop_length=20,
    code_channels=8,
    widths=(4, 4),
    mse_epochs=1,
    pair_epochs=1,
    batch_size=4,
    random_state=0,
)


@pytest.fixture(scope="module")
def spectrograms():
    return np.random.default_rng(0).normal(size=(8, 1, 16, 40)).astype(np.float32)


def test_two_phases_and_distribution_output(spectrograms):
    afp = AFPPairLossEmbedder(**TINY).fit(spectrograms)
    assert (afp.frame_steps_, afp.hop_steps_) == (8, 2)
    assert len(afp.history_) == 2
    assert "pair" not in afp.history_[0]["batches"][0]  # phase 1: MSE only
    assert "pair" in afp.history_[1]["batches"][0]  # phase 2: MSE + pair loss
    # epoch averages of the phase-2 diagnostics, absent from phase 1
    assert "pair" not in afp.history_[0] and "pair_similar" not in afp.history_[0]
    assert afp.history_[-1, "pair"] >= 0 and 0 <= afp.history_[-1, "pair_similar"] <= 1
    Z = afp.transform(spectrograms)
    assert Z.shape == (8, 8) and Z.dtype == np.float32
    np.testing.assert_allclose(Z.sum(axis=1), 1, atol=1e-5)  # mean of distributions
    code = clone(afp).set_params(output="code").fit(spectrograms).transform(spectrograms)
    assert not np.allclose(code.sum(axis=1), 1)
    # the read-out is chosen at transform time: the same fit gives either
    np.testing.assert_allclose(afp.set_params(output="code").transform(spectrograms), code)
    assert afp.get_feature_names_out().tolist() == [
        f"afppairlossembedder_code{i}" for i in range(8)
    ]
    with pytest.raises(ValueError, match="output must be 'distribution' or 'code'"):
        afp.set_params(output="stats").transform(spectrograms)


def test_training_sequences_are_a_view_of_the_spectrograms_not_a_copy(spectrograms, tmp_path):
    # four overlapping frames per sequence at a quarter-frame hop: a copy would hold every
    # spectrogram step ~16 times (1 GB of 30 s scenes -> 16 GB)
    afp = AFPPairLossEmbedder(**TINY).fit(spectrograms)
    dataset, clips = afp._sequences(spectrograms)
    n_seq = afp.sequences_per_clip_
    assert len(dataset) == len(clips) == 8 * n_seq and n_seq > 1
    base = dataset.sequences
    assert base.untyped_storage().data_ptr() == spectrograms.ctypes.data  # shares memory
    x, y = dataset[n_seq + 1]  # clip 1, its second sequence
    for f in range(4):  # its frames start 2 steps later each (frame 8 steps, hop 2)
        np.testing.assert_array_equal(x[f].numpy(), spectrograms[1, 0, :, 2 + 2 * f : 10 + 2 * f])
    assert y == 0.0
    np.testing.assert_array_equal(dataset[n_seq : n_seq + 2][1].numpy(), x.numpy())
    # a read-only memory map trains and embeds without torch's not-writable warning
    np.save(tmp_path / "x.npy", spectrograms)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = AFPPairLossEmbedder(**TINY).fit(mapped).transform(mapped)
    np.testing.assert_array_equal(Z, afp.transform(spectrograms))


def test_clips_of_another_length_than_fit_are_embedded(spectrograms):
    # a clip's vector is the mean over its sequences, however many it holds (one spans 14
    # steps here; fit's clips have 40)
    afp = AFPPairLossEmbedder(**TINY).fit(spectrograms)
    longer = np.concatenate([spectrograms, spectrograms[::-1]], axis=-1)
    for X in (longer, spectrograms[..., :14]):
        Z = afp.transform(X)
        assert Z.shape == (8, 8)
        np.testing.assert_allclose(Z.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(afp.transform(longer[:, :, :, :40]), afp.transform(spectrograms))
    with pytest.raises(ValueError, match=r"shape \(1, 12, 40\) per clip, but .* \(1, 16, 40\)"):
        afp.transform(spectrograms[:, :, :12])  # other mel bands: another model's input
    short = AFPPairLossEmbedder(**TINY, short="raise").fit(spectrograms)
    with pytest.raises(ValueError, match="short"):
        short.transform(spectrograms[..., :10])


def test_without_pair_loss_trains_mse_only(spectrograms):
    afp = AFPPairLossEmbedder(**{**TINY, "pair_loss": False}).fit(spectrograms)
    assert len(afp.history_) == 2
    assert all("pair" not in b for epoch in afp.history_ for b in epoch["batches"])


def test_seeded_and_picklable(spectrograms):
    a = AFPPairLossEmbedder(**TINY).fit(spectrograms).transform(spectrograms)
    fitted = AFPPairLossEmbedder(**TINY).fit(spectrograms)
    np.testing.assert_array_equal(a, fitted.transform(spectrograms))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(spectrograms), a)


def test_frontend_on_waveforms():
    sounds = make_sounds(
        n_samples=6, n_classes=2, sample_rate=8000, duration=1.0, n_folds=2, random_state=0
    )
    front = SpectrogramTransformer(
        "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=16
    )
    afp = AFPPairLossEmbedder(**{**TINY, "frame_duration": 0.32}, frontend=front)
    Z = afp.fit(sounds.data).transform(sounds.data)
    assert afp.frame_steps_ == 20 and Z.shape == (6, 8)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"threshold": 0}, "threshold"),
        ({"margin": -1.0}, "margin"),
        ({"n_context": 0}, "n_context"),
        ({"output": "logits"}, "output"),
        ({"short": "drop"}, "short"),
        ({"hop_length": 0}, "hop_length must be a positive integer"),
        ({"sample_rate": -1}, "sample_rate must be a positive number"),
        ({"widths": (4,)}, "widths must be 2 positive integers"),
        ({"pair_loss": "no"}, "pair_loss must be True or False, got 'no'"),
        ({"verbose": "x"}, "verbose must be an integer >= 0"),
        ({"n_context": True}, "n_context must be an integer >= 1, got True"),
        ({"code_channels": True}, "code_channels must be a positive integer, got True"),
        ({"lr": None}, "lr must be a number >= 0, got None"),
    ],
)
def test_bad_params(spectrograms, params, match):
    with pytest.raises(ValueError, match=match):
        AFPPairLossEmbedder(**{**TINY, **params}).fit(spectrograms)


def test_set_params_of_a_skorch_argument_it_sets_itself_says_why():
    with pytest.raises(TypeError, match="does not take max_epochs=: it trains mse_epochs"):
        AFPPairLossEmbedder().set_params(max_epochs=5)


def test_sample_weight_is_refused_by_name(spectrograms):
    with pytest.raises(TypeError, match="AFPPairLossEmbedder does not support sample_weight"):
        AFPPairLossEmbedder(**TINY).fit(spectrograms, sample_weight=np.ones(len(spectrograms)))


def test_short_clips_refused_or_padded(spectrograms):
    short = spectrograms[..., :10]  # one sequence needs 8 + 3·2 = 14 steps
    with pytest.raises(ValueError, match="a shorter frame_duration, or short='pad'"):
        AFPPairLossEmbedder(**{**TINY, "short": "raise"}).fit(short)
    with pytest.warns(UserWarning, match=r"10 spectrogram steps.*spans 14 steps.*padded"):
        padded = AFPPairLossEmbedder(**TINY).fit(short)
    assert padded.transform(short).shape == (8, 8)


def test_nan_and_stereo_rejected(spectrograms):
    bad = spectrograms.copy()
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        AFPPairLossEmbedder(**TINY).fit(bad)
    with pytest.raises(ValueError, match="mono"):
        AFPPairLossEmbedder(**TINY).fit(np.concatenate([spectrograms, spectrograms], axis=1))


def test_verbose_table_reprints_header_when_phase_two_adds_columns(spectrograms, capsys):
    AFPPairLossEmbedder(**{**TINY, "verbose": 2}).fit(spectrograms)
    headers = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert len(headers) == 2
    assert "pair_similar" not in headers[0] and "pair_similar" in headers[1]


def test_progress_bar_names_the_phase_and_counts_batches_of_a_slow_epoch(
    spectrograms, capsys, monkeypatch
):
    import sys
    import time

    from skorch.callbacks import Callback

    class Slow(Callback):  # the first two batches of each epoch take 0.3 s
        def on_epoch_begin(self, net, **kwargs):
            self.batches = 0

        def on_batch_end(self, net, **kwargs):
            self.batches += 1
            if self.batches <= 2:
                time.sleep(0.3)

    params = {**TINY, "mse_epochs": 1, "pair_epochs": 1, "verbose": 1}
    AFPPairLossEmbedder(**params).fit(spectrograms[:8])  # into a log: a line per epoch here
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("AFPPairLossEmbedder (MSE): epoch 1/2, loss=")
    assert lines[1].startswith("AFPPairLossEmbedder (MSE + pair loss): epoch 2/2, loss=")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # a terminal
    AFPPairLossEmbedder(**params, callbacks=[("slow", Slow())]).fit(spectrograms[:8])
    bar = capsys.readouterr().err
    assert "AFPPairLossEmbedder (MSE)" in bar and "AFPPairLossEmbedder (MSE + pair loss)" in bar
    assert "batch=" in bar  # drawn within an epoch, not only at its end

"""Resumable training: checkpoint= on the embedders (TrainingCheckpoint)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklaudio import AFPPairLossEmbedder, NPIDEmbedder
from sklaudio.callbacks import CHECKPOINT_FILE

NPID = dict(embedding_dim=8, nce_k=4, max_epochs=4, batch_size=6, random_state=0)
AFP = dict(
    frame_duration=0.4,
    sample_rate=400,
    hop_length=20,
    code_channels=8,
    widths=(4, 4),
    mse_epochs=2,
    pair_epochs=2,
    batch_size=4,
    random_state=0,
)


class Crash(Callback):
    """Stands for a crash: raises after ``after`` epochs (skorch swallows KeyboardInterrupt)."""

    def __init__(self, after):
        self.after = after

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.after:
            raise RuntimeError("crash")


class Probe(Callback):
    """Records what a fit starts from."""

    def on_train_begin(self, net, **kwargs):
        self.epochs_done_ = len(net.history)
        bank = getattr(net, "memory_bank_", None)
        self.bank_ = None if bank is None else bank.memory.clone()


@pytest.fixture(scope="module")
def spectrograms():
    return np.random.default_rng(0).normal(size=(18, 1, 16, 24)).astype(np.float32)


def _interrupted_then_resumed(cls, params, X, directory, after):
    with pytest.raises(RuntimeError, match="crash"):
        cls(**params, checkpoint=directory, callbacks=[("crash", Crash(after))]).fit(X)
    saved = torch.load(directory / CHECKPOINT_FILE, weights_only=True)
    probe = Probe()
    resumed = cls(**params, checkpoint=directory, callbacks=[("probe", probe)]).fit(X)
    return saved, probe, resumed


def test_npid_resumes_where_it_stopped(spectrograms, tmp_path):
    saved, probe, resumed = _interrupted_then_resumed(
        NPIDEmbedder, NPID, spectrograms, tmp_path, after=2
    )
    assert saved["epoch"] == 2 and probe.epochs_done_ == 2
    torch.testing.assert_close(probe.bank_, saved["modules"]["memory_bank"]["memory"])
    assert len(resumed.history_) == 4
    reference = NPIDEmbedder(**NPID).fit(spectrograms)
    np.testing.assert_array_equal(
        resumed.transform(spectrograms), reference.transform(spectrograms)
    )
    np.testing.assert_array_equal(
        resumed.memory_bank_.memory.numpy(), reference.memory_bank_.memory.numpy()
    )
    # the learning-rate schedule continued rather than restarted
    assert resumed.history_[:, "lr"] == pytest.approx(reference.history_[:, "lr"])


@pytest.mark.parametrize("after", [1, 3])  # in the MSE phase, and in the pair-loss phase
def test_afp_resumes_in_the_right_phase(spectrograms, tmp_path, after):
    X = np.random.default_rng(1).normal(size=(6, 1, 16, 40)).astype(np.float32)
    saved, probe, resumed = _interrupted_then_resumed(AFPPairLossEmbedder, AFP, X, tmp_path, after)
    assert saved["epoch"] == after and probe.epochs_done_ == after
    reference = AFPPairLossEmbedder(**AFP).fit(X)
    assert ["pair" in row["batches"][0] for row in resumed.history_] == [False, False, True, True]
    np.testing.assert_array_equal(resumed.transform(X), reference.transform(X))


def test_finished_checkpoint_trains_no_more(spectrograms, tmp_path):
    first = NPIDEmbedder(**NPID, checkpoint=tmp_path).fit(spectrograms)
    probe = Probe()
    again = NPIDEmbedder(**NPID, checkpoint=tmp_path, callbacks=[("probe", probe)])
    again.fit(spectrograms)
    assert probe.epochs_done_ == 4 and len(again.history_) == 4
    np.testing.assert_array_equal(again.transform(spectrograms), first.transform(spectrograms))


def test_checkpoint_of_another_run_is_refused(spectrograms, tmp_path):
    NPIDEmbedder(**{**NPID, "max_epochs": 1}, checkpoint=tmp_path).fit(spectrograms)
    with pytest.raises(
        ValueError, match="another run: it trained on other clips; inside cross_val_score"
    ):
        NPIDEmbedder(**{**NPID, "max_epochs": 1}, checkpoint=tmp_path).fit(spectrograms + 1)
    with pytest.raises(ValueError, match=r"nce_t=0.4 \(now 0.2\) differ\. Pass another"):
        NPIDEmbedder(**{**NPID, "max_epochs": 1, "nce_t": 0.2}, checkpoint=tmp_path).fit(
            spectrograms
        )
    with pytest.raises(ValueError, match=r"it trained on \d+ clips of shape \(.*\), these are"):
        NPIDEmbedder(**{**NPID, "max_epochs": 1}, checkpoint=tmp_path).fit(spectrograms[:-1])
    # a finished run is not extended by more epochs (its schedule spans max_epochs)
    with pytest.raises(ValueError, match=r"max_epochs=1 \(now 2\) differ \(to train .* partial"):
        NPIDEmbedder(**{**NPID, "max_epochs": 2}, checkpoint=tmp_path).fit(spectrograms)
    with pytest.raises(ValueError, match="its estimator was NPIDEmbedder, now AFPPairLossEmbedder"):
        AFPPairLossEmbedder(**AFP, checkpoint=tmp_path).fit(spectrograms)
    # verbosity and the device may change between the two runs
    NPIDEmbedder(**{**NPID, "max_epochs": 1}, checkpoint=tmp_path, verbose=2, device="cpu").fit(
        spectrograms
    )


def test_corrupt_checkpoint_and_stale_temporary_files(spectrograms, tmp_path):
    (tmp_path / f".{CHECKPOINT_FILE}.abc.tmp").write_bytes(b"half written")
    NPIDEmbedder(**{**NPID, "max_epochs": 1}, checkpoint=tmp_path).fit(spectrograms)
    assert sorted(os.listdir(tmp_path)) == [CHECKPOINT_FILE]
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="training checkpoint"):
        NPIDEmbedder(**{**NPID, "max_epochs": 1}, checkpoint=tmp_path).fit(spectrograms)


_TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from skorch.callbacks import Callback
    from sklaudio import NPIDEmbedder

    class Slow(Callback):
        # keeps each epoch long enough for the test to kill the process inside one
        def on_batch_end(self, net, **kwargs):
            time.sleep(0.15)

    X = np.load(sys.argv[1])
    params = dict(embedding_dim=8, nce_k=4, max_epochs=6, batch_size=6, random_state=0)
    NPIDEmbedder(**params, checkpoint=sys.argv[2], callbacks=[("slow", Slow())]).fit(X)
    print("finished")
    """
)


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(spectrograms, tmp_path):
    np.save(tmp_path / "X.npy", spectrograms)
    (tmp_path / "train.py").write_text(_TRAIN_SCRIPT)
    directory = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "X.npy"), str(directory)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        epoch = 0
        while epoch < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
            if (directory / CHECKPOINT_FILE).exists():
                epoch = torch.load(directory / CHECKPOINT_FILE, weights_only=True)["epoch"]
        time.sleep(0.2)  # inside the next epoch (3 batches of 0.15 s each)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(directory / CHECKPOINT_FILE, weights_only=True)
    assert 2 <= saved["epoch"] < 6

    probe = Probe()
    params = dict(NPID, max_epochs=6)
    resumed = NPIDEmbedder(**params, checkpoint=directory, callbacks=[("probe", probe)])
    resumed.fit(spectrograms)
    assert probe.epochs_done_ == saved["epoch"]
    torch.testing.assert_close(probe.bank_, saved["modules"]["memory_bank"]["memory"])
    assert len(resumed.history_) == 6

    reference = NPIDEmbedder(**params).fit(spectrograms)
    # Same seeds, generator states and float32 kernels on the CPU: bit-identical.
    np.testing.assert_array_equal(
        resumed.transform(spectrograms), reference.transform(spectrograms)
    )


def test_checkpoint_parameter_is_validated(spectrograms):
    with pytest.raises(ValueError, match="checkpoint must be None or a directory path, got 3"):
        NPIDEmbedder(**NPID, checkpoint=3).fit(spectrograms)


def test_checkpoint_of_an_older_sklaudio_says_so():
    import json

    from sklaudio.embedders import _fingerprint_difference

    base = {"estimator": "FineTunedClassifier", "shape": [4], "data_crc32": 1, "params": {}}
    now = json.dumps({**base, "labels_crc32": 7})
    assert "older sklaudio (no labels_crc32)" in _fingerprint_difference(json.dumps(base), now)
    other = json.dumps({**base, "labels_crc32": 8})
    assert _fingerprint_difference(other, now) == "it trained on other labels"


def test_a_streamed_checkpoint_is_refused_once_its_files_changed(tmp_path):
    # with paths, the data a checkpoint belongs to are the files as they were on disk
    from sklearn.pipeline import make_pipeline

    from sklaudio.datasets import make_sounds
    from sklaudio.features import SpectrogramTransformer
    from sklaudio.io import AudioReader

    sounds = make_sounds(
        n_samples=12,
        n_classes=2,
        sample_rate=8000,
        duration=0.25,
        random_state=0,
        directory=tmp_path / "audio",
    )
    frontend = make_pipeline(
        AudioReader(sample_rate=8000, duration=0.25),
        SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, n_mels=16),
    )
    params = dict(NPID, max_epochs=1, frontend=frontend, checkpoint=tmp_path / "ck")
    NPIDEmbedder(**params).fit(sounds.filenames)
    NPIDEmbedder(**params).fit(sounds.filenames)  # the same files: resumes
    first = sounds.filenames[0]
    os.utime(first, ns=(0, os.stat(first).st_mtime_ns + 10**9))  # rewritten a second later
    with pytest.raises(ValueError, match="another run: its files changed on disk"):
        NPIDEmbedder(**params).fit(sounds.filenames)


def test_progress_bar_of_a_resumed_fit_ends_at_max_epochs(spectrograms, tmp_path, capsys):
    with pytest.raises(RuntimeError, match="crash"):
        NPIDEmbedder(**NPID, checkpoint=tmp_path, callbacks=[("crash", Crash(2))]).fit(spectrograms)
    capsys.readouterr()
    NPIDEmbedder(**NPID, checkpoint=tmp_path, verbose=1).fit(spectrograms)
    bar = capsys.readouterr().err
    assert "4/4" in bar and "/6" not in bar  # 2 epochs from the checkpoint + 2 left

"""Training through Hugging Face accelerate (skorch's AccelerateMixin), on the CPU.

One process in this interpreter, and two processes (gloo) started by ``torchrun`` as
``accelerate launch`` would: the memory bank must stay identical across processes.
"""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from test_afp_embedder import TINY as TINY_AFP

from sklaudio.classifiers import FineTunedClassifier
from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder
from sklaudio.nn import MemoryBank

accelerate = pytest.importorskip("accelerate")


@pytest.fixture
def accelerator():
    from accelerate.state import AcceleratorState, GradientState

    yield accelerate.Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _tiny_npid(**params):
    return NPIDEmbedder(embedding_dim=8, nce_k=4, batch_size=8, random_state=0, **params)


def _initial_bank(n, dim, seed):
    """The memory bank NPIDEmbedder starts from (its initialize_module: seed + 4)."""
    generator = torch.Generator().manual_seed(seed + 4)
    return MemoryBank(n, dim, generator=generator).memory.numpy()


def _spectrograms(n=24, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 1, 16, 24)).astype(np.float32)


def test_npid_with_an_accelerator_trains_and_embeds(accelerator):
    X = _spectrograms()
    npid = _tiny_npid(max_epochs=3, accelerator=accelerator)
    npid.fit(X)
    assert npid.get_params()["accelerator"] is accelerator  # the parameter is untouched
    assert len(npid.history_) == 3 and np.isfinite(npid.history_[:, "train_loss"]).all()
    assert not npid._wrapped_with_accelerator  # unwrapped after training
    Z = npid.transform(X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    # every clip's bank row moved away from its random unit initialisation
    initial = _initial_bank(len(X), 8, npid.seed_)
    assert not np.isclose(npid.memory_bank_.memory.numpy(), initial).all(axis=1).any()
    npid.partial_fit(X)  # wraps the modules again for the extra epochs
    assert len(npid.history_) == 6


def test_afp_and_classifier_with_an_accelerator(accelerator):
    S = _spectrograms(8, seed=1)
    afp = AFPPairLossEmbedder(**TINY_AFP, accelerator=accelerator).fit(S)
    assert "pair" in afp.history_[-1]["batches"][-1] and afp.transform(S).shape == (8, 8)
    y = np.array(["a", "b"] * 12)
    X = _spectrograms()
    clf = FineTunedClassifier(max_epochs=2, batch_size=8, random_state=0, accelerator=accelerator)
    assert clf.fit(X, y).predict(X).shape == (24,)


class _FailOnce(Callback):
    """Fails the first epoch it sees."""

    failed = False

    def on_epoch_end(self, net, **kwargs):
        if not _FailOnce.failed:
            _FailOnce.failed = True
            raise RuntimeError("interrupted")


def test_a_fit_after_a_failed_one_is_prepared_again(accelerator):
    from accelerate.optimizer import AcceleratedOptimizer

    X = _spectrograms()
    npid = _tiny_npid(max_epochs=2, accelerator=accelerator, callbacks=[("fail", _FailOnce())])
    with pytest.raises(RuntimeError, match="interrupted"):
        npid.fit(X)
    npid.fit(X)  # new modules and optimizer: they must be prepared, not skipped
    assert isinstance(npid.optimizer_, AcceleratedOptimizer)


def test_an_accelerator_set_after_loading_prepares_the_optimizer(accelerator, tmp_path):
    from accelerate.optimizer import AcceleratedOptimizer

    from sklaudio import persist

    X = _spectrograms()
    persist.save(_tiny_npid(max_epochs=1).fit(X), tmp_path / "m.pt")
    npid = persist.load(tmp_path / "m.pt").set_params(accelerator=accelerator)
    npid.partial_fit(X)
    assert isinstance(npid.optimizer_, AcceleratedOptimizer)
    assert len(npid.history_) == 2


def test_saving_an_estimator_with_an_accelerator_says_how(accelerator, tmp_path):
    from sklaudio import persist

    npid = _tiny_npid(max_epochs=1, accelerator=accelerator).fit(_spectrograms())
    with pytest.raises(TypeError, match="accelerator"):
        persist.save(npid, tmp_path / "m.pt")
    persist.save(npid.set_params(accelerator=None), tmp_path / "m.pt")
    assert persist.load(tmp_path / "m.pt").transform(_spectrograms()).shape == (24, 8)


TWO_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    from accelerate import Accelerator
    from sklaudio.nn import MemoryBank
    from sklaudio.classifiers import FineTunedClassifier
    from sklaudio.embedders import NPIDEmbedder

    accelerator = Accelerator(cpu=True)
    X = np.random.default_rng(0).normal(size=(40, 1, 16, 24)).astype(np.float32)
    # random_state=None: the processes must agree on a seed by themselves
    npid = NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=3, batch_size=4,
                        accelerator=accelerator).fit(X)
    bank = npid.memory_bank_.memory.numpy()
    weights = npid.module_.projection.weight.detach().numpy()
    Z = npid.transform(X)
    y = np.array(["a", "b"] * 20)
    clf = FineTunedClassifier(embedder=npid, max_epochs=1, batch_size=4,
                              accelerator=accelerator).fit(X, y)
    head = clf.module_.head.weight.detach().numpy()
    initial = MemoryBank(40, 8, generator=torch.Generator().manual_seed(npid.seed_ + 4))
    # AFP streaming files (written by the test): every process embeds every clip
    from sklearn.pipeline import make_pipeline
    from sklaudio.embedders import AFPPairLossEmbedder
    from sklaudio.features import SpectrogramTransformer
    from sklaudio.io import AudioReader, list_audio_files
    paths = list_audio_files(sys.argv[1] + "/sounds")
    frontend = make_pipeline(
        AudioReader(sample_rate=8000, duration=0.5),
        SpectrogramTransformer("log_mel", sample_rate=8000, n_mels=32, n_fft=256, hop_length=64),
    )
    afp = AFPPairLossEmbedder(frame_duration=0.128, code_channels=8, widths=(4, 4),
                              mse_epochs=1, pair_epochs=1, batch_size=18, frontend=frontend,
                              accelerator=accelerator).fit(paths)
    np.savez(sys.argv[1] + f"/rank{accelerator.process_index}.npz", bank=bank,
             weights=weights, Z=Z, head=head, z=float(npid.memory_bank_.nce_z),
             initial=initial.memory.numpy(), afp=afp.transform(paths))
    print(json.dumps({"rank": accelerator.process_index, "n": accelerator.num_processes}))
    """
)


@pytest.mark.slow
def test_two_processes_keep_one_memory_bank(tmp_path):
    from sklaudio.datasets import make_sounds

    script = tmp_path / "train.py"
    script.write_text(TWO_PROCESS_SCRIPT)
    make_sounds(
        n_samples=12,
        n_classes=2,
        sample_rate=8000,
        duration=0.5,
        random_state=0,
        directory=tmp_path / "sounds",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the two processes share stdout, so their lines can run together: find each object
    found = re.findall(r'\{"rank": \d+, "n": \d+\}', result.stdout)
    ranks = sorted(json.loads(text)["rank"] for text in found)
    assert ranks == [0, 1]
    r0, r1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    # Gathered updates: both processes hold the same bank, and every clip's row moved
    # although each process saw only half of every epoch.
    np.testing.assert_array_equal(r0["bank"], r1["bank"])
    assert not np.isclose(r0["bank"], r0["initial"]).all(axis=1).any()
    assert float(r0["z"]) == float(r1["z"]) > 0
    np.testing.assert_array_equal(r0["weights"], r1["weights"])  # DDP kept the weights equal
    np.testing.assert_array_equal(r0["head"], r1["head"])
    np.testing.assert_allclose(r0["Z"], r1["Z"], rtol=1e-6, atol=1e-6)
    assert r0["Z"].shape == (40, 8)
    # streamed AFP: each process embedded all 12 clips, in order, with the same weights
    assert r0["afp"].shape == r1["afp"].shape == (12, 8)
    np.testing.assert_allclose(r0["afp"], r1["afp"], rtol=1e-6, atol=1e-7)

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, PredefinedSplit, cross_val_score
from sklearn.pipeline import Pipeline

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.datasets import make_sounds
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader

TINY = dict(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=8, random_state=0)


@pytest.fixture(scope="module")
def spectrograms():
    return np.random.default_rng(0).normal(size=(24, 1, 16, 24)).astype(np.float32)


@pytest.fixture(scope="module")
def sounds():
    return make_sounds(
        n_samples=30, n_classes=3, sample_rate=8000, duration=0.5, n_folds=3, random_state=0
    )


def test_fit_transform_unit_vectors_and_memory_bank(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    Z = emb.transform(spectrograms)
    assert Z.shape == (24, 8) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    assert emb.memory_bank_.memory.shape == (24, 8)
    assert float(emb.memory_bank_.nce_z) > 0
    assert len(emb.history_) == 2 and "train_loss" in emb.history_[-1]


def test_same_random_state_same_embedding_and_augment_off_at_transform(spectrograms):
    a = NPIDEmbedder(**TINY).fit(spectrograms)
    b = NPIDEmbedder(**TINY).fit(spectrograms)
    np.testing.assert_array_equal(a.transform(spectrograms), b.transform(spectrograms))
    np.testing.assert_array_equal(a.transform(spectrograms), a.transform(spectrograms))
    c = NPIDEmbedder(**{**TINY, "random_state": 1}).fit(spectrograms)
    assert not np.allclose(a.transform(spectrograms), c.transform(spectrograms))


def test_training_lowers_the_loss(spectrograms):
    emb = NPIDEmbedder(**{**TINY, "max_epochs": 15, "loss": "softmax", "lr": 3e-3}).fit(
        spectrograms
    )
    losses = emb.history_[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_read_only_memory_map_trains_without_a_copy_warning(spectrograms, tmp_path):
    # np.load(mmap_mode='r') and joblib's memmaps in workers are read-only: torch warned
    # "not writable ... undefined behavior" on every batch
    from sklaudio.classifiers import FineTunedClassifier

    np.save(tmp_path / "x.npy", spectrograms)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    labels = np.arange(len(spectrograms)) % 2
    labels.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = NPIDEmbedder(**TINY).fit(mapped).transform(mapped)
        FineTunedClassifier(backbone="esresnet_tiny", max_epochs=1, batch_size=8).fit(
            mapped, labels
        )
    np.testing.assert_array_equal(Z, NPIDEmbedder(**TINY).fit(spectrograms).transform(spectrograms))


def test_frontend_on_waveforms(sounds):
    front = SpectrogramTransformer(
        "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=16
    )
    emb = NPIDEmbedder(frontend=front, **TINY).fit(sounds.data)
    assert emb.transform(sounds.data[:5]).shape == (5, 8)
    esr = SpectrogramTransformer("esresnet", n_fft=256, hop_length=128, win_length=200)
    emb = NPIDEmbedder(frontend=esr, **TINY).fit(sounds.data)
    assert emb.module_.backbone.in_channels == 3


def test_pickle_and_joblib_round_trip(spectrograms, tmp_path):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    expected = emb.transform(spectrograms)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(emb)).transform(spectrograms), expected)
    joblib.dump(emb, tmp_path / "emb.joblib")
    loaded = joblib.load(tmp_path / "emb.joblib")
    np.testing.assert_array_equal(loaded.transform(spectrograms), expected)
    assert loaded.device == "auto"


def test_cuda_saved_model_loads_on_cpu(spectrograms):
    """A model pickled with device='cuda' maps its tensors to the CPU when CUDA is absent."""
    emb = NPIDEmbedder(**{**TINY, "device": "cpu"}).fit(spectrograms)
    expected = emb.transform(spectrograms)
    emb.device = "cuda"  # as if trained on a GPU machine
    blob = pickle.dumps(emb)
    if torch.cuda.is_available():
        pytest.skip("only meaningful without CUDA")
    with pytest.warns(Warning, match="cuda") as record:
        loaded = pickle.loads(blob)
    assert len(record) == 1  # (skorch said it twice)
    assert str(loaded.device) == "cpu"
    np.testing.assert_allclose(loaded.transform(spectrograms), expected, atol=1e-6)


def test_fixed_skorch_arguments_are_refused_not_dropped():
    from sklaudio.classifiers import FineTunedClassifier
    from sklaudio.embedders import AFPPairLossEmbedder

    with pytest.raises(TypeError, match="does not take train_split=.*every clip"):
        NPIDEmbedder(train_split=None)
    with pytest.raises(TypeError, match="does not take max_epochs=.*mse_epochs . pair_epochs"):
        AFPPairLossEmbedder(max_epochs=50)
    with pytest.raises(TypeError, match="does not take classes=.*classes_"):
        FineTunedClassifier(classes=[0, 1])
    with pytest.raises(TypeError, match="does not take module="):
        NPIDEmbedder(module=torch.nn.Linear)


def test_npid_augmentation_shifts_frequencies_fine_tuning_does_not(spectrograms):
    from sklaudio.classifiers import FineTunedClassifier

    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    assert emb.module_.augment.max_freq_shift == 0.1
    y = np.arange(len(spectrograms)) % 2
    clf = FineTunedClassifier(embedder=emb, max_epochs=1, batch_size=8, random_state=0)
    assert clf.fit(spectrograms, y).module_.encoder.augment.max_freq_shift == 0.0
    assert NPIDEmbedder(**{**TINY, "augment": False}).fit(spectrograms).module_.augment is None
    # a dict changes some settings and keeps the others
    emb = NPIDEmbedder(**{**TINY, "augment": {"max_freq_shift": 0, "gain_db": 3.0}})
    augment = emb.fit(spectrograms).module_.augment
    assert (augment.max_freq_shift, augment.gain_db, augment.n_time_masks) == (0, 3.0, 2)
    assert clone(emb).get_params()["augment"] == {"max_freq_shift": 0, "gain_db": 3.0}
    emb.set_params(augment={"max_freq_shift": 0.2})  # on the fitted net, at once
    assert emb.module_.augment.max_freq_shift == 0.2
    for bad, match in [
        ({"max_freq_shif": 0}, r"unknown setting.*'max_freq_shif'.*did you mean 'max_freq_shift'"),
        ({"max_freq_shift": 2}, "augment: max_freq_shift must be in"),
        ({"seed": 1}, "unknown setting.*'seed'"),
        ("yes", "augment must be True, False or a dict"),
    ]:
        with pytest.raises(ValueError, match=match):
            NPIDEmbedder(**{**TINY, "augment": bad}).fit(spectrograms)
    with pytest.raises(ValueError, match="augment: max_freq_shift must be in"):
        emb.set_params(augment={"max_freq_shift": 2})
    assert emb.augment == {"max_freq_shift": 0.2}  # refused: the estimator stays as it was
    probe = FineTunedClassifier(embedder=emb, augment={"max_freq_shift": 0.1}, max_epochs=1)
    assert probe.fit(spectrograms, y).module_.encoder.augment.max_freq_shift == 0.1


def test_none_is_refused_naming_the_estimator():
    from sklaudio.classifiers import FineTunedClassifier
    from sklaudio.embedders import AFPPairLossEmbedder

    for est in (NPIDEmbedder(), AFPPairLossEmbedder(), FineTunedClassifier()):
        with pytest.raises(ValueError, match=f"X is None, but {type(est).__name__} takes"):
            est.fit(None, None if not isinstance(est, FineTunedClassifier) else [0, 1])


@pytest.mark.parametrize(
    "key, closest",
    [
        ("embeding_dim", "embedding_dim"),
        ("nce_tt", "nce_t"),
        ("frontnd__n_mels", "frontend__"),
        ("iterator_train_shuffle", "iterator_train__shuffle"),
        ("optimizer_weight_decay", "optimizer__weight_decay"),
    ],
)
def test_misspelled_parameters_are_refused_when_given(key, closest):
    """A typo fails where it is made, naming the closest parameter (skorch kept it until
    fit, and a grid search only failed in its fits)."""
    from sklaudio.classifiers import FineTunedClassifier
    from sklaudio.embedders import AFPPairLossEmbedder

    for cls in (NPIDEmbedder, AFPPairLossEmbedder, FineTunedClassifier):
        if key == "embeding_dim" and cls is not NPIDEmbedder:
            continue
        if key == "nce_tt" and cls is not NPIDEmbedder:
            continue
        with pytest.raises(TypeError, match=f"argument '{key}' .did you mean '{closest}'"):
            cls(**{key: 1})
        with pytest.raises(ValueError, match=f"Invalid parameter '{key}' .*'{closest}'"):
            cls().set_params(**{key: 1})
    # no hint towards a parameter the estimator refuses anyway
    with pytest.raises(TypeError, match="'clases'") as info:
        FineTunedClassifier(clases=[0, 1])
    assert "did you mean 'classes'" not in str(info.value)
    # what skorch and sklearn name with a double underscore still works
    est = NPIDEmbedder(optimizer__weight_decay=0.1, iterator_train__num_workers=0)
    assert est.get_params()["optimizer__weight_decay"] == 0.1
    assert clone(est).get_params()["iterator_train__num_workers"] == 0


def test_subclass_with_kwargs_keeps_its_parents_parameters():
    """A subclass written the skorch way, ``__init__(self, extra=1, **kwargs)``, still takes
    its parents' parameters by name in ``set_params`` and ``clone`` (they are not in its own
    signature), and still refuses a misspelled one."""
    from sklaudio.classifiers import FineTunedClassifier
    from sklaudio.embedders import AFPPairLossEmbedder

    for parent, name, value in (
        (NPIDEmbedder, "nce_t", 0.2),
        (AFPPairLossEmbedder, "threshold", 0.2),
        (FineTunedClassifier, "head_lr", 0.01),
    ):

        class Custom(parent):
            def __init__(self, extra=1, **kwargs):
                super().__init__(**kwargs)
                self.extra = extra

        est = Custom(extra=2).set_params(**{name: value, "optimizer__weight_decay": 0.1})
        copy = clone(est)
        assert (copy.extra, getattr(copy, name), copy.optimizer__weight_decay) == (2, value, 0.1)
        with pytest.raises(ValueError, match="Invalid parameter 'extar'.*'extra'"):
            est.set_params(extar=3)
        with pytest.raises(ValueError, match=f"Invalid parameter '{name}x'"):
            est.set_params(**{name + "x": 3})


def test_data_loader_arguments_can_be_set_on_a_fitted_net(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    expected = emb.transform(spectrograms)
    # skorch 1.4's own set_params raises "Something went wrong" on a fitted net here
    emb.set_params(iterator_valid__num_workers=0, iterator_valid__batch_size=5, nce_t=0.3)
    assert emb.get_params()["iterator_valid__batch_size"] == 5 and emb.nce_t == 0.3
    seen = []
    original = emb.get_iterator

    def spy(dataset, training=False):
        iterator = original(dataset, training=training)
        seen.append(iterator.batch_size)
        return iterator

    emb.get_iterator = spy
    np.testing.assert_allclose(emb.transform(spectrograms), expected, atol=1e-6)
    assert seen == [5]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        emb.set_params(iterator_valid__nope=1).transform(spectrograms)


def test_unavailable_or_unknown_device_is_a_clear_error(spectrograms):
    with pytest.raises(ValueError, match="device='gpu' is not a torch device"):
        NPIDEmbedder(**TINY, device="gpu").fit(spectrograms)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda', but this machine has no cuda"):
            NPIDEmbedder(**TINY, device="cuda").fit(spectrograms)


@pytest.mark.parametrize(
    "frontend, match",
    [
        (SpectrogramTransformer("mel", n_fft=256), "'kind' parameter"),
        (SpectrogramTransformer("power", n_fft=256, hop_length=0), "'hop_length' parameter"),
        (SpectrogramTransformer("esresnet", n_fft=256), "win_length=1654"),
    ],
)
def test_a_frontend_is_checked_at_fit_whatever_its_kind(frontend, match):
    waves = np.zeros((12, 2000), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        NPIDEmbedder(**TINY, frontend=frontend).fit(waves)


def test_paths_given_to_a_model_without_an_audio_reader_are_named(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    with pytest.raises(ValueError, match="X holds audio file paths.*reads spectrograms"):
        emb.transform(["a.wav", "b.wav"])


def test_feature_names_of_an_unknown_read_out_are_refused(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms).set_params(output="bogus")
    with pytest.raises(ValueError, match="output must be"):
        emb.get_feature_names_out()


def test_skorch_entry_points_resolve_the_auto_device(spectrograms):
    # device='auto' is ours: skorch's own API must not hand it to torch
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    assert emb.device == "auto"
    batch = (torch.from_numpy(spectrograms[:8]), torch.arange(8))
    assert np.isfinite(emb.train_step(batch)["loss"].item())
    assert emb.evaluation_step(batch).shape == (8, 8)
    assert emb.forward(spectrograms).shape == (24, 8)
    assert emb.infer(batch[0]).shape == (8, 8)
    assert np.isfinite(emb.validation_step(batch)["loss"].item())
    batches = emb.forward_iter(spectrograms)
    next(batches)
    assert emb.get_params()["device"] == "auto"  # also between two batches
    assert emb.device == "auto"  # the parameter is left as given
    # torch tensors are data, not paths
    assert emb.transform(torch.from_numpy(spectrograms)).shape == (24, 8)


def test_a_cuda_index_the_machine_lacks_is_a_clear_error(spectrograms, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"device='cuda:5', but this machine has 2 CUDA devices"):
        NPIDEmbedder(**TINY, device="cuda:5").fit(spectrograms)


def test_partial_fit_refuses_other_clips(spectrograms, tmp_path):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    emb.partial_fit(spectrograms)  # the same clips: fine
    with pytest.raises(ValueError, match="other clips than fit"):
        emb.partial_fit(spectrograms[::-1])
    from sklaudio.persist import load, save  # the check survives a model file

    save(emb, tmp_path / "npid.pt")
    with pytest.raises(ValueError, match="other clips than fit"):
        load(tmp_path / "npid.pt").partial_fit(spectrograms[::-1])


def test_warm_start_continues_the_encoder_and_gives_other_clips_a_new_bank(spectrograms):
    emb = NPIDEmbedder(**TINY, warm_start=True).fit(spectrograms)
    weights = [p.detach().clone() for p in emb.module_.parameters()]
    bank = emb.memory_bank_
    emb.fit(spectrograms)  # the same clips: the same bank, trained on
    assert emb.memory_bank_ is bank and len(emb.history_) == 2 * TINY["max_epochs"]
    others = spectrograms[:13] + 1
    emb.fit(others)
    assert emb.memory_bank_ is not bank and emb.memory_bank_.n_samples == 13
    assert len(emb.history_) == 3 * TINY["max_epochs"]
    moved = [not torch.equal(a, b) for a, b in zip(weights, emb.module_.parameters())]
    assert any(moved)
    # the encoder continued: a cold fit on the same clips gives another model
    cold = NPIDEmbedder(**TINY).fit(others)
    assert not np.allclose(cold.transform(others), emb.transform(others))
    emb.partial_fit(others)  # fit's clips are now the new ones
    with pytest.raises(ValueError, match="other clips than fit"):
        emb.partial_fit(others[::-1])
    with pytest.raises(ValueError, match="shape"):
        emb.fit(spectrograms[:, :, :8])


def test_warm_start_with_a_checkpoint_trains_on_and_keeps_writing_it(spectrograms, tmp_path):
    emb = NPIDEmbedder(**TINY, warm_start=True, checkpoint=tmp_path).fit(spectrograms)
    emb.fit(spectrograms)  # the finished checkpoint is not "resumed" into 0 more epochs
    assert len(emb.history_) == 2 * TINY["max_epochs"]
    emb.fit(spectrograms[:13])  # other clips: no "checkpoint of another run" error
    assert len(emb.history_) == 3 * TINY["max_epochs"]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == len(emb.history_)


def test_an_interrupted_fit_warns_instead_of_returning_quietly(spectrograms):
    from skorch.callbacks import Callback

    class CtrlC(Callback):  # what pressing Ctrl-C in the second epoch does
        def on_batch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    emb = NPIDEmbedder(**{**TINY, "max_epochs": 3}, callbacks=[("ctrl_c", CtrlC())])
    with pytest.warns(UserWarning, match="training stopped after 1 of 3 epochs") as caught:
        emb.fit(spectrograms)
    assert emb.transform(spectrograms).shape == (24, 8)  # usable, as skorch leaves it
    # the cut epoch's row (no train_loss) is dropped: history_ holds completed epochs
    assert len(emb.history_) == 1 and len(emb.history_[:, "train_loss"]) == 1
    message = str(caught[0].message)
    assert "not its history row" in message and "partial_fit trains it further" in message
    assert "checkpoint" not in message  # no resume advice without checkpoint=
    # skorch's EarlyStopping also stops with a KeyboardInterrupt, on purpose: no warning
    from skorch.callbacks import EarlyStopping

    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=1e9, threshold_mode="abs")
    emb = NPIDEmbedder(**{**TINY, "max_epochs": 5}, callbacks=[("stop", stop)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        emb.fit(spectrograms)
    assert len(emb.history_) < 5
    # completed epochs are counted by the net itself, not by the epoch timer's column
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        NPIDEmbedder(**TINY, callbacks__epoch_timer=None).fit(spectrograms)


@pytest.mark.parametrize("output", ["embedding", "features", "stats"])
def test_feature_names_follow_the_read_out(spectrograms, output):
    from sklearn.exceptions import NotFittedError as NotFitted

    with pytest.raises(NotFitted):
        NPIDEmbedder(**TINY).get_feature_names_out()
    emb = NPIDEmbedder(**TINY, output=output).fit(spectrograms)
    names = emb.get_feature_names_out()
    assert len(names) == emb.transform(spectrograms).shape[1]
    assert names[0] == f"npidembedder_{output}0" and len(set(names)) == len(names)


def test_set_output_pandas(spectrograms):
    pd = pytest.importorskip("pandas")
    emb = NPIDEmbedder(**TINY).set_output(transform="pandas")
    frame = emb.fit_transform(spectrograms)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(
        emb.get_feature_names_out()
    )


def test_clone_keeps_params():
    emb = NPIDEmbedder(embedding_dim=32, nce_k=7, optimizer__weight_decay=0.1)
    c = clone(emb)
    assert c.embedding_dim == 32 and c.nce_k == 7
    assert c.get_params()["optimizer__weight_decay"] == 0.1


def test_nested_frontend_parameters_reach_the_frontend_in_a_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    from sklaudio.classifiers import WeightedKNeighborsClassifier

    waves = np.random.default_rng(0).normal(size=(24, 2000)).astype(np.float32)
    front = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, n_mels=16)
    emb = NPIDEmbedder(**{**TINY, "max_epochs": 1}, frontend=front)
    emb.set_params(frontend__n_mels=8)
    assert front.n_mels == 8 and emb.get_params()["frontend__n_mels"] == 8
    assert emb.fit(waves).input_shape_ == (2000,) and emb._spectrogram_shape()[1] == 8
    pipe = make_pipeline(emb, WeightedKNeighborsClassifier(3))
    grid = {"npidembedder__frontend__n_mels": [8, 12]}
    search = GridSearchCV(pipe, grid, cv=2, error_score="raise").fit(waves, np.arange(24) % 2)
    assert search.best_estimator_[0].frontend.n_mels in (8, 12)
    searched = search.cv_results_["param_npidembedder__frontend__n_mels"].tolist()
    assert searched == [8, 12] and np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert (
        search.best_estimator_[0].spectrogram_shape_[1]
        == search.best_params_["npidembedder__frontend__n_mels"]
    )  # each candidate trained on its own n_mels
    emb.set_params(frontend__n_mels=12)  # the fitted network was trained on 8 bands
    with pytest.raises(ValueError, match=r"shape \(1, 12, 4\) per clip.*fitted on \(1, 8, 4\)"):
        emb.transform(waves)
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        emb.set_params(frontend__bogus=1)
    with pytest.raises(ValueError, match="cannot set frontend__n_mels: frontend is None"):
        NPIDEmbedder().set_params(frontend__n_mels=8)


@pytest.mark.parametrize(
    "params, X, match",
    [
        ({}, np.zeros((24, 16, 24, 2, 2)), "spectrograms of shape"),
        ({"nce_k": 30}, None, "nce_k=30"),
        ({"backbone": "vgg"}, None, "backbone must be one of"),
        ({"nce_t": 0}, None, "nce_t"),
        ({"loss": "triplet"}, None, "loss"),
        ({"nce_m": 1.5}, None, "nce_m"),
        ({"output": "code"}, None, "output must be 'embedding', 'features' or 'stats'"),
        ({"stats_stages": (0, 2)}, None, "stats_stages"),
        ({"stats_stages": (2, 2)}, None, "stats_stages"),
        ({"stats_stages": ()}, None, "stats_stages"),
        ({"stats_stages": (True, 2)}, None, "stats_stages"),
        ({"stats_stages": "23"}, None, "stats_stages"),
        ({"input_norm": "yes"}, None, "input_norm must be True or False"),
        ({"verbose": -1}, None, "verbose must be an integer >= 0"),
        # True is an int to Python, but embedding_dim=True is a slip: named, not a torch error
        ({"embedding_dim": True}, None, "embedding_dim must be a positive integer, got True"),
        ({"nce_t": True}, None, "nce_t must be a finite number > 0, got True"),
        ({"nce_t": float("inf")}, None, "nce_t must be a finite number > 0, got inf"),
        ({"lr": "x"}, None, "lr must be a number >= 0, got 'x'"),
        ({"lr": -1}, None, "lr must be a number >= 0, got -1"),
        ({"optimizer": "adam"}, None, "optimizer must be a torch optimizer class"),
    ],
)
def test_bad_input(spectrograms, params, X, match):
    X = spectrograms if X is None else X
    with pytest.raises(ValueError, match=match):
        NPIDEmbedder(**{**TINY, **params}).fit(X)


def test_sample_weight_is_refused_by_name(spectrograms):
    with pytest.raises(TypeError, match="NPIDEmbedder does not support sample_weight"):
        NPIDEmbedder(**TINY).fit(spectrograms, sample_weight=np.ones(len(spectrograms)))


def test_nan_unfitted_and_shape_mismatch(spectrograms):
    bad = spectrograms.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NPIDEmbedder(**TINY).fit(bad)
    with pytest.raises(NotFittedError):
        NPIDEmbedder(**TINY).transform(spectrograms)
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    with pytest.raises(ValueError, match="was fitted on"):
        emb.transform(spectrograms[:, :, :8])


def test_softmax_loss_allows_fewer_clips_than_nce_k(spectrograms):
    emb = NPIDEmbedder(**{**TINY, "nce_k": 64, "loss": "softmax"}).fit(spectrograms[:6])
    assert emb.transform(spectrograms[:6]).shape == (6, 8)


def _pipeline(memory=None):
    return Pipeline(
        [
            ("audio", AudioReader(sample_rate=8000, duration=0.5)),
            (
                "spec",
                SpectrogramTransformer(
                    "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=16, device="cpu"
                ),
            ),
            ("npidembedder", NPIDEmbedder(**TINY)),
            ("knn", WeightedKNeighborsClassifier(n_neighbors=3)),
        ],
        memory=memory,
    )


def test_pipeline_cross_val_with_official_folds(sounds):
    scores = cross_val_score(
        _pipeline(), sounds.data, sounds.target, cv=PredefinedSplit(sounds.folds)
    )
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


def test_pretrain_once_then_frozen_in_folds(sounds):
    pre = Pipeline(_pipeline().steps[:3]).fit(sounds.data)  # pooled, unlabelled
    frozen = Pipeline(
        [("embed", FrozenEstimator(pre)), ("knn", WeightedKNeighborsClassifier(n_neighbors=3))]
    )
    before = pre[-1].transform(pre[:-1].transform(sounds.data[:4]))
    cross_val_score(frozen, sounds.data, sounds.target, cv=PredefinedSplit(sounds.folds))
    np.testing.assert_array_equal(pre[-1].transform(pre[:-1].transform(sounds.data[:4])), before)


def test_grid_search_with_cached_spectrograms(sounds, tmp_path, monkeypatch):
    fitted_rows = []  # the front end's fit side: what the cache is for
    fit = SpectrogramTransformer.fit

    def counting_fit(self, X, y=None):
        fitted_rows.append(len(X))
        return fit(self, X, y)

    monkeypatch.setattr(SpectrogramTransformer, "fit", counting_fit)
    search = GridSearchCV(
        _pipeline(memory=str(tmp_path)),
        {"npidembedder__embedding_dim": [4, 8], "npidembedder__nce_t": [0.1, 0.4]},
        cv=PredefinedSplit(sounds.folds),
    )
    search.fit(sounds.data, sounds.target)
    assert set(search.best_params_) == {"npidembedder__embedding_dim", "npidembedder__nce_t"}
    assert search.cv_results_["mean_test_score"].shape == (4,)
    # once per training split (3 folds) and once for the refit on all clips, not 4 x 3 + 1
    assert sorted(fitted_rows) == [20, 20, 20, 30]


def test_a_frozen_fitted_embedder_is_found_in_the_pipeline_cache(spectrograms, tmp_path):
    from test_afp_embedder import TINY as TINY_AFP

    from sklaudio import AFPPairLossEmbedder, FineTunedClassifier

    y = np.arange(len(spectrograms)) % 3
    fitted = [
        NPIDEmbedder(**TINY).fit(spectrograms),
        FineTunedClassifier(backbone="esresnet_tiny", max_epochs=1, batch_size=8).fit(
            spectrograms, y
        ),
    ]
    afp = AFPPairLossEmbedder(**TINY_AFP)
    long = np.random.default_rng(0).normal(size=(8, 1, 16, 40)).astype(np.float32)
    for net, X in [*((f, spectrograms) for f in fitted), (afp.fit(long), long)]:
        # its joblib hash, Pipeline(memory=...)'s key, stays what it was after fitting
        key = joblib.hash(net)
        (net.transform if hasattr(net, "transform") else net.predict_proba)(X)
        assert joblib.hash(net) == key, type(net).__name__
        # copies (a process pool's) hash alike: torch.save names storages in order, where
        # pickle named them by memory address (pickle's sharing of equal strings may differ
        # from the original's, so compare copies with copies)
        copy = pickle.loads(pickle.dumps(net))
        assert joblib.hash(pickle.loads(pickle.dumps(net))) == joblib.hash(copy)
        assert joblib.hash(pickle.loads(pickle.dumps(copy))) == joblib.hash(copy)
        np.testing.assert_array_equal(
            *(
                m.transform(X) if hasattr(m, "transform") else m.predict_proba(X)
                for m in (net, copy)
            )
        )
    calls = []
    transform = NPIDEmbedder.transform

    def counting(self, X):
        calls.append(len(X))
        return transform(self, X)

    for _ in range(2):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(NPIDEmbedder, "transform", counting)
            Pipeline(
                [("emb", FrozenEstimator(fitted[0])), ("knn", WeightedKNeighborsClassifier())],
                memory=str(tmp_path),
            ).fit(spectrograms, y)
    assert calls == [len(spectrograms)]  # the second fit read the cache


def test_kmeans_on_embeddings(spectrograms):
    from sklearn.cluster import KMeans

    Z = NPIDEmbedder(**TINY).fit_transform(spectrograms)
    labels = KMeans(3, n_init=2, random_state=0).fit_predict(Z)
    assert labels.shape == (24,)


def test_input_norm_option(spectrograms):
    emb = NPIDEmbedder(**TINY, input_norm=True).fit(spectrograms)
    assert emb.module_.input_norm.num_features == 16
    assert emb.transform(spectrograms).shape == (24, 8)
    assert NPIDEmbedder(**TINY).fit(spectrograms).module_.input_norm is None


def test_output_read_outs(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    Z = emb.transform(spectrograms)
    module = emb.module_.eval()
    with torch.no_grad():
        feats = module.features(torch.from_numpy(spectrograms)).numpy()
        maps = module.backbone.stage_maps(torch.from_numpy(spectrograms))
    # The read-out changes without refitting, and 'embedding' comes back unchanged.
    np.testing.assert_allclose(
        emb.set_params(output="features").transform(spectrograms), feats, rtol=1e-5, atol=1e-5
    )
    stats = emb.set_params(output="stats", stats_stages=(2, 4)).transform(spectrograms)
    channels = module.backbone.stage_channels
    assert stats.dtype == np.float32
    assert stats.shape == (24, 2 * (channels[1] + channels[3]))
    over_time = maps[1].mean(dim=2).numpy()  # stage 2, averaged over frequency
    np.testing.assert_allclose(stats[:, : channels[1]], over_time.mean(-1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        stats[:, channels[1] : 2 * channels[1]], over_time.std(-1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(emb.set_params(output="embedding").transform(spectrograms), Z)
    with pytest.raises(ValueError, match="stats_stages"):
        emb.set_params(output="stats", stats_stages=(5,)).transform(spectrograms)


def test_stats_sum_channel_groups():
    from sklaudio.nn import SpectrogramEncoder, build_backbone

    enc = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=3), 8).eval()
    x = torch.randn(2, 6, 20, 30)
    with torch.no_grad():
        both = enc.stage_statistics(x, (3,))
        parts = enc.stage_statistics(x[:, :3], (3,)) + enc.stage_statistics(x[:, 3:], (3,))
    torch.testing.assert_close(both, parts)
    assert both.shape == (2, 2 * enc.backbone.stage_channels[2])


def test_read_out_does_not_change_training(spectrograms):
    stats = NPIDEmbedder(**TINY, output="stats", stats_stages=range(1, 3)).fit(spectrograms)
    plain = NPIDEmbedder(**TINY).fit(spectrograms)
    np.testing.assert_array_equal(
        stats.memory_bank_.memory.numpy(), plain.memory_bank_.memory.numpy()
    )
    np.testing.assert_array_equal(
        stats.transform(spectrograms),
        plain.set_params(output="stats", stats_stages=np.array([1, 2])).transform(spectrograms),
    )


def test_pickle_from_before_a_parameter_existed_loads_with_its_default(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    state = emb.__getstate__()
    del state["output"], state["stats_stages"]  # as pickled by an older sklaudio
    old = NPIDEmbedder.__new__(NPIDEmbedder)
    old.__setstate__(state)
    assert old.get_params()["output"] == "embedding" and old.stats_stages == (2, 3, 4)
    np.testing.assert_array_equal(old.transform(spectrograms), emb.transform(spectrograms))


def test_pickle_in_skorchs_own_format_from_an_older_sklaudio_loads(spectrograms):
    import skorch

    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    state = skorch.NeuralNet.__getstate__(emb)  # torch attributes pickled, as before 0.1
    state.pop("_generators", None)
    assert not state["__cuda_dependent_attributes__"].startswith(b"PK")
    old = NPIDEmbedder.__new__(NPIDEmbedder)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.transform(spectrograms), emb.transform(spectrograms))


def test_a_pipeline_repr_shows_only_what_the_user_set():
    from sklearn.pipeline import make_pipeline

    from sklaudio import FineTunedClassifier

    text = repr(make_pipeline(NPIDEmbedder(max_epochs=5), FineTunedClassifier(lr=0.1)))
    assert "NPIDEmbedder(max_epochs=5)" in text and "FineTunedClassifier(lr=0.1)" in text
    assert "iterator_train" not in text and "DataLoader" not in text  # skorch's defaults
    # standalone too, not skorch's "<class ...>[uninitialized](module=...)"
    assert repr(NPIDEmbedder(nce_k=8)) == "NPIDEmbedder(nce_k=8)"


def test_callbacks_set_before_fit_are_built_by_fit():
    from skorch.callbacks import Callback

    class Count(Callback):
        epochs = 0

        def on_epoch_end(self, net, **kwargs):
            Count.epochs += 1

    emb = NPIDEmbedder(**TINY).set_params(callbacks=[("count", Count())])
    flat = " ".join(repr(emb).split())  # (sklearn's pretty-printer wraps long reprs)
    assert flat.startswith("NPIDEmbedder(batch_size=8, callbacks=[('count'")
    emb.fit(np.random.default_rng(0).normal(size=(16, 1, 8, 8)).astype(np.float32))
    assert Count.epochs == TINY["max_epochs"]
    with pytest.raises(TypeError):  # junk is stored until fit, which refuses it
        NPIDEmbedder(**TINY).set_params(callbacks=5).fit(np.zeros((16, 1, 8, 8), np.float32))


def test_a_log_mel_frontend_with_empty_bands_is_warned_about_at_fit():
    from sklaudio import SpectrogramTransformer

    frontend = SpectrogramTransformer("log_mel", sample_rate=48000, n_fft=512, n_mels=128)
    X = np.random.default_rng(0).normal(size=(8, 4800)).astype(np.float32)
    with pytest.warns(UserWarning, match="13 of the n_mels=128 mel bands"):
        NPIDEmbedder(**{**TINY, "max_epochs": 1}, frontend=frontend).fit(X)


def test_set_params_with_its_own_params_keeps_a_fitted_model(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms)
    Z = emb.transform(spectrograms)
    before = set(vars(emb))
    # the progress bar's and table's own state are not parameters
    assert set(emb.get_params()) == set(NPIDEmbedder(**TINY).get_params())
    emb.set_params(**emb.get_params())  # compile=False would re-initialise in skorch
    assert set(vars(emb)) == before
    np.testing.assert_array_equal(emb.transform(spectrograms), Z)
    emb.set_params(compile=False, lr=0.01)
    assert emb.lr == 0.01
    np.testing.assert_array_equal(emb.transform(spectrograms), Z)


def test_feature_names_follow_the_fitted_network_not_a_changed_parameter(spectrograms):
    emb = NPIDEmbedder(**TINY).fit(spectrograms).set_params(embedding_dim=16)
    assert emb.transform(spectrograms).shape[1] == len(emb.get_feature_names_out()) == 8


def test_a_refit_with_verbose_prints_no_reinitialising_lines(spectrograms, capsys):
    emb = NPIDEmbedder(**{**TINY, "max_epochs": 1}, verbose=2).fit(spectrograms)
    capsys.readouterr()
    emb.fit(spectrograms)
    out = capsys.readouterr().out
    assert "train_loss" in out and "Re-initializing" not in out


def test_notebook_display_leaves_out_skorch_bookkeeping(spectrograms):
    from sklearn.base import BaseEstimator
    from sklearn.utils import estimator_html_repr

    if not hasattr(BaseEstimator, "_get_params_html"):
        pytest.skip("scikit-learn < 1.7 shows no parameter table")

    emb = NPIDEmbedder(**TINY)
    assert not [k for k in emb._get_params_html() if k.startswith("callbacks__")]
    assert sorted(emb._get_params_html().non_default) == sorted(TINY)
    emb.fit(spectrograms)
    html = estimator_html_repr(emb)
    assert "memory_bank_" in html
    assert "callbacks__" not in html and "virtual_params_" not in html


def test_skorch_load_init_state_resumes_weights_and_history(spectrograms, tmp_path):
    from skorch.callbacks import Checkpoint, LoadInitState

    first = NPIDEmbedder(**TINY, callbacks=[("cp", Checkpoint(dirname=tmp_path, monitor=None))])
    first.fit(spectrograms)
    cp = Checkpoint(dirname=tmp_path, monitor=None)
    # (device='auto' reached torch.load as a device name, and LoadInitState hid the error)
    other = NPIDEmbedder(**{**TINY, "random_state": 1}).fit(spectrograms)
    other.load_params(checkpoint=cp)
    np.testing.assert_allclose(other.transform(spectrograms), first.transform(spectrograms))
    resumed = NPIDEmbedder(**{**TINY, "max_epochs": 1}, callbacks=[("load", LoadInitState(cp))])
    resumed.fit(spectrograms)  # the loaded rows are history, not a cut epoch
    assert [row["epoch"] for row in resumed.history_] == [1, 2, 3]


def test_set_params_on_a_fitted_net_reaches_its_callbacks(spectrograms, capsys):
    from skorch.callbacks import Callback

    emb = NPIDEmbedder(**TINY, verbose=2, callbacks__print_log__floatfmt=".1f").fit(spectrograms)
    assert emb.get_params()["callbacks__print_log__floatfmt"] == ".1f"  # (skorch says .4f)
    emb.set_params(**emb.get_params())
    assert dict(emb.callbacks_)["print_log"].floatfmt == ".1f"
    emb.set_params(callbacks__print_log__floatfmt=".4f")  # back to skorch's default value
    assert dict(emb.callbacks_)["print_log"].floatfmt == ".4f"

    class Count(Callback):
        epochs = 0

        def on_epoch_end(self, net, **kwargs):
            Count.epochs += 1

    emb.callbacks = [("count", Count())]  # the list itself changed, then set again
    emb.set_params(callbacks=emb.callbacks).partial_fit(spectrograms)
    assert Count.epochs == TINY["max_epochs"]


def test_a_failed_first_fit_leaves_nothing_to_name_or_transform(spectrograms):
    from sklearn.exceptions import NotFittedError

    emb = NPIDEmbedder(**{**TINY, "nce_k": 100})
    with pytest.raises(ValueError, match="nce_k"):
        emb.fit(spectrograms)
    for method in (emb.get_feature_names_out, lambda: emb.transform(spectrograms)):
        with pytest.raises(NotFittedError):
            method()


def test_numpy_integer_parameters_train(spectrograms):
    # what GridSearchCV hands out for a grid of np.array([8, 16]): torch's samplers take
    # Python ints only
    emb = NPIDEmbedder(**{**TINY, "batch_size": np.int64(8), "embedding_dim": np.int32(8)})
    assert emb.fit(spectrograms).transform(spectrograms).shape == (24, 8)


def test_ctrl_c_stops_the_search_not_only_the_fit(spectrograms):
    """A real SIGINT (a terminal's or a notebook's Ctrl-C) is warned about and goes on as a
    KeyboardInterrupt: a grid search, cross_val_score or script stops instead of carrying on
    with a cut-short model. A callback that ends training quietly still only warns."""
    import signal

    from sklearn.model_selection import GridSearchCV
    from skorch.callbacks import Callback

    class CtrlC(Callback):
        def on_batch_end(self, net, **kwargs):
            if len(net.history) == 2:
                signal.raise_signal(signal.SIGINT)

    emb = NPIDEmbedder(**{**TINY, "max_epochs": 3}, callbacks=[("ctrl_c", CtrlC())])
    with (
        pytest.warns(UserWarning, match=r"stopped after 1 of 3 epochs \(Ctrl-C\)"),
        pytest.raises(KeyboardInterrupt),
    ):
        emb.fit(spectrograms)
    assert len(emb.history_) == 1 and emb.transform(spectrograms).shape == (24, 8)  # kept
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back

    fits = []

    class Counted(CtrlC):
        def on_train_begin(self, net, **kwargs):
            fits.append(1)

    search = GridSearchCV(
        NPIDEmbedder(**{**TINY, "max_epochs": 3}, callbacks=[("ctrl_c", Counted())]),
        {"nce_t": [0.1, 0.5]},
        cv=2,
        scoring=lambda est, X, y=None: 0.0,
    )
    with pytest.warns(UserWarning, match="Ctrl-C"), pytest.raises(KeyboardInterrupt):
        search.fit(spectrograms)
    assert len(fits) == 1  # the first fit was interrupted; no other one started


def test_set_params_on_a_fitted_embedder_applies_or_says_when(spectrograms):
    """What training reads takes effect at once; what shapes the network is warned about;
    module__/criterion__ arguments, which would be ignored, are refused; a new optimizer
    class makes a new optimizer (skorch failed with 'Something went wrong')."""
    emb = NPIDEmbedder(**{**TINY, "max_epochs": 1}).fit(spectrograms)
    emb.set_params(nce_t=0.05, nce_k=3, nce_m=0.9, augment=False)
    assert emb.criterion_.nce_t == 0.05 and emb.criterion_.nce_k == 3
    assert emb.memory_bank_.momentum == 0.9 and emb.module_.augment is None
    assert float(emb.memory_bank_.nce_z) < 0  # Z is estimated again for the new temperature
    emb.partial_fit(spectrograms)
    assert float(emb.memory_bank_.nce_z) > 0
    emb.set_params(augment=True)
    assert emb.module_.augment is not None

    emb.set_params(optimizer__momentum=0.9, optimizer=torch.optim.SGD)  # either order
    assert isinstance(emb.optimizer_, torch.optim.SGD)
    assert emb.optimizer_.param_groups[0]["momentum"] == 0.9
    emb.partial_fit(spectrograms)
    assert isinstance(emb.optimizer_, torch.optim.SGD) and len(emb.history_) == 3

    before = emb.transform(spectrograms)
    with pytest.warns(
        UserWarning,
        match=r"set_params\(embedding_dim=...\) on a fitted .*"
        r"use the fitted one \(embedding_dim=8\)",
    ):
        emb.set_params(embedding_dim=4)
    np.testing.assert_array_equal(emb.transform(spectrograms), before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.set_params(**emb.get_params())  # nothing changes: nothing to say
        assert emb.fit(spectrograms).transform(spectrograms).shape == (24, 4)  # a new network

    # checked as fit checks them; a refused value leaves the estimator as it was
    for bad, match in [
        ({"nce_m": 1.5}, "nce_m"),
        ({"nce_k": 500}, "nce_k=500"),
        ({"nce_t": -1}, "nce_t"),
    ]:
        with pytest.raises(ValueError, match=match):
            emb.set_params(**bad)
    assert (emb.nce_m, emb.nce_k, emb.nce_t) == (0.9, 3, 0.05)
    assert emb.criterion_.nce_t == 0.05 and emb.memory_bank_.momentum == 0.9

    for key in ("module__embedding_dim", "criterion__nce_t", "memory_bank__momentum"):
        with pytest.raises(TypeError, match=f"does not take {key}=: it builds its"):
            NPIDEmbedder(**{key: 1})
        with pytest.raises(TypeError, match=f"does not take {key}="):
            emb.set_params(**{key: 1})


def test_paths_given_to_a_model_with_its_own_front_end_name_the_reader_to_use():
    from sklaudio.features import SpectrogramTransformer

    waves = np.random.default_rng(0).normal(size=(12, 4000)).astype(np.float32)
    front = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=8)
    emb = NPIDEmbedder(**{**TINY, "max_epochs": 1}, frontend=front).fit(waves)
    with pytest.raises(
        ValueError,
        match=r"reads waveforms: decode the files first, e\.g\. "
        r"with sklaudio\.io\.AudioReader\(sample_rate=8000, duration=0\.5\)",
    ):
        emb.transform(["a.wav", "b.wav"])


def test_progress_in_a_log_file_is_a_line_now_and_then(spectrograms, capsys, monkeypatch):
    """Redirected (a batch job's log), verbose=1 prints ~20 plain lines a fit, not a bar
    redrawn with carriage returns; on a terminal it is tqdm's bar."""
    NPIDEmbedder(**{**TINY, "max_epochs": 40}, verbose=1).fit(spectrograms)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert 20 <= len(lines) <= 21 and lines[0].startswith("NPIDEmbedder: epoch 1/40, loss=")
    assert lines[-1].startswith("NPIDEmbedder: epoch 40/40, loss=") and lines[-1].endswith(" s")

    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    NPIDEmbedder(**{**TINY, "max_epochs": 2}, verbose=1).fit(spectrograms)
    assert "\r" in capsys.readouterr().err  # tqdm's bar


def test_a_sigint_handler_that_raises_nothing_does_not_stop_a_complete_fit(spectrograms):
    import signal

    from skorch.callbacks import Callback

    flags = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flags.append(signum))
    try:

        class Signal(Callback):
            def on_epoch_end(self, net, **kwargs):
                signal.raise_signal(signal.SIGINT)

        emb = NPIDEmbedder(**{**TINY, "max_epochs": 2}, callbacks=[("sig", Signal())])
        emb.fit(spectrograms)  # the user's handler set a flag; training went on to the end
        assert flags and len(emb.history_) == 2
    finally:
        signal.signal(signal.SIGINT, previous)


def _spectrogram_pipeline():
    return Pipeline(
        [
            ("audio", AudioReader(sample_rate=8000, duration=0.25)),
            (
                "spec",
                SpectrogramTransformer(
                    "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=16, device="cpu"
                ),
            ),
            ("npidembedder", NPIDEmbedder(**TINY)),
        ]
    )


def test_a_pipeline_from_files_names_its_columns_and_a_column_transformer_uses_them(tmp_path):
    import soundfile as sf
    from sklearn.compose import ColumnTransformer

    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        sf.write(paths[-1], (0.1 * rng.normal(size=2000)).astype(np.float32), 8000)
    pipe = _spectrogram_pipeline().fit(paths)
    names = pipe.get_feature_names_out()  # every step names its output (AudioReader did not)
    assert names.tolist() == [f"npidembedder_embedding{i}" for i in range(8)]
    table = pd.DataFrame({"path": paths, "loudness": rng.normal(size=12)})
    columns = ColumnTransformer(
        [("audio", _spectrogram_pipeline(), "path")], remainder="passthrough"
    ).set_output(transform="pandas")
    out = columns.fit_transform(table)
    assert list(out.columns) == [f"audio__npidembedder_embedding{i}" for i in range(8)] + [
        "remainder__loudness"
    ]  # (tmp_col_name_* before)
    # a one-column DataFrame of paths: its name is fit's feature_names_in_ all the way
    by_frame = ColumnTransformer([("audio", _spectrogram_pipeline(), ["path"])]).fit(table)
    assert by_frame.named_transformers_["audio"][0].feature_names_in_.tolist() == ["path"]
    assert len(by_frame.get_feature_names_out()) == 8


def test_a_dataframe_of_waveforms_gives_feature_names_in_and_input_features_are_checked(
    spectrograms, tmp_path
):
    from sklaudio.persist import load, save

    pd = pytest.importorskip("pandas")
    waves = np.random.default_rng(0).normal(size=(24, 2000)).astype(np.float32)
    frame = pd.DataFrame(waves, columns=[f"s{i}" for i in range(2000)])
    front = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=8)
    emb = NPIDEmbedder(**TINY, frontend=front).fit(frame)
    assert emb.feature_names_in_.tolist() == list(frame.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(emb.transform(frame), emb.transform(waves))
    with pytest.raises(ValueError, match="feature names should match"):
        emb.transform(frame.rename(columns={"s0": "t0"}))
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        emb.get_feature_names_out([f"t{i}" for i in range(2000)])
    assert len(emb.get_feature_names_out(list(frame.columns))) == 8
    save(emb, tmp_path / "emb")
    assert load(tmp_path / "emb").feature_names_in_.tolist() == list(frame.columns)
    plain = NPIDEmbedder(**TINY).fit(spectrograms)  # n_features_in_ channels, no names
    assert not hasattr(plain, "feature_names_in_")
    with pytest.raises(ValueError, match=r"input_features should have length equal .* \(1\)"):
        plain.get_feature_names_out(["a", "b"])  # (any input_features passed before)
    assert len(plain.get_feature_names_out(["mono"])) == 8


def test_fit_metadata_is_refused_with_the_method_the_user_called(spectrograms):
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        groups = np.arange(len(spectrograms)) % 3
        with pytest.raises(TypeError, match=r"NPIDEmbedder\.fit got .*'groups'.* no metadata"):
            NPIDEmbedder(**TINY).fit(spectrograms, groups=groups)  # (named partial_fit)
        emb = NPIDEmbedder(**TINY).fit(spectrograms)
        with pytest.raises(TypeError, match=r"NPIDEmbedder\.partial_fit got .*'groups'"):
            emb.partial_fit(spectrograms, groups=groups)
    with pytest.raises(TypeError, match=r"NPIDEmbedder\.fit got .*'groups'"):
        NPIDEmbedder(**TINY).fit(spectrograms, groups=groups)  # (a torch TypeError before)

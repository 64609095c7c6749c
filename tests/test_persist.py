"""sklaudio.persist: pickle-free model files that never run code on load."""

import importlib.util
import json
import os
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier

from sklaudio import (
    AFPPairLossEmbedder,
    AudioReader,
    NPIDEmbedder,
    SpectrogramTransformer,
    TemporalStatistics,
    WeightedKNeighborsClassifier,
)
from sklaudio.persist import FORMAT, atomic_torch_save, load, save


@pytest.fixture(scope="module")
def spectrograms():
    return np.random.default_rng(0).normal(size=(12, 1, 16, 24)).astype(np.float32)


@pytest.fixture(scope="module")
def npid(spectrograms):
    return NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=6, random_state=0).fit(
        spectrograms
    )


def test_npid_round_trip(npid, spectrograms, tmp_path):
    save(npid, tmp_path / "npid.pt")
    loaded = load(tmp_path / "npid.pt")
    assert type(loaded) is NPIDEmbedder
    np.testing.assert_array_equal(loaded.transform(spectrograms), npid.transform(spectrograms))
    torch.testing.assert_close(loaded.memory_bank_.memory, npid.memory_bank_.memory)
    assert loaded.history_.to_list() == json.loads(json.dumps(npid.history_.to_list()))
    assert loaded.input_shape_ == npid.input_shape_ and loaded.seed_ == npid.seed_
    assert loaded.get_params()["optimizer"] is torch.optim.AdamW
    # the loaded model keeps training where the saved one stopped
    loaded.partial_fit(spectrograms)
    assert len(loaded.history_) == 4


def test_afp_with_frontend_round_trip(tmp_path):
    waves = np.random.default_rng(1).normal(size=(6, 8000)).astype(np.float32)
    afp = AFPPairLossEmbedder(
        frame_duration=0.2,
        code_channels=8,
        widths=(4, 4),
        mse_epochs=1,
        pair_epochs=1,
        batch_size=4,
        random_state=0,
        frontend=SpectrogramTransformer(kind="log_mel", sample_rate=8000, n_mels=16),
    ).fit(waves)
    save(afp, tmp_path / "afp.pt")
    loaded = load(tmp_path / "afp.pt")
    assert isinstance(loaded.frontend, SpectrogramTransformer)
    assert loaded.frontend.get_params() == afp.frontend.get_params()
    assert (loaded.frame_steps_, loaded.n_epochs_) == (afp.frame_steps_, afp.n_epochs_)
    np.testing.assert_array_equal(loaded.transform(waves), afp.transform(waves))


@pytest.mark.parametrize(
    "estimator, X",
    [
        (SpectrogramTransformer(kind="log_mel", sample_rate=8000, n_mels=16), "waves"),
        (TemporalStatistics(), "frames"),
        (AudioReader(sample_rate=8000, duration=0.5), "waves"),
    ],
)
def test_numpy_estimators_round_trip(estimator, X, tmp_path):
    rng = np.random.default_rng(2)
    X = {
        "waves": rng.normal(size=(3, 4000)).astype(np.float32),
        "frames": rng.normal(size=(3, 5, 7)).astype(np.float32),
    }[X]
    estimator.fit(X)
    save(estimator, tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt")
    assert loaded.get_params() == estimator.get_params()
    np.testing.assert_allclose(loaded.transform(X), estimator.transform(X))


@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_weighted_knn_round_trip(labels, tmp_path):
    from sklaudio.classifiers import WeightedKNeighborsClassifier

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    if labels == "strings":
        y = np.array(["dog", "rain", "siren"], dtype=object)[y]
    knn = WeightedKNeighborsClassifier(n_neighbors=3, temperature=0.1).fit(X, y)
    save(knn, tmp_path / "knn.pt")
    loaded = load(tmp_path / "knn.pt")
    assert loaded.get_params() == knn.get_params()
    np.testing.assert_array_equal(loaded.classes_, knn.classes_)
    assert loaded.classes_.dtype == knn.classes_.dtype
    np.testing.assert_array_equal(loaded.predict_proba(X), knn.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), knn.predict(X))


def _tampered(path, tmp_path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, tmp_path / "tampered.pt")
    return tmp_path / "tampered.pt"


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: p["arrays"].pop("_y"), "needs the arrays"),
        (lambda p: p.update(arrays=[1, 2]), "needs the arrays"),
        (lambda p: p["arrays"].update(_X=torch.zeros(3, dtype=torch.bool)), "not a numeric"),
        (lambda p: p["arrays"].update(_X=torch.zeros(40, 5)), "training embeddings"),
        (lambda p: p["arrays"].update(_y=torch.full((40,), 7)), "outside the 3 classes"),
        (lambda p: p["arrays"].update(_y=torch.zeros(39, dtype=torch.int64)), "labels for 40"),
        (lambda p: p.update(attributes=json.dumps({"predict": 1})), "not a fitted attribute"),
    ],
)
def test_tampered_knn_files_are_refused(change, match, tmp_path):
    from sklaudio.classifiers import WeightedKNeighborsClassifier

    rng = np.random.default_rng(3)
    knn = WeightedKNeighborsClassifier().fit(rng.normal(size=(40, 6)), rng.integers(0, 3, 40))
    save(knn, tmp_path / "knn.pt")
    with pytest.raises(ValueError, match=match):
        load(_tampered(tmp_path / "knn.pt", tmp_path, change))


def test_torch_model_file_sets_only_its_fitted_attributes(npid, tmp_path):
    save(npid, tmp_path / "m.pt")
    tampered = _tampered(
        tmp_path / "m.pt",
        tmp_path,
        lambda p: p.update(attributes=json.dumps({"transform": 1})),
    )
    with pytest.raises(ValueError, match="'transform' is not a fitted attribute"):
        load(tampered)


def test_model_saved_for_cuda_loads_on_cpu(npid, spectrograms, tmp_path):
    # A model trained with device='cuda' stores that parameter; without a GPU it loads on
    # the CPU (state dicts are always mapped to the CPU first).
    cuda_model = pickle.loads(pickle.dumps(npid))
    cuda_model.device = "cuda"
    save(cuda_model, tmp_path / "gpu.pt")
    if torch.cuda.is_available():  # pragma: no cover - GPU machines
        loaded = load(tmp_path / "gpu.pt")
    else:
        with pytest.warns(UserWarning, match=r"gpu.pt' was saved with device='cuda', which"):
            loaded = load(tmp_path / "gpu.pt")
        assert loaded.device == "cpu"
    np.testing.assert_allclose(loaded.transform(spectrograms), npid.transform(spectrograms))
    assert load(tmp_path / "gpu.pt", device="cpu").device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the move to a CPU-only machine")
def test_devices_this_machine_lacks_move_to_the_cpu_nested_ones_too(tmp_path):
    """A Mac's 'mps', a torch.device, and a frontend's own device all load on the CPU."""
    from sklaudio import FineTunedClassifier
    from sklaudio.features import SpectrogramTransformer

    rng = np.random.default_rng(0)
    waves = rng.normal(size=(8, 4000)).astype(np.float32)
    front = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=8)
    clf = FineTunedClassifier(
        backbone="esresnet_tiny", frontend=front, max_epochs=1, batch_size=4, device="cpu"
    ).fit(waves, np.arange(8) % 2)
    expected = clf.predict_proba(waves)
    moved = pickle.loads(pickle.dumps(clf))
    moved.device = torch.device("mps")
    moved.frontend.device = "cuda"
    save(moved, tmp_path / "mac.pt")
    with pytest.warns(UserWarning, match=r"device='mps', frontend__device='cuda', which"):
        loaded = load(tmp_path / "mac.pt")
    assert loaded.device == "cpu" and loaded.frontend.device == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(waves), expected, atol=1e-6)
    assert loaded.frontend.fit_transform(waves).shape[0] == 8  # runs on its own too
    explicit = load(tmp_path / "mac.pt", device="cpu")
    assert explicit.device == "cpu" and explicit.frontend.device == "cpu"

    # an embedder inside a FrozenEstimator (whose get_params hides it), and its frontend
    from sklearn.frozen import FrozenEstimator

    npid = NPIDEmbedder(
        embedding_dim=8, nce_k=4, max_epochs=1, batch_size=4, frontend=front, device="cpu"
    ).fit(waves)
    frozen = FineTunedClassifier(
        embedder=FrozenEstimator(npid), max_epochs=1, batch_size=4, device="cpu"
    ).fit(waves, np.arange(8) % 2)
    moved = pickle.loads(pickle.dumps(frozen))
    moved.embedder.estimator.device = "cuda"
    moved.embedder.estimator.frontend.device = "mps"
    save(moved, tmp_path / "frozen.pt")
    with pytest.warns(UserWarning, match=r"embedder__device='cuda', embedder__frontend__dev"):
        loaded = load(tmp_path / "frozen.pt")
    inner = loaded.embedder.estimator
    assert inner.device == "cpu" and inner.frontend.device == "cpu"


class _Payload:
    """Unpickling this touches a marker file: stands for arbitrary code execution."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch_save", "joblib"])
def test_malicious_files_are_refused_without_running_code(writer, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    payload = {"format": FORMAT, "estimator": "NPIDEmbedder", "evil": _Payload(str(marker))}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Payload(str(marker))))
    elif writer == "torch_save":
        torch.save(payload, path)
    else:
        joblib.dump(payload, path)
    with pytest.raises(ValueError, match="refusing to load .*model.pt"):
        load(path)
    assert not marker.exists()


def test_joblib_pickled_estimator_is_refused_with_a_hint(npid, tmp_path):
    joblib.dump(npid, tmp_path / "npid.joblib")
    with pytest.raises(ValueError, match="joblib.load"):
        load(tmp_path / "npid.joblib")


def _craft(tmp_path, **fields):
    payload = {"format": FORMAT, "format_version": 1, "estimator": "NPIDEmbedder", "params": "{}"}
    payload.update(fields)
    torch.save(payload, tmp_path / "crafted.pt")
    return tmp_path / "crafted.pt"


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"estimator": "Popen"}, "only builds"),
        ({"params": json.dumps({"optimizer": {"__class__": "os.system"}})}, "only classes from"),
        ({"params": json.dumps({"optimizer": {"__class__": "subprocess.Popen"}})}, "only classes"),
        ({"format": "something-else"}, "not a sklaudio model file"),
        ({"format_version": 99}, "newer sklaudio"),
    ],
)
def test_crafted_model_files_are_refused(fields, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        load(_craft(tmp_path, **fields))


def test_truncated_and_missing_files(npid, tmp_path):
    save(npid, tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt.*truncated"):
        load(tmp_path / "cut.pt")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="random.pt"):
        load(tmp_path / "random.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load(tmp_path / "nope.pt")


def test_a_file_damaged_after_saving_fails_its_checksum(npid, tmp_path):
    # torch.load itself would read wrong weights without a word
    save(npid, tmp_path / "m.pt")
    data = bytearray((tmp_path / "m.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped.pt.*record '.*' fails its checksum"):
        load(tmp_path / "flipped.pt")


def test_save_refuses_what_it_cannot_store(npid, tmp_path):
    with pytest.raises(NotFittedError):
        save(NPIDEmbedder(), tmp_path / "m.pt")
    with pytest.raises(NotFittedError):  # (its file would hold no neighbours: load refuses it)
        save(WeightedKNeighborsClassifier(), tmp_path / "m.pt")
    with pytest.raises(TypeError, match="KNeighborsClassifier.*joblib"):
        save(KNeighborsClassifier(), tmp_path / "m.pt")
    with_callback = pickle.loads(pickle.dumps(npid))
    with_callback.callbacks = [("probe", object())]
    with pytest.raises(TypeError, match="parameter callbacks="):
        save(with_callback, tmp_path / "m.pt")
    assert not any(tmp_path.iterdir())


def test_atomic_save_keeps_the_previous_file(npid, tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    save(npid, path)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"x": 1}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.pt"]


def test_files_of_other_formats_are_named(tmp_path):
    from sklaudio.persist import safe_torch_load

    np.save(tmp_path / "w.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"it is a numpy \.npy file; expected .*state_dict"):
        safe_torch_load(tmp_path / "w.npy", what="ResNet state dict")
    (tmp_path / "w.safetensors").write_bytes((7).to_bytes(8, "little") + b'{"a": 1}')
    with pytest.raises(ValueError, match="it is a safetensors file"):
        safe_torch_load(tmp_path / "w.safetensors", what="ResNet state dict")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ValueError, match="it is of another format; expected a file written by"):
        load(tmp_path / "notes.txt")


@pytest.mark.parametrize("route", ["persist", "pickle"])
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_training_continued_after_loading_matches_continuing_in_memory(route, how, tmp_path):
    # the random streams (shuffling, negatives, masks) travel with the model
    X = np.random.default_rng(0).normal(size=(24, 1, 16, 24)).astype(np.float32)
    params = dict(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=8, random_state=0)
    fitted = NPIDEmbedder(**params, warm_start=how == "warm_start").fit(X)
    if route == "persist":
        save(fitted, tmp_path / "m.pt")
        loaded = load(tmp_path / "m.pt")
    else:
        loaded = pickle.loads(pickle.dumps(fitted))
    for model in (fitted, loaded):
        model.partial_fit(X) if how == "partial_fit" else model.fit(X)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))


def test_files_without_checksums_load_and_save_writes_them_anyway(npid, tmp_path):
    import zipfile

    set_crc32 = getattr(torch.serialization, "set_crc32_options", None)
    if set_crc32 is None:
        pytest.skip("this torch always writes checksums")
    set_crc32(False)  # a user's global choice: torch.save then writes no CRC-32
    try:
        torch.save({"w": torch.ones(3)}, tmp_path / "plain.pt")
        save(npid, tmp_path / "m.pt")
    finally:
        set_crc32(True)
    from sklaudio.persist import safe_torch_load

    assert safe_torch_load(tmp_path / "plain.pt")["w"].sum() == 3  # no checksum: not damage
    with zipfile.ZipFile(tmp_path / "m.pt") as archive:
        assert all(info.CRC for info in archive.infolist() if info.file_size)
    assert load(tmp_path / "m.pt").memory_bank_.n_samples == npid.memory_bank_.n_samples


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_model_files_are_made_as_open_would_make_them(npid, tmp_path):
    import stat

    save(npid, tmp_path / "m.pt")
    umask = os.umask(0o022)
    os.umask(umask)
    mode = stat.S_IMODE(os.stat(tmp_path / "m.pt").st_mode)
    assert mode == 0o666 & ~umask  # not mkstemp's 0o600


def test_numpy_scalar_rates_and_path_parameters_are_saved(spectrograms, tmp_path):
    emb = NPIDEmbedder(
        embedding_dim=8,
        nce_k=4,
        max_epochs=2,
        batch_size=6,
        lr=np.float32(1e-3),  # a grid over np.array([...], dtype=np.float32) gives these
        checkpoint=tmp_path / "ck",  # a pathlib.Path: the checkpoint is written each epoch
        random_state=0,
    ).fit(spectrograms)
    save(emb, tmp_path / "e.pt")
    loaded = load(tmp_path / "e.pt")
    assert loaded.checkpoint == tmp_path / "ck"
    assert all(type(lr) is float for lr in loaded.history_[:, "lr"])
    np.testing.assert_array_equal(loaded.transform(spectrograms), emb.transform(spectrograms))


def test_save_refuses_a_folder_or_no_name(npid, tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder; give the model file's name"):
        save(npid, tmp_path)
    with pytest.raises(ValueError, match="path is empty"):
        save(npid, "")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_parameter_this_sklaudio_does_not_know_names_the_file_and_writer(npid, tmp_path):
    save(npid, tmp_path / "new.pt")
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    assert payload["versions"]["torch"] == str(torch.__version__)
    params = json.loads(payload["params"])
    params["brand_new_param"] = 3
    payload["params"] = json.dumps(params)
    payload["versions"]["sklaudio"] = "9.0"
    atomic_torch_save(payload, tmp_path / "new.pt")
    with pytest.raises(
        ValueError, match=r"new.pt' was written by sklaudio 9.0 with the parameter\(s\) brand_new"
    ):
        load(tmp_path / "new.pt")


def test_a_new_learning_rate_applies_to_the_epochs_that_follow(spectrograms):
    emb = NPIDEmbedder(
        embedding_dim=8, nce_k=4, max_epochs=2, batch_size=6, lr=1e-3, random_state=0
    ).fit(spectrograms)
    emb.set_params(lr=1e-5).partial_fit(spectrograms)
    np.testing.assert_allclose(emb.history_[:, "lr"], [1e-3, 5e-4, 1e-5, 5e-6])


def test_set_output_is_kept_by_save_and_load(spectrograms, tmp_path):
    pd = pytest.importorskip("pandas")
    stats = TemporalStatistics().set_output(transform="pandas").fit(spectrograms)
    save(stats, tmp_path / "stats.pt")
    loaded = load(tmp_path / "stats.pt")
    out = loaded.transform(spectrograms)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(stats.transform(spectrograms).columns)
    # the default is saved as nothing: files from before sklaudio kept it load the same
    save(TemporalStatistics().fit(spectrograms), tmp_path / "plain.pt")
    assert isinstance(load(tmp_path / "plain.pt").transform(spectrograms), np.ndarray)


def test_a_saved_output_this_machine_cannot_give_warns(npid, spectrograms, tmp_path):
    payload = torch.load(_saved(npid, tmp_path), weights_only=False)
    if importlib.util.find_spec("polars") is None:
        payload["output_config"] = {"transform": "polars"}
        torch.save(payload, tmp_path / "odd.pt")
        with pytest.warns(UserWarning, match="polars is not installed here: it returns numpy"):
            loaded = load(tmp_path / "odd.pt")
        assert isinstance(loaded.transform(spectrograms), np.ndarray)
    for edited in (["pandas"], {"transform": "os"}, {"transform": "pandas", "x": 1}):
        payload["output_config"] = edited
        torch.save(payload, tmp_path / "odd.pt")
        with pytest.raises(ValueError, match="odd.pt"):
            load(tmp_path / "odd.pt")


def _saved(estimator, tmp_path):
    save(estimator, tmp_path / "model.pt")
    return tmp_path / "model.pt"


def _from_newer_sklaudio(path, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    payload["versions"]["sklaudio"] = "9.0"
    atomic_torch_save(payload, path)
    return path


def _add_frontend_param(payload):
    params = json.loads(payload["params"])
    params["frontend"]["params"]["new_option"] = 1
    payload["params"] = json.dumps(params)


def _add_attribute(payload):
    attributes = json.loads(payload["attributes"])
    attributes["calibration_"] = 1
    payload["attributes"] = json.dumps(attributes)


@pytest.mark.parametrize(
    "edit, what",
    [
        (_add_frontend_param, r"the parameter\(s\) new_option of SpectrogramTransformer"),
        (_add_attribute, "the fitted attribute calibration_ of NPIDEmbedder"),
    ],
)
def test_files_from_a_newer_sklaudio_say_upgrade(edit, what, tmp_path):
    frontend = SpectrogramTransformer(
        "log_mel", sample_rate=8000, n_fft=64, hop_length=32, n_mels=8
    )
    X = np.random.default_rng(0).normal(size=(8, 4000)).astype(np.float32) * 0.1
    emb = NPIDEmbedder(frontend=frontend, loss="softmax", embedding_dim=4, max_epochs=1)
    save(emb.set_params(batch_size=4).fit(X), tmp_path / "m.pt")
    path = _from_newer_sklaudio(tmp_path / "m.pt", edit)
    with pytest.raises(ValueError, match=f"m.pt' was written by sklaudio 9.0 with {what}.*upgrade"):
        load(path)


@pytest.mark.parametrize(
    "write, match",
    [
        (lambda p, m: torch.save(m.module_.state_dict(), p), "holds a state dict.*pretrained_"),
        (lambda p, m: p.write_bytes(b""), "it is empty"),
        (lambda p, m: joblib.dump(m, p, compress=3), "a compressed joblib file"),
        (lambda p, m: torch.save({"epoch": 3}, p), r"holds a dict of 'epoch', without"),
    ],
)
def test_other_files_passed_to_load_are_named(npid, write, match, tmp_path):
    write(tmp_path / "model.pt", npid)
    with pytest.raises(ValueError, match=match):
        load(tmp_path / "model.pt")


def test_models_from_before_attributes_existed_still_work(spectrograms, tmp_path):
    from sklaudio.classifiers import FineTunedClassifier

    stats = TemporalStatistics().fit(spectrograms)
    del stats.n_bands_, stats.band_shape_  # as fitted before they existed
    assert stats.transform(spectrograms).shape == (12, 32)
    with pytest.raises(ValueError, match="features"):  # what n_features_in_ can check
        stats.transform(np.concatenate([spectrograms, spectrograms], axis=1))
    y = np.arange(12) % 2
    clf = FineTunedClassifier(backbone="esresnet_tiny", max_epochs=1, batch_size=6).fit(
        spectrograms, y
    )
    del clf.module_.__dict__["stats_stages"]  # a pickle from before stats_stages
    old = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(old.predict_proba(spectrograms), clf.predict_proba(spectrograms))

"""FineTunedClassifier (DLS section 5), weight transfer and the Fig. 4 display."""

import copy
import json
import re

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from sklaudio import AFPPairLossEmbedder, NPIDEmbedder
from sklaudio.callbacks import CHECKPOINT_FILE
from sklaudio.classifiers import FineTunedClassifier, _probe_scales
from sklaudio.nn import build_backbone, load_resnet_state_dict
from sklaudio.persist import load, save
from sklaudio.plotting import FineTuningCurveDisplay


def _toy(n=48, seed=0):
    """Two classes that differ in the level of the low frequency bins."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1, 16, 20)).astype(np.float32)
    y = np.array(["dog", "rain"] * (n // 2))
    X[y == "dog", :, :8] += 2
    return X, y


FAST = dict(max_epochs=6, batch_size=8, augment=False, random_state=0)


@pytest.fixture(scope="module")
def toy():
    return _toy()


@pytest.fixture(scope="module")
def npid(toy):
    X, _ = toy
    return NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=8, random_state=0).fit(X)


def test_from_scratch_learns_string_labels(toy):
    X, y = toy
    clf = FineTunedClassifier(**FAST).fit(X, y)
    assert clf.classes_.tolist() == ["dog", "rain"]
    assert clf.score(X, y) >= 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)  # what log_loss expects
    assert set(clf.predict(X)) <= {"dog", "rain"}
    assert clf.encoder_config_["backbone"] == "esresnet_tiny"


def test_embedder_weights_are_copied_and_the_embedder_is_untouched(toy, npid):
    X, y = toy
    before = {k: v.clone() for k, v in npid.module_.state_dict().items()}
    bank = npid.memory_bank_.memory.clone()
    start = FineTunedClassifier(embedder=npid, **{**FAST, "max_epochs": 0}).fit(X, y)
    for key, value in npid.module_.state_dict().items():
        torch.testing.assert_close(start.module_.encoder.state_dict()[key], value)
    tuned = FineTunedClassifier(embedder=npid, **FAST).fit(X, y)
    for key, value in npid.module_.state_dict().items():
        torch.testing.assert_close(value, before[key])  # the embedder kept its weights
    torch.testing.assert_close(npid.memory_bank_.memory, bank)
    changed = tuned.module_.encoder.backbone.conv1.weight
    assert not torch.equal(changed, npid.module_.backbone.conv1.weight)  # all layers tuned
    assert tuned.encoder_config_["embedding_dim"] == 8


def test_frozen_embedder_survives_clone_and_cross_validation(toy, npid, tmp_path):
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import PredefinedSplit, cross_val_score

    X, y = toy
    folds = np.arange(len(X)) % 3
    bare = FineTunedClassifier(embedder=npid, **{**FAST, "max_epochs": 1})
    with pytest.raises(ValueError, match=r"is not fitted.*embedder=FrozenEstimator\(embedder\)"):
        clone(bare).fit(X, y)  # what cross_val_score does with a bare fitted embedder
    frozen = FineTunedClassifier(embedder=FrozenEstimator(npid), **{**FAST, "max_epochs": 1})
    scores = cross_val_score(frozen, X, y, cv=PredefinedSplit(folds), error_score="raise")
    assert scores.shape == (3,) and np.isfinite(scores).all()
    # the same start as with the bare embedder
    a = clone(frozen).set_params(max_epochs=0).fit(X, y)
    b = FineTunedClassifier(embedder=npid, **{**FAST, "max_epochs": 0}).fit(X, y)
    for key, value in b.module_.state_dict().items():
        torch.testing.assert_close(a.module_.state_dict()[key], value)
    save(a, tmp_path / "ft.pt")  # a FrozenEstimator parameter is stored like a bare embedder
    np.testing.assert_array_equal(load(tmp_path / "ft.pt").predict(X), a.predict(X))


def test_freeze_encoder_trains_only_the_head(toy, npid):
    X, y = toy
    clf = FineTunedClassifier(embedder=npid, freeze_encoder=True, **FAST).fit(X, y)
    for key, value in npid.module_.state_dict().items():
        torch.testing.assert_close(clf.module_.encoder.state_dict()[key], value)
    assert not clf.module_.encoder.training  # batch-norm statistics are kept too


@pytest.mark.parametrize("n_classes, head_features", [(2, "pooled"), (3, "pooled"), (3, "stats")])
def test_linear_probe_head_init_is_the_logistic_regression(toy, npid, n_classes, head_features):
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(1).normal(size=toy[0].shape).astype(np.float32)
    y = np.resize(["dog", "rain", "wind"][:n_classes], len(X))
    X[y == "dog", :, :8] += 2
    X[y == "wind", :, 8:] += 2
    params = {**FAST, "max_epochs": 0, "head_features": head_features}
    start = FineTunedClassifier(embedder=npid, head_init="linear_probe", probe_C=0.5, **params).fit(
        X, y
    )
    with torch.no_grad():
        feats = start.module_.eval().features(torch.from_numpy(X)).double().numpy()
    mean, scale = _probe_scales(feats)
    Z = (feats - mean) / scale
    probe = LogisticRegression(C=0.5, max_iter=2000).fit(Z, y)
    assert np.abs(start.module_.head.weight.detach().numpy()).max() <= (
        np.abs(probe.coef_).max() / scale.min() + 1e-6
    )
    # before any epoch, the new layer is the probe: the same probabilities, binary included
    np.testing.assert_allclose(start.predict_proba(X), probe.predict_proba(Z), atol=1e-4)
    random = FineTunedClassifier(embedder=npid, **params).fit(X, y)
    assert not np.allclose(random.predict_proba(X), probe.predict_proba(Z), atol=1e-2)
    assert start.score(X, y) >= 0.8 > random.score(X, y)  # a classifier before epoch 1


def test_linear_probe_scales_have_a_floor():
    """A nearly constant feature is not blown up to a weight of 1/std; a constant one
    keeps a scale of 1 (and gets a weight of 0)."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 6)) * [1.0, 2.0, 0.5, 1.0, 1e-3, 0.0] + [0, 0, 0, 5, 0, 7]
    mean, scale = _probe_scales(feats)
    np.testing.assert_allclose(mean, feats.mean(0))
    median = np.median(feats.std(0)[:5])  # of the five that vary
    np.testing.assert_allclose(scale[:4], feats.std(0)[:4])
    assert scale[4] == pytest.approx(0.1 * median)  # floored (its std is 1e-3)
    assert scale[5] == 1.0  # dead


@pytest.mark.parametrize("head_features", ["pooled", "stats"])
def test_linear_probe_meets_the_features_that_training_sees(toy, npid, head_features):
    """The probe is fitted after the encoder's batch-norm statistics are set to the training
    clips', so the probed layer's loss in training mode (batch statistics) is that of
    evaluation mode: with the running statistics of a short pre-training, the first
    training loss was 30-80 on 5 classes."""
    import torch.nn.functional as F

    X, y = toy
    params = {**FAST, "max_epochs": 0, "head_features": head_features, "batch_size": len(X)}
    clf = FineTunedClassifier(embedder=npid, head_init="linear_probe", **params).fit(X, y)
    target = torch.as_tensor(clf.classes_.searchsorted(y))
    module = clf.module_
    with torch.no_grad():
        evaluation = F.cross_entropy(module.eval()(torch.from_numpy(X)), target).item()
        training = F.cross_entropy(module.train()(torch.from_numpy(X)), target).item()
    assert evaluation < 0.5 * np.log(2)  # the probe classifies the training clips
    assert training == pytest.approx(evaluation, rel=0.05, abs=0.01)
    # the statistics are the clips' (2 epochs of pre-training left them far from converged);
    # a frozen encoder, and one whose statistics converged, keep those of pre-training
    converged = copy.deepcopy(npid)
    for m in converged.module_.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.num_batches_tracked.fill_(1000)
    frozen = FineTunedClassifier(
        embedder=npid, head_init="linear_probe", freeze_encoder=True, **params
    ).fit(X, y)
    kept = FineTunedClassifier(embedder=converged, head_init="linear_probe", **params).fit(X, y)
    changed = 0
    for key, value in npid.module_.backbone.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(frozen.module_.encoder.backbone.state_dict()[key], value)
            torch.testing.assert_close(kept.module_.encoder.backbone.state_dict()[key], value)
            changed += not torch.allclose(module.encoder.backbone.state_dict()[key], value)
    assert changed > 10


def test_stats_head_reads_stage_statistics(toy, npid, tmp_path):
    X, y = toy
    clf = FineTunedClassifier(
        embedder=npid, head_features="stats", stats_stages=(2, 3), **FAST
    ).fit(X, y)
    module, backbone = clf.module_, clf.module_.encoder.backbone
    channels = backbone.stage_channels
    assert module.head.in_features == 2 * (channels[1] + channels[2])
    assert isinstance(module.stats_norm, torch.nn.BatchNorm1d)  # a random layer: scales evened
    # what the head never reads gets no gradient (data-parallel training needs that)
    for unused in (backbone.layer4, backbone.att4, backbone.att5):
        assert not any(p.requires_grad for p in unused.parameters())
    assert not torch.equal(
        backbone.layer2[0].conv1.weight, npid.module_.backbone.layer2[0].conv1.weight
    )
    assert clf.score(X, y) >= 0.9
    save(clf, tmp_path / "stats.pt")
    np.testing.assert_allclose(load(tmp_path / "stats.pt").predict_proba(X), clf.predict_proba(X))
    probed = FineTunedClassifier(
        embedder=npid, head_features="stats", head_init="linear_probe", **FAST
    ).fit(X, y)
    assert isinstance(probed.module_.stats_norm, torch.nn.Identity)  # folded into the probe
    assert probed.module_.head.in_features == 2 * sum(channels[1:])


def test_validation_fold_gives_a_learning_curve(toy, capsys):
    X, y = toy
    valid = Dataset(X[:12], y[:12])
    clf = FineTunedClassifier(train_split=predefined_split(valid), **FAST, verbose=1)
    clf.fit(X[12:], y[12:])
    # the progress bar shows the validation accuracy beside the loss
    assert re.search(r"loss=\d\.\d{4}, valid_acc=\d\.\d{4}", capsys.readouterr().err)
    curve = clf.history_[:, "valid_acc"]
    assert len(curve) == FAST["max_epochs"]
    assert all(0 <= a <= 1 for a in curve)
    assert curve[-1] == pytest.approx(clf.score(X[:12], y[:12]))
    bad = Dataset(X[:4], np.array(["cat"] * 4))
    with pytest.raises(ValueError, match=r"validation y has labels \['cat'\]"):
        FineTunedClassifier(train_split=predefined_split(bad), **FAST).fit(X, y)


def test_afp_embedder_initialises_a_sequence_classifier():
    X, y = _toy(24)
    X = np.repeat(X, 2, axis=-1)  # 40 steps: a few AFP sequences per clip
    afp = AFPPairLossEmbedder(
        frame_duration=0.4,
        sample_rate=400,
        hop_length=20,
        code_channels=8,
        widths=(4, 4),
        mse_epochs=1,
        pair_epochs=0,
        batch_size=4,
        random_state=0,
    ).fit(X)
    clf = FineTunedClassifier(embedder=afp, **{**FAST, "max_epochs": 2}).fit(X, y)
    assert clf.encoder_config_["kind"] == "sequence"
    assert clf.predict_proba(X).shape == (24, 2)
    torch.testing.assert_close(
        clf.module_.encoder.predictor.encoder[0].cell.input_conv.weight.shape,
        afp.module_.encoder[0].cell.input_conv.weight.shape,
    )
    with pytest.raises(ValueError, match="head_features='stats' reads ESResNet stages"):
        FineTunedClassifier(embedder=afp, head_features="stats", **FAST).fit(X, y)
    probed = FineTunedClassifier(embedder=afp, head_init="linear_probe", **FAST).fit(X, y)
    assert probed.predict_proba(X).shape == (24, 2)  # the probe reads the ConvLSTM code


def _torchvision_resnet_state(in_channels=3, n_classes=1000):
    """A torchvision-format ResNet state dict (no attention blocks, an fc layer)."""
    state = build_backbone("esresnet_tiny", in_channels=in_channels, attention=False).state_dict()
    gen = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in state.items()
    }
    state["fc.weight"] = torch.randn(n_classes, 128, generator=gen)
    state["fc.bias"] = torch.zeros(n_classes)
    return state


def test_load_resnet_state_dict_reports_every_key():
    state = _torchvision_resnet_state()
    backbone = build_backbone("esresnet_tiny", in_channels=1)
    report = load_resnet_state_dict(
        backbone, {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    )
    assert report.adapted == ["conv1.weight"]
    torch.testing.assert_close(backbone.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(backbone.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert report.missing and all(k.startswith("att") for k in report.missing)
    assert not report.mismatched
    assert "adapted" in report.summary() and "missing" in report.summary()


def test_pretrained_weights_file(toy, tmp_path):
    X, y = toy
    path = tmp_path / "resnet.pth"
    torch.save(_torchvision_resnet_state(), path)
    clf = FineTunedClassifier(pretrained_weights=path, **{**FAST, "max_epochs": 0}).fit(X, y)
    torch.testing.assert_close(
        clf.module_.encoder.backbone.layer3[0].conv2.weight,
        torch.load(path)["layer3.0.conv2.weight"],
    )
    assert clf.pretrained_report_.adapted == ["conv1.weight"]
    save(clf, tmp_path / "clf.pt")  # the report (and the weights' Path) are kept
    loaded = load(tmp_path / "clf.pt")
    assert loaded.pretrained_report_ == clf.pretrained_report_
    assert loaded.pretrained_weights == path

    # a ResNet of another width or depth: refused, naming the backbone it fits
    for other in ("esresnet_small", "esresnet18"):
        state = build_backbone(other, in_channels=3, attention=False).state_dict()
        torch.save(state, tmp_path / f"{other}.pth")
        with pytest.raises(
            ValueError, match=rf"{other}.pth.*does not fit .* use backbone='{other}'"
        ):
            FineTunedClassifier(pretrained_weights=tmp_path / f"{other}.pth", **FAST).fit(X, y)
    # not a state dict
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a state dict"):
        FineTunedClassifier(pretrained_weights=tmp_path / "list.pth", **FAST).fit(X, y)
    # a pickle that would run code is refused before anything runs
    torch.save({"w": Callback()}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match="refusing to load") as caught:
        FineTunedClassifier(pretrained_weights=tmp_path / "code.pth", **FAST).fit(X, y)
    message = str(caught.value)
    assert "pickled skorch.callbacks" in message and "model.state_dict()" in message
    assert "\x1b" not in message  # no terminal colour codes from torch's own message
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        FineTunedClassifier(pretrained_weights=tmp_path / "nope.pth", **FAST).fit(X, y)


def test_a_deeper_resnet_of_the_same_blocks_is_refused(toy, tmp_path):
    # resnet34 into esresnet18 (or 101 into 50): every tensor the backbone has fits, but
    # the blocks it lacks would be dropped
    X, y = toy
    state = _torchvision_resnet_state()
    for name in [k for k in state if k.startswith("layer2.0.")]:
        state[name.replace("layer2.0.", "layer2.1.")] = state[name].clone()
    torch.save(state, tmp_path / "deeper.pth")
    with pytest.raises(
        ValueError,
        match=r"residual stages: \d+ the backbone lacks\): it holds a ResNet of basic "
        r"blocks \(1, 2, 1, 1\)",
    ):
        FineTunedClassifier(pretrained_weights=tmp_path / "deeper.pth", **FAST).fit(X, y)


def test_a_state_dict_whose_first_layer_alone_differs_loads_the_rest_and_warns(toy, tmp_path):
    X, y = toy
    state = _torchvision_resnet_state()
    state["conv1.weight"] = torch.zeros(16, 2, 3, 3)  # another input channel count
    torch.save(state, tmp_path / "odd.pth")
    with pytest.warns(UserWarning, match=r"1 mismatched \(conv1.weight"):
        clf = FineTunedClassifier(
            pretrained_weights=tmp_path / "odd.pth", **{**FAST, "max_epochs": 0}
        ).fit(X, y)
    torch.testing.assert_close(
        clf.module_.encoder.backbone.layer4[0].conv1.weight, state["layer4.0.conv1.weight"]
    )
    # a tensor of the body that differs means another architecture: nothing is half loaded
    state["layer4.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(
        ValueError, match=r"residual stages: 1 of another shape\).*layer4.0.conv1.weight"
    ):
        FineTunedClassifier(pretrained_weights=tmp_path / "odd.pth", **FAST).fit(X, y)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda e: dict(embedder=NPIDEmbedder()), "embedder NPIDEmbedder is not fitted"),
        (lambda e: dict(embedder=e, backbone="esresnet18"), "does not match the embedder"),
        (lambda e: dict(embedder=e, pretrained_weights="w.pth"), "not both"),
        (lambda e: dict(embedder=object()), "embedder must be a fitted NPIDEmbedder"),
        (lambda e: dict(backbone="resnet9000"), "backbone must be None or one of"),
        (lambda e: dict(head_init="zeros"), "head_init must be 'random' or 'linear_probe'"),
        (lambda e: dict(probe_C=0), "probe_C must be a number > 0"),
        (lambda e: dict(head_init="linear_probe"), "needs a pre-trained encoder"),
        (lambda e: dict(head_features="attention"), "head_features must be 'pooled' or 'stats'"),
        (lambda e: dict(head_features="stats", stats_stages=(5,)), "stats_stages must be"),
        (lambda e: dict(freeze_encoder="yes"), "freeze_encoder must be True or False"),
        (lambda e: dict(input_norm="no"), "input_norm must be True or False"),
        (lambda e: dict(train_split=0.2), "train_split must be None or a callable"),
    ],
)
def test_bad_parameters(toy, npid, make, match):
    X, y = toy
    with pytest.raises((ValueError, TypeError), match=match):
        FineTunedClassifier(**FAST, **make(npid)).fit(X, y)


def test_bad_labels_and_shapes(toy, npid):
    X, y = toy
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        FineTunedClassifier(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"at least 2 classes, got 1 class \(\['dog'\]\)"):
        FineTunedClassifier(**FAST).fit(X, np.array(["dog"] * len(X)))
    with pytest.raises(ValueError, match="requires y"):
        FineTunedClassifier(**FAST).fit(X, None)
    with pytest.raises(TypeError, match="FineTunedClassifier does not support sample_weight"):
        FineTunedClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match=r"embedder was fitted on \(1, 16, 20\)"):
        FineTunedClassifier(embedder=npid, **FAST).fit(X[..., :10], y)
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    with pytest.raises(ValueError, match="fitted on"):
        clf.predict(X[..., :10])


def test_checkpoint_and_persistence(toy, npid, tmp_path):
    X, y = toy

    class Crash(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3:
                raise RuntimeError("crash")

    params = dict(embedder=npid, **FAST)
    with pytest.raises(RuntimeError):
        FineTunedClassifier(**params, checkpoint=tmp_path, callbacks=[("c", Crash())]).fit(X, y)
    assert torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["epoch"] == 3
    # the same clips with other labels, or another pre-trained encoder: another run
    with pytest.raises(ValueError, match="another run: it trained on other labels"):
        FineTunedClassifier(**params, checkpoint=tmp_path).fit(X, y[::-1])
    other = NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=1, batch_size=8, random_state=1)
    with pytest.raises(
        ValueError, match="another run: it fine-tuned an embedder with other weights"
    ):
        FineTunedClassifier(**{**params, "embedder": other.fit(X)}, checkpoint=tmp_path).fit(X, y)
    resumed = FineTunedClassifier(**params, checkpoint=tmp_path).fit(X, y)
    reference = FineTunedClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))

    save(reference, tmp_path / "clf.pt")
    loaded = load(tmp_path / "clf.pt")
    assert loaded.classes_.tolist() == ["dog", "rain"]
    np.testing.assert_array_equal(loaded.predict_proba(X), reference.predict_proba(X))
    assert isinstance(loaded.embedder, NPIDEmbedder)  # its parameters, for the architecture
    with pytest.raises(ValueError, match=r"persist.load keeps its embedder's parameters only"):
        loaded.fit(X, y)
    assert loaded.set_params(embedder=npid, max_epochs=1).fit(X, y).predict(X).shape == y.shape


def test_fine_tuning_curve_display(toy, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = toy
    valid = Dataset(X[:12], y[:12])
    fits = [
        FineTunedClassifier(train_split=predefined_split(valid), **{**FAST, "random_state": s}).fit(
            X[12:], y[12:]
        )
        for s in (0, 1)
    ]
    disp = FineTuningCurveDisplay.from_estimators({"scratch": fits}).plot()
    mean, spread = disp.mean_std()["scratch"]
    assert spread.shape == mean.shape and (spread >= 0).all()
    expected = np.mean([f.history_[:, "valid_acc"] for f in fits], axis=0)
    np.testing.assert_allclose(mean, expected)
    assert disp.lines_["scratch"].get_ydata().tolist() == pytest.approx(expected.tolist())
    # the same figure from histories saved as JSON
    saved = json.loads(json.dumps([f.history_.to_list() for f in fits]))
    again = FineTuningCurveDisplay.from_histories({"scratch": saved})
    np.testing.assert_allclose(again.mean_std()["scratch"][0], mean)
    with pytest.raises(ValueError, match="no 'valid_acc'"):
        FineTuningCurveDisplay.from_estimators({"x": [FineTunedClassifier(**FAST).fit(X, y)]})
    with pytest.raises(ValueError, match="different epoch counts"):
        FineTuningCurveDisplay.from_histories({"x": [[0.1, 0.2], [0.3]]})
    # one epoch is drawn as a visible point, several as a plain line
    assert disp.lines_["scratch"].get_marker() in ("None", None, "")
    one = FineTuningCurveDisplay.from_histories({"x": [[0.4], [0.6]]}).plot()
    assert one.lines_["x"].get_marker() == "o"
    # whole epochs on the axis, and the folds counted in the legend
    assert disp.lines_["scratch"].get_label() == "scratch (2 folds)"
    single = FineTuningCurveDisplay.from_histories({"x": [[0.4, 0.5, 0.6]]}).plot()
    assert single.lines_["x"].get_label() == "x (1 fold)"
    assert all(float(t).is_integer() for t in single.ax_.get_xticks())  # not 1.25, 1.5, ...


def test_cosine_schedule_keeps_per_group_learning_rates(toy):
    X, y = toy
    clf = FineTunedClassifier(
        **{**FAST, "max_epochs": 4}, lr=1e-3, optimizer__param_groups=[("head.*", {"lr": 1e-2})]
    ).fit(X, y)
    rates = sorted(group["lr"] for group in clf.optimizer_.param_groups)
    factor = 0.5 * (1 + np.cos(np.pi * 3 / 4))  # the last epoch's share of the initial rate
    assert rates == pytest.approx([1e-3 * factor, 1e-2 * factor])


def test_more_epochs_restart_the_schedule_instead_of_training_at_lr_0(toy):
    X, y = toy
    npid = NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=8, random_state=0)
    npid.fit(X)
    before = npid.module_.projection.weight.detach().clone()
    npid.partial_fit(X)
    assert npid.history_[:, "lr"] == pytest.approx([1e-3, 5e-4, 1e-3, 5e-4])
    assert not torch.equal(npid.module_.projection.weight, before)  # it trained
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 2, "warm_start": True}).fit(X, y)
    head = clf.module_.head.weight.detach().clone()
    clf.fit(X, y)  # warm_start: two more epochs on the same network
    assert clf.history_[:, "lr"] == pytest.approx([1e-3, 5e-4, 1e-3, 5e-4])
    assert not torch.equal(clf.module_.head.weight, head)


def test_displays_say_how_to_get_matplotlib(monkeypatch):
    import builtins

    from sklaudio.plotting import EmbeddingDisplay

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    display = EmbeddingDisplay.from_embeddings(np.eye(4, 3), [0, 1, 0, 1])
    with pytest.raises(ImportError, match=r"pip install sklaudio\[plot\]"):
        display.plot()
    with pytest.raises(ImportError, match="matplotlib"):
        FineTuningCurveDisplay.from_histories({"a": [[0.1, 0.2]]}).plot()


def test_embedding_display_from_estimator(toy, npid):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklaudio.plotting import EmbeddingDisplay

    X, y = toy
    display = EmbeddingDisplay.from_estimator(npid, X, y, method="tsne").plot(title="t")
    assert display.points.shape == (len(X), 2)
    assert sorted(t.get_text() for t in display.ax_.get_legend().get_texts()) == ["dog", "rain"]
    with pytest.raises(ValueError, match="method must be 'pca' or 'tsne'"):
        EmbeddingDisplay.from_embeddings(np.eye(5), method="umap")


def test_new_layer_runs_in_float32_under_autocast():
    from sklaudio.nn import SpectrogramEncoder
    from sklaudio.nn.finetune import SpectrogramClassifier

    encoder = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=1), 8)
    module = SpectrogramClassifier(encoder, 3, stats_stages=(2,)).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = module(torch.randn(2, 1, 16, 20))
    assert logits.dtype == torch.float32  # a probed layer's large terms cancel: no bf16
    maps = encoder.backbone.stage_maps(torch.randn(2, 1, 16, 20), last=2)
    assert [m.shape[1] for m in maps] == list(encoder.backbone.stage_channels[:2])


def test_displays_check_what_they_are_given():
    from sklaudio.plotting import EmbeddingDisplay, FineTuningCurveDisplay

    disp = FineTuningCurveDisplay({"DLS": [[0.5, 0.7], [0.6, 0.8]]})  # lists, not arrays
    np.testing.assert_allclose(disp.mean_std()["DLS"][0], [0.55, 0.75])
    with pytest.raises(ValueError, match="the same number of epochs in every fold"):
        FineTuningCurveDisplay({"DLS": [[0.5, 0.7], [0.6]]}).mean_std()
    Z = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match=r"shape \(10,\), got labels of shape \(9,\)"):
        EmbeddingDisplay.from_embeddings(Z, np.arange(9))
    with pytest.raises(ValueError, match="labels run from 0 to 9 but target_names has 2"):
        EmbeddingDisplay.from_embeddings(Z, np.arange(10), target_names=["a", "b"])


def test_an_interrupted_linear_probe_leaves_the_classifier_unfitted(toy, npid, monkeypatch):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    X, y = toy
    clf = FineTunedClassifier(embedder=npid, head_init="linear_probe", **FAST).fit(X, y)

    def ctrl_c(self, *args, **kwargs):  # Ctrl-C during the probe's pass over the corpus
        raise KeyboardInterrupt

    monkeypatch.setattr(LogisticRegression, "fit", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):  # not a random new layer that looks fitted
        clf.predict(X)
    monkeypatch.undo()
    assert clf.fit(X, y).score(X, y) > 0.9  # and it fits again


def test_displays_refuse_one_history_and_name_integer_labels_given_as_floats(toy):
    import matplotlib

    matplotlib.use("Agg")
    from sklaudio.plotting import EmbeddingDisplay, FineTuningCurveDisplay

    X, y = toy
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 2}).fit(X, y)
    with pytest.raises(TypeError, match=r"one history; pass a list .* \[clf.history_\]"):
        FineTuningCurveDisplay.from_histories({"scratch": clf.history_}, metric="train_loss")
    with pytest.raises(TypeError, match="one history"):
        FineTuningCurveDisplay.from_histories({"scratch": clf.history_.to_list()})
    with pytest.raises(ValueError, match=r"no 'valid_acc' \(its epochs hold \[.*'train_loss'"):
        FineTuningCurveDisplay.from_histories({"scratch": [clf.history_]})
    Z = np.random.default_rng(0).normal(size=(6, 2))
    disp = EmbeddingDisplay(Z, np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]), ["dog", "rain"]).plot()
    assert [t.get_text() for t in disp.ax_.get_legend().get_texts()] == ["dog", "rain"]
    objects = np.array([0, 1, 0, 1, 0, 1], dtype=object)  # (pandas' nullable Int64 gives these)
    disp = EmbeddingDisplay(Z, objects, ["dog", "rain"]).plot()
    assert [t.get_text() for t in disp.ax_.get_legend().get_texts()] == ["dog", "rain"]
    with pytest.raises(ValueError, match="target_names names integer labels"):
        EmbeddingDisplay.from_embeddings(Z, np.array(["a", "b"] * 3), target_names=["a", "b"])


def test_partial_fit_classes_lists_labels_the_first_batch_lacks(toy, npid, tmp_path):
    X, y = toy
    dog = y == "dog"
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1}, head_init="random")
    clf.partial_fit(X[dog], y[dog], classes=["dog", "rain", "wind"])
    assert clf.classes_.tolist() == ["dog", "rain", "wind"]
    assert clf.predict_proba(X[:3]).shape == (3, 3)
    clf.partial_fit(X[~dog], y[~dog])  # labels the first batch lacked are known
    assert len(clf.history_) == 2
    with pytest.raises(ValueError, match=r"classes=\['dog', 'rain'\] differs from .*'wind'"):
        clf.partial_fit(X, y, classes=["dog", "rain"])
    with pytest.raises(ValueError, match=r"y has labels \['rain'\] that the training labels"):
        FineTunedClassifier(**FAST).partial_fit(X, y, classes=["dog", "cat"])
    # the classes belong to a checkpoint's run: the labels are encoded by them
    ck = dict(**{**FAST, "max_epochs": 1}, head_init="random", checkpoint=tmp_path)
    FineTunedClassifier(**ck).partial_fit(X, y, classes=["dog", "rain", "wind"])
    with pytest.raises(ValueError, match=r"another run: it trained for the classes \['dog', 'r"):
        FineTunedClassifier(**ck).partial_fit(X, y)
    with pytest.raises(ValueError, match="head_init='linear_probe' fits .* 1 class"):
        FineTunedClassifier(embedder=npid, **FAST, head_init="linear_probe").partial_fit(
            X[dog], y[dog], classes=["dog", "rain"]
        )


def test_set_params_on_a_fitted_classifier(toy):
    X, y = toy
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    clf.set_params(augment=True)
    assert clf.module_.encoder.augment is not None
    proba = clf.predict_proba(X)
    with pytest.warns(UserWarning, match=r"set_params\(freeze_encoder=...\) on a fitted"):
        clf.set_params(freeze_encoder=True)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    with pytest.raises(TypeError, match="does not take module__n_classes="):
        clf.set_params(module__n_classes=3)


def test_a_new_lr_scales_every_group_and_a_no_op_set_params_changes_nothing(toy):
    X, y = toy
    clf = FineTunedClassifier(
        **{**FAST, "max_epochs": 1}, lr=1e-3, optimizer__param_groups=[("head.*", {"lr": 1e-2})]
    ).fit(X, y)
    rates = lambda: sorted(g["initial_lr"] for g in clf.optimizer_.param_groups)  # noqa: E731
    assert rates() == pytest.approx([1e-3, 1e-2])
    clf.set_params(**clf.get_params()).partial_fit(X, y)
    assert rates() == pytest.approx([1e-3, 1e-2])  # (was [1e-3, 1e-3]: the head 10x slower)
    clf.set_params(lr=5e-4).partial_fit(X, y)
    assert rates() == pytest.approx([5e-4, 5e-3])


@pytest.mark.parametrize("head_features", ["pooled", "stats"])
def test_head_lr_puts_the_new_layer_alone_in_a_group_of_its_own(toy, head_features):
    X, y = toy
    clf = FineTunedClassifier(
        **{**FAST, "max_epochs": 1}, lr=1e-3, head_lr=1e-2, head_features=head_features
    ).fit(X, y)
    head, *rest = clf.optimizer_.param_groups
    assert {id(p) for p in head["params"]} == {id(p) for p in clf.module_.head.parameters()}
    assert head["initial_lr"] == pytest.approx(1e-2)
    assert [g["initial_lr"] for g in rest] == pytest.approx([1e-3])
    n_params = sum(1 for p in clf.module_.parameters())
    assert len(head["params"]) + len(rest[0]["params"]) == n_params  # nothing left out


def test_head_lr_trains_as_the_equivalent_param_groups_do(toy):
    X, y = toy
    settings = {**FAST, "max_epochs": 3, "lr": 3e-4}
    a = FineTunedClassifier(**settings, head_lr=1e-2).fit(X, y)
    b = FineTunedClassifier(**settings, optimizer__param_groups=[("head.*", {"lr": 1e-2})])
    b.fit(X, y)
    np.testing.assert_array_equal(a.history_[:, "train_loss"], b.history_[:, "train_loss"])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_set_params_lr_keeps_head_lr_and_a_new_head_lr_takes_effect(toy):
    X, y = toy
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1}, lr=1e-3, head_lr=1e-2).fit(X, y)
    rates = lambda: [g["initial_lr"] for g in clf.optimizer_.param_groups]  # noqa: E731
    clf.set_params(lr=5e-4).partial_fit(X, y)
    assert rates() == pytest.approx([1e-2, 5e-4])  # (param_groups would scale it to 5e-3)
    clf.set_params(head_lr=2e-2).partial_fit(X, y)
    assert rates() == pytest.approx([2e-2, 5e-4])
    clf.set_params(head_lr=None).partial_fit(X, y)
    assert rates() == pytest.approx([5e-4])  # one group again: the new layer learns at lr
    with pytest.raises(ValueError, match="head_lr must be None .* or a number >= 0, got -1"):
        clf.set_params(head_lr=-1)
    assert clf.head_lr is None  # refused: left as it was


@pytest.mark.parametrize("bad", [-1e-3, "fast", float("nan"), True])
def test_head_lr_refuses_what_is_not_a_rate(toy, bad):
    X, y = toy
    with pytest.raises(ValueError, match="head_lr must be None"):
        FineTunedClassifier(**FAST, head_lr=bad).fit(X, y)


def test_head_lr_and_param_groups_for_the_head_are_refused_together(toy):
    X, y = toy
    clf = FineTunedClassifier(
        **FAST, head_lr=1e-2, optimizer__param_groups=[("head.*", {"lr": 1e-3})]
    )
    with pytest.raises(ValueError, match=r"head_lr=0.01 and the lr of .* \['head\.\*'\]"):
        clf.fit(X, y)
    # groups for other parameters combine with it
    clf.set_params(optimizer__param_groups=[("encoder.backbone.conv1.*", {"lr": 1e-4})])
    clf.set_params(max_epochs=1).fit(X, y)
    assert [g["initial_lr"] for g in clf.optimizer_.param_groups] == pytest.approx(
        [1e-2, 1e-4, 1e-3]
    )


def test_head_lr_keeps_the_other_options_of_a_group_that_holds_the_head(toy):
    X, y = toy
    clf = FineTunedClassifier(
        **{**FAST, "max_epochs": 1},
        head_lr=1e-2,
        optimizer__weight_decay=1e-2,
        optimizer__param_groups=[("*bias", {"weight_decay": 0.0})],
    ).fit(X, y)
    head = {id(clf.module_.head.weight): "weight", id(clf.module_.head.bias): "bias"}
    seen = {}
    for group in clf.optimizer_.param_groups:
        for p in group["params"]:
            if id(p) in head:
                seen[head[id(p)]] = (group["initial_lr"], group["weight_decay"])
            else:
                assert group["initial_lr"] == pytest.approx(1e-3)
    assert seen == {"weight": (pytest.approx(1e-2), 1e-2), "bias": (pytest.approx(1e-2), 0.0)}


def test_a_refused_head_lr_leaves_the_fitted_net_as_it_was(toy):
    X, y = toy
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1, "augment": True}, head_lr=1e-2)
    clf.fit(X, y)
    augment, optimizer = clf.module_.encoder.augment, clf.optimizer_
    with pytest.raises(ValueError, match="head_lr must be"):
        clf.set_params(augment=False, head_lr=-1)
    assert clf.augment is True and clf.head_lr == 1e-2
    assert clf.module_.encoder.augment is augment and clf.optimizer_ is optimizer


def test_predict_log_proba_is_the_log_of_predict_proba_and_stays_finite(toy):
    import warnings

    X, y = toy
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    proba, log_proba = clf.predict_proba(X), clf.predict_log_proba(X)
    assert log_proba.shape == (len(X), 2) and log_proba.dtype == np.float64
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-12)
    np.testing.assert_array_equal(np.argsort(log_proba), np.argsort(proba))
    with torch.no_grad():  # a layer sure enough to round a class's probability to 0
        clf.module_.head.weight.mul_(1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "divide by zero encountered in log")
        proba, log_proba = clf.predict_proba(X), clf.predict_log_proba(X)
    assert (proba == 0).any() and np.isfinite(log_proba).all()
    assert (log_proba.argmax(axis=1) == proba.argmax(axis=1)).all()


def test_a_label_unseen_by_the_first_partial_fit_call_points_at_classes(toy):
    X, y = toy
    y = y.copy()
    y[::6] = "wind"
    known = y != "wind"
    clf = FineTunedClassifier(**{**FAST, "max_epochs": 1}).partial_fit(X[known], y[known])
    with pytest.raises(
        ValueError, match=r"labels \['wind'\] .*Pass every label .* classes= on the first call"
    ):
        clf.partial_fit(X, y)
    with pytest.raises(
        ValueError, match=r"labels \['wind'\] .*do not contain; add them to classes="
    ):
        FineTunedClassifier(**FAST).partial_fit(X, y, classes=["dog", "rain"])

"""Classifiers on top of embeddings."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import zlib
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring
from skorch.dataset import Dataset
from skorch.hf import AccelerateMixin
from skorch.utils import to_tensor

from sklaudio._doc_link import DocLinkMixin
from sklaudio._warnings import warn_user
from sklaudio.callbacks import CosineLR, EpochProgressBar, is_main_process
from sklaudio.embedders import (
    STAGES_EXPECTED,
    _bare,
    _is_int,
    _is_real,
    _TorchNetMixin,
    _valid_stages,
    _VerbosePrintLog,
)
from sklaudio.features import frame_sequences
from sklaudio.io import _NumbersNotBoolsMixin
from sklaudio.nn import (
    BACKBONES,
    AudioFramePredictor,
    SequenceEncoder,
    SpectrogramClassifier,
    SpectrogramEncoder,
    build_backbone,
    load_resnet_state_dict,
)
from sklaudio.persist import safe_torch_load

__all__ = ["FineTunedClassifier", "WeightedKNeighborsClassifier"]


class WeightedKNeighborsClassifier(
    DocLinkMixin, _NumbersNotBoolsMixin, ClassifierMixin, BaseEstimator
):
    """kNN on cosine similarity with votes weighted by ``exp(sim / τ)`` (NPID's evaluation).

    For each query, the ``n_neighbors`` training samples of highest cosine
    similarity ``s`` vote for their class with weight ``exp(s / temperature)``;
    ``predict_proba`` is the normalised vote. This is the weighted kNN with
    which DLS and NPID evaluate embeddings (DLS section 4: K = 5).

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours that vote; with fewer training samples than that, every
        training sample votes (a warning says so at ``fit``).
    temperature : float, default=0.07
        τ; smaller values let the closest neighbour dominate.
    batch_size : int, default=1024
        Queries compared with the training set at once (memory bound:
        ``batch_size × n_train`` similarities).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit``; absent otherwise.

    References
    ----------
    Z. Wu, Y. Xiong, S. X. Yu, D. Lin. "Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination", CVPR 2018, section 3.4.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.classifiers import WeightedKNeighborsClassifier
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> clf = WeightedKNeighborsClassifier(n_neighbors=2).fit(X, ["a", "a", "b", "b"])
    >>> clf.predict([[1.0, 0.05], [0.05, 1.0]]).tolist()
    ['a', 'b']
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    # the training embeddings and labels, saved by sklaudio.persist.save
    _persisted_arrays = ("_X", "_y")

    def __init__(self, n_neighbors=5, temperature=0.07, batch_size=1024):
        self.n_neighbors = n_neighbors
        self.temperature = temperature
        self.batch_size = batch_size

    @staticmethod
    def _normalise(X):
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.maximum(norms, np.finfo(X.dtype).tiny)

    def fit(self, X, y):
        """Store the normalised training embeddings and their labels."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        self._y = encoder.transform(y)
        self._X = self._normalise(X)
        if len(X) < self.n_neighbors:
            warn_user(
                f"n_neighbors={self.n_neighbors} but only {len(X)} training samples: all of "
                "them vote"
            )
        return self

    def _check_restored(self):
        """Check the arrays a model file gave (sklaudio.persist.load)."""
        X, y = self._X, self._y
        if X.ndim != 2 or X.shape[1] != self.n_features_in_ or X.dtype.kind != "f":
            raise ValueError(f"the training embeddings have shape {X.shape}, dtype {X.dtype}")
        if y.shape != (len(X),) or y.dtype.kind not in "iu" or not len(X):
            raise ValueError(f"{y.shape} labels for {len(X)} training embeddings")
        if y.min() < 0 or y.max() >= len(self.classes_):
            raise ValueError(f"labels outside the {len(self.classes_)} classes")

    def predict_proba(self, X):
        """Normalised ``exp(sim / τ)`` votes of the ``n_neighbors`` most similar samples."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        X = self._normalise(X)
        k = min(self.n_neighbors, self._X.shape[0])
        proba = np.zeros((X.shape[0], len(self.classes_)))
        for start in range(0, X.shape[0], self.batch_size):
            sim = X[start : start + self.batch_size] @ self._X.T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            top_sim = np.take_along_axis(sim, top, axis=1)
            # Subtracting the row maximum keeps exp() finite for small temperatures.
            weights = np.exp((top_sim - top_sim.max(axis=1, keepdims=True)) / self.temperature)
            rows = np.repeat(np.arange(top.shape[0]), k)
            block = np.zeros((top.shape[0], len(self.classes_)))
            np.add.at(block, (rows, self._y[top].ravel()), weights.ravel())
            proba[start : start + top.shape[0]] = block / block.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X):
        """The class with the largest weighted vote."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _probe_scales(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and scale that standardise the linear probe's features.

    A floor (a tenth of the median scale) under the scales of the features that vary: a
    nearly constant one, standardised, would get a weight of 1/std (up to 1e4 after a
    short pre-training) and wreck fine-tuning; constant (dead) ones keep a scale of 1 and
    so a weight of 0.
    """
    mean, raw = feats.mean(axis=0), feats.std(axis=0)
    live = raw > 10 * np.finfo(np.float32).eps * np.maximum(np.abs(mean), 1)
    floor = 0.1 * np.median(raw[live]) if live.any() else 0.0
    return mean, np.where(live, np.maximum(raw, floor), 1.0)


def _recalibrate_batch_norm(module, iterator, device) -> bool:
    """Re-estimate the batch-norm statistics of ``module``'s features on the clips of
    ``iterator`` (one pass in training mode, the exact average over its batches) when
    those of pre-training have not converged; returns whether it did.

    The linear probe reads evaluation-mode features, normalised by the running statistics;
    fine-tuning runs the layers in training mode, on batch statistics. After a short
    pre-training the running statistics still hold much of their initial values (zero
    mean, unit variance: after n batches, a share ``(1 - momentum) ** n``), the two
    differ, and the probed layer started at a training loss of 30-80 on 5 classes (ln 5 =
    1.6 for a random layer). Converged statistics are kept: with them the first training
    loss is already low (0.75 on ESC-10's 10 classes), and re-estimating them cost 1-3
    points of accuracy in epochs 1-30 on ESC-10 (docs/benchmarks.md).
    """
    norms = [
        m
        for m in module.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]

    def initial_share(m) -> float:
        n = int(m.num_batches_tracked)
        if m.momentum is None:  # a cumulative average
            return 1.0 if n == 0 else 0.0
        return (1.0 - m.momentum) ** n

    if not any(initial_share(m) > 0.01 for m in norms):
        return False
    momenta = [m.momentum for m in norms]
    augment = getattr(getattr(module, "encoder", None), "augment", None)
    try:
        # Training mode without augmentation: batch norm re-standardises augmented batches
        # in training, so clean clips standardised by their own statistics are what the
        # probe should read (with augmented statistics the first loss was twice as high)
        module.train()
        if augment is not None:
            augment.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch counts the same
        with torch.no_grad():
            for Xi, _ in iterator:
                module.features(to_tensor(Xi, device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    return True


class FineTunedClassifier(_TorchNetMixin, NeuralNetClassifier):
    """Fine-tune a pre-trained sound encoder with a new classification layer (DLS, section 5).

    DLS pre-trains ESResNet without labels, then "adds a new classification
    layer for each dataset and fine-tunes all layers". ``embedder`` gives the
    pre-trained encoder (its weights are copied; the embedder is never
    modified); ``embedder=None`` trains the same architecture from scratch, or
    from ImageNet weights with ``pretrained_weights``. Built on skorch's
    :class:`~skorch.NeuralNetClassifier` with a cross-entropy loss; labels may
    be any hashable values (strings included).

    Pass ``train_split=predefined_split(Dataset(X_test, y_test))`` to score a
    held-out fold after every epoch: ``history_[:, 'valid_acc']`` is then the
    learning curve of DLS Fig. 4.

    Parameters
    ----------
    embedder : NPIDEmbedder or AFPPairLossEmbedder, default=None
        A fitted embedder whose encoder initialises the network. Its backbone,
        front end and input normalisation are used, and ``X`` must have the
        clip shape it was fitted on. ``clone`` (and so ``cross_val_score`` and
        ``GridSearchCV``) clones it unfitted: pass
        ``FrozenEstimator(embedder)`` (:mod:`sklearn.frozen`) there.
    backbone : str, default=None
        With ``embedder=None``, the architecture (``'esresnet_tiny'`` when
        None); with an embedder it must be None or equal the embedder's.
    pretrained_weights : str or path-like, default=None
        A torchvision-format ResNet state dict (e.g. ImageNet ResNet-50 for
        ``backbone='esresnet50'``), loaded with ``torch.load(weights_only=True)``
        and mapped by name; see :func:`sklaudio.nn.load_resnet_state_dict`.
        The outcome per key is in ``pretrained_report_``.
    freeze_encoder : bool, default=False
        Train only the new layer (DLS found fine-tuning all layers learns
        faster; kept for linear-probe experiments).
    head_init : {'random', 'linear_probe'}, default='random'
        How the new classification layer starts. ``'random'``: PyTorch's
        default initialisation (the paper). ``'linear_probe'``: LP-FT (Kumar
        et al., ICLR 2022) — before the first epoch, a multinomial
        :class:`~sklearn.linear_model.LogisticRegression` (``C=probe_C``) on
        the standardised features of the frozen encoder (evaluation mode, no
        augmentation) of the training clips sets the layer, so that fine-tuning
        starts from a classifier instead of distorting the pre-trained features
        with a random one. Costs one pass over the training clips (two when the
        encoder's batch-norm statistics have not converged in a short
        pre-training: they are first re-estimated on the training clips, so that
        the probe reads the features that training will). Needs a pre-trained
        encoder (``embedder`` or ``pretrained_weights``). Train the encoder
        more slowly than the new layer from there (``lr=3e-4, head_lr=1e-2``),
        or the first steps undo the probe's start (0.84 against 0.71 at
        epoch 1 on ESC-10; docs/finetune.rst).
    probe_C : float, default=0.05
        Inverse regularisation of the linear probe (``head_init='linear_probe'``);
        a small value keeps the first logits soft enough to fine-tune from.
    head_features : {'pooled', 'stats'}, default='pooled'
        What the new layer reads. ``'pooled'``: the backbone's pooled last
        stage (the paper). ``'stats'``: the per-channel temporal mean and std
        of the stages in ``stats_stages`` (as ``NPIDEmbedder(output='stats')``;
        ESResNet encoders only), batch-normalised without affine parameters
        when the layer starts random. On ESC-10 with a DLS encoder and
        ``head_init='linear_probe'``, ``'stats'`` is 3.6 points more accurate
        at epoch 3 and 2.5 at the end than ``'pooled'`` (docs/benchmarks.md).
    stats_stages : sequence of int, default=(2, 3, 4)
        Stages (1–4) read by ``head_features='stats'``.
    frontend : SpectrogramTransformer or callable, default=None
        As for :class:`~sklaudio.embedders.NPIDEmbedder`; with an embedder,
        None means the embedder's front end.
    augment : bool or dict, default=True
        Spectrogram augmentation while training (not for AFP encoders):
        :class:`~sklaudio.nn.SpectrogramAugment`'s defaults, without the
        frequency shift that :class:`~sklaudio.embedders.NPIDEmbedder`
        pre-trains with (it brought no gain in fine-tuning on ESC-10). A dict
        changes some settings, e.g. ``augment={'max_freq_shift': 0.1}``.
    input_norm : bool, default=False
        Per-bin batch norm before the backbone (from scratch only; an
        embedder brings its own setting).
    max_epochs : int, default=30
    batch_size : int, default=32
    lr : float, default=1e-3
        Annealed to 0 by a cosine schedule.
    head_lr : float, default=None
        The new classification layer's learning rate, annealed by the same
        schedule; None: ``lr``. The pre-trained encoder's features are worth
        keeping while the new layer starts from scratch, so it pays to let the
        layer learn faster (``lr=1e-3, head_lr=1e-2``), and after a linear-probe
        start to train the encoder more slowly still (``lr=3e-4,
        head_lr=1e-2``). The same as
        ``optimizer__param_groups=[('head.*', {'lr': head_lr})]``, and a
        parameter a grid search can vary; ``set_params(lr=...)`` leaves it as it
        is (from the next epoch: the default cosine schedule sets it). Other
        options of a parameter group that holds the new layer's parameters
        (``optimizer__param_groups=[('*bias', {'weight_decay': 0})]``) still
        apply; a group's own ``lr`` for them is refused. Set on a fitted
        classifier, the epochs that follow train with a new optimizer.
    optimizer : torch optimizer class, default=torch.optim.AdamW
    train_split : callable, default=None
        skorch's validation split; None trains on all of ``X``.
    mixed_precision, device, random_state, checkpoint, accelerator, verbose, **kwargs
        As for :class:`~sklaudio.embedders.NPIDEmbedder`.

    Attributes
    ----------
    classes_ : ndarray
        The labels, sorted.
    module_ : SpectrogramClassifier
    history_ : skorch.History
        ``train_loss`` per epoch; ``valid_loss`` and ``valid_acc`` with a
        ``train_split``.
    pretrained_report_ : TransferReport or None
        Which keys of ``pretrained_weights`` were loaded, missing or mismatched.
    encoder_config_ : dict
        The encoder's architecture (what a saved model needs to rebuild it).
    classes_inferred_ : ndarray
        The labels seen in ``fit`` (``classes_`` reads them).
    input_shape_ : tuple
        Shape of one clip seen in ``fit``.
    n_features_in_ : int
        ``input_shape_[0]``; absent when ``X`` holds paths.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit`` (of waveform samples
        with a ``frontend``, or a column of paths with a streaming one); absent
        otherwise.
    spectrogram_shape_ : tuple
        Shape of one clip's spectrogram from a ``SpectrogramTransformer``
        front end in ``fit``; ``transform`` refuses a front end whose
        parameters changed since. Absent without such a front end.
    seed_ : int
        The seed drawn from ``random_state`` at ``fit``; every random stream
        (the new layer, shuffling, augmentation) derives from it.

    References
    ----------
    S. Hornauer et al., "Unsupervised Discriminative Learning of Sounds for
    Audio Event Classification", ICASSP 2021, section 5 and Fig. 4.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.classifiers import FineTunedClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(24, 1, 16, 20)).astype(np.float32)
    >>> y = np.array(["dog", "rain"] * 12)
    >>> X[y == "dog", :, :8] += 3  # dogs are louder in the low bands
    >>> clf = FineTunedClassifier(max_epochs=15, batch_size=8, augment=False, random_state=0)
    >>> clf.fit(X, y).classes_.tolist()
    ['dog', 'rain']
    >>> clf.predict_proba(X[:2]).shape, bool(clf.score(X, y) > 0.9)
    ((2, 2), True)
    """

    _fitted_attribute = "classes_inferred_"

    _fixed_params = ("module", "criterion", "classes")
    _bool_params = ("freeze_encoder", "input_norm", "mixed_precision")
    _fixed_reasons = {
        **_TorchNetMixin._fixed_reasons,
        "classes": "the classes are those of y at fit (classes_)",
    }
    _persisted_attributes = (
        *_TorchNetMixin._persisted_attributes,
        *("classes_inferred_", "encoder_config_", "pretrained_report_"),
    )
    _live_params = ("augment", "head_lr")
    _structural_params = (
        *_TorchNetMixin._structural_params,
        *("embedder", "backbone", "pretrained_weights", "freeze_encoder", "head_init"),
        *("probe_C", "head_features", "stats_stages", "input_norm"),
    )

    def _apply_live(self, names: list) -> None:
        if "head_lr" in names:  # checked before anything changes (a refusal changes nothing)
            self._raise_on_failed([self._check_head_lr()])
        encoder = _bare(self.module_).encoder
        if "augment" in names and hasattr(encoder, "augment"):  # (an AFP encoder has none)
            encoder.augment = self._new_augment()
        if "head_lr" in names:
            with self._resolved_device():
                self._initialize_optimizer()  # the new layer's group made (or removed) anew

    def _check_head_lr(self) -> tuple:
        ok = self.head_lr is None or (_is_real(self.head_lr) and self.head_lr >= 0)
        return ("head_lr", ok, "None (the new layer learns at lr) or a number >= 0")

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's parameter groups, with the new layer's parameters taken out into
        groups of their own at ``head_lr``, first (where
        ``optimizer__param_groups=[('head.*', ...)]`` puts them); the other options of
        a group that also holds some of them (``weight_decay``, say) go with them."""
        if prefix != "optimizer" or self.head_lr is None:
            return super().get_params_for_optimizer(prefix, named_parameters)
        named = list(named_parameters)
        # (names of a module wrapped for data parallelism or compiled start with module.)
        head = [
            (n, p)
            for n, p in named
            if re.sub(r"^(module\.|_orig_mod\.)+", "", n).startswith("head.")
        ]
        groups = self.get_params_for("optimizer").get("param_groups", [])
        clash = [
            pattern
            for pattern, options in groups
            if "lr" in options and any(fnmatch.fnmatch(n, pattern) for n, _ in head)
        ]
        if clash:
            raise ValueError(
                f"head_lr={self.head_lr!r} and the lr of optimizer__param_groups pattern(s) "
                f"{clash} both set the new layer's learning rate: give one of them"
            )
        order = {id(p): i for i, (_, p) in enumerate(named)}
        head_ids = {id(p) for _, p in head}
        args, kwargs = super().get_params_for_optimizer(prefix, named)
        head_groups, other_groups = [], []
        for group in args[0]:
            ours = sorted(
                (p for p in group["params"] if id(p) in head_ids), key=lambda p: order[id(p)]
            )
            rest = [p for p in group["params"] if id(p) not in head_ids]
            if ours:
                # own_lr: CosineLR keeps this rate when lr changes (set_params(lr=...))
                head_groups.append({**group, "params": ours, "lr": self.head_lr, "own_lr": True})
            if rest:
                other_groups.append({**group, "params": rest})
        return ([*head_groups, *other_groups], *args[1:]), kwargs

    def __init__(
        self,
        embedder=None,
        backbone=None,
        pretrained_weights=None,
        freeze_encoder=False,
        head_init="random",
        probe_C=0.05,
        head_features="pooled",
        stats_stages=(2, 3, 4),
        frontend=None,
        augment=True,
        input_norm=False,
        max_epochs=30,
        batch_size=32,
        lr=1e-3,
        head_lr=None,
        optimizer=torch.optim.AdamW,
        train_split=None,
        mixed_precision=True,
        device="auto",
        random_state=None,
        checkpoint=None,
        accelerator=None,
        verbose=0,
        **kwargs,
    ):
        self._refuse_fixed(kwargs)
        self._refuse_unknown(kwargs)
        super().__init__(
            module=SpectrogramClassifier,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.embedder = embedder
        self.backbone = backbone
        self.pretrained_weights = pretrained_weights
        self.freeze_encoder = freeze_encoder
        self.head_init = head_init
        self.probe_C = probe_C
        self.head_lr = head_lr
        self.head_features = head_features
        self.stats_stages = stats_stages
        self.frontend = frontend
        self.augment = augment
        self.input_norm = input_norm
        self.mixed_precision = mixed_precision
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.accelerator = accelerator

    def _fingerprint_extras(self, y=None) -> dict:
        # a checkpoint of the same clips with other labels, or another pre-trained encoder,
        # belongs to another run
        extras = {}
        if y is not None:
            labels = "\0".join(map(str, np.asarray(y).ravel())).encode()
            extras["labels_crc32"] = zlib.crc32(labels)
        if hasattr(self, "classes_inferred_"):  # partial_fit(classes=) may list more than y
            extras["classes"] = [str(c) for c in self.classes_inferred_]
        if self._pretrained is not None and hasattr(self._pretrained, "module_"):
            crc = 0
            for tensor in self._pretrained.module_.state_dict().values():
                tensor = tensor.detach().cpu().contiguous()
                if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
                    tensor = tensor.float()
                crc = zlib.crc32(tensor.numpy().tobytes(), crc)
            extras["embedder_crc32"] = crc
        return extras

    # -- the encoder's architecture ---------------------------------------------------

    @property
    def _pretrained(self):
        """The embedder, unwrapped from a FrozenEstimator (what survives ``clone``)."""
        from sklearn.frozen import FrozenEstimator

        embedder = self.embedder
        return embedder.estimator if isinstance(embedder, FrozenEstimator) else embedder

    def _embedder_kind(self) -> str | None:
        if self._pretrained is None:
            return None
        name = type(self._pretrained).__name__
        if name not in ("NPIDEmbedder", "AFPPairLossEmbedder"):
            raise TypeError(
                "embedder must be a fitted NPIDEmbedder or AFPPairLossEmbedder (or one wrapped "
                f"in sklearn's FrozenEstimator), got {name}"
            )
        return name

    def _frontend(self):
        if self.frontend is None and self._pretrained is not None:
            return self._pretrained.frontend
        return self.frontend

    def _check_params(self, X) -> None:
        kind = self._embedder_kind()
        checks = [
            (
                "max_epochs",
                _is_int(self.max_epochs) and self.max_epochs >= 0,
                "an integer >= 0",
            ),
            (
                "batch_size",
                _is_int(self.batch_size) and self.batch_size >= 2,
                "an integer >= 2 (batch norm needs two clips)",
            ),
            (
                "backbone",
                self.backbone is None or self.backbone in BACKBONES,
                f"None or one of {sorted(BACKBONES)}",
            ),
            (
                "head_init",
                self.head_init in ("random", "linear_probe"),
                "'random' or 'linear_probe'",
            ),
            (
                "probe_C",
                _is_real(self.probe_C) and self.probe_C > 0,
                "a number > 0",
            ),
            ("head_features", self.head_features in ("pooled", "stats"), "'pooled' or 'stats'"),
            ("stats_stages", _valid_stages(self.stats_stages), STAGES_EXPECTED),
            self._check_head_lr(),
            (
                "train_split",
                self.train_split is None or callable(self.train_split),
                "None or a callable such as skorch.dataset.ValidSplit(0.2) or "
                "skorch.helper.predefined_split(valid_dataset)",
            ),
            *self._common_checks(),
        ]
        self._raise_on_failed(checks)
        if self.head_init == "linear_probe" and kind is None and self.pretrained_weights is None:
            raise ValueError(
                "head_init='linear_probe' needs a pre-trained encoder (embedder= or "
                "pretrained_weights=): an untrained encoder's features, with batch-norm "
                "statistics never estimated, give a probe that stalls training"
            )
        if self.head_features == "stats" and kind == "AFPPairLossEmbedder":
            raise ValueError(
                "head_features='stats' reads ESResNet stages; an AFPPairLossEmbedder's ConvLSTM "
                "encoder has none: use head_features='pooled'"
            )
        if kind is None:
            return
        try:
            check_is_fitted(self._pretrained, "input_shape_")
        except NotFittedError:
            raise ValueError(
                f"embedder {kind} is not fitted; fit it (on unlabelled audio) first, or pass "
                "embedder=None to train from scratch. Inside cross_val_score, GridSearchCV or "
                "clone, a fitted embedder is cloned unfitted: pass "
                "embedder=FrozenEstimator(embedder) (sklearn.frozen) to keep it fitted. A "
                "FineTunedClassifier from sklaudio.persist.load keeps its embedder's "
                "parameters only: set_params(embedder=<the fitted embedder>) to fit it again"
            ) from None
        if self.backbone is not None and (
            kind != "NPIDEmbedder" or self.backbone != self._pretrained.backbone
        ):
            has = self._pretrained.backbone if kind == "NPIDEmbedder" else "a ConvLSTM encoder"
            raise ValueError(
                f"backbone={self.backbone!r} does not match the embedder, which has {has}; "
                "leave backbone=None to use the embedder's"
            )
        if self.pretrained_weights is not None:
            raise ValueError(
                "pass either embedder= (DLS pre-training) or pretrained_weights= (ImageNet), "
                "not both"
            )
        if tuple(self.input_shape_) != tuple(self._pretrained.input_shape_):
            raise ValueError(
                f"X has clips of shape {tuple(self.input_shape_)}, but the embedder was fitted on "
                f"{tuple(self._pretrained.input_shape_)}; use the same front end and duration"
            )

    def _encoder_config(self) -> dict:
        kind = self._embedder_kind()
        if kind == "AFPPairLossEmbedder":
            e = self._pretrained
            return {
                "kind": "sequence",
                "code_channels": int(e.code_channels),
                "widths": [int(w) for w in e.widths],
                "frame_steps": int(e.frame_steps_),
                "hop_steps": int(e.hop_steps_),
                "n_context": int(e.n_context),
                "short": e.short,
            }
        channels, n_freq = self._spectrogram_shape()[:2]
        source = self._pretrained if kind else self
        return {
            "kind": "spectrogram",
            "backbone": source.backbone or "esresnet_tiny",
            "in_channels": self._group_channels(channels),
            "embedding_dim": int(source.embedding_dim) if kind else 1,
            "n_freq": int(n_freq) if source.input_norm else None,
        }

    def initialize_module(self):
        config = self.encoder_config_
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            if config["kind"] == "sequence":
                framer = functools.partial(
                    frame_sequences,
                    frame_steps=config["frame_steps"],
                    hop_steps=config["hop_steps"],
                    sequence_length=config["n_context"] + 1,
                    short=config["short"],
                )
                encoder = SequenceEncoder(
                    AudioFramePredictor(config["code_channels"], tuple(config["widths"])),
                    framer,
                    config["n_context"],
                    frontend=self._frontend_fn(),
                )
            else:
                augment = self._new_augment()
                encoder = SpectrogramEncoder(
                    build_backbone(config["backbone"], in_channels=config["in_channels"]),
                    config["embedding_dim"],
                    frontend=self._frontend_fn(),
                    augment=augment,
                    n_freq=config["n_freq"],
                )
            stats = self.head_features == "stats"
            self.module_ = SpectrogramClassifier(
                encoder,
                len(self.classes_inferred_),
                freeze_encoder=self.freeze_encoder,
                stats_stages=self.stats_stages if stats else None,
                # a probed layer has the statistics' scales folded into its weights
                normalise_stats=self.head_init == "random",
            )
        return self

    def _initial_weights(self) -> None:
        """Copy the embedder's encoder, or map ImageNet weights, into the new network."""
        self.pretrained_report_ = None
        if self._pretrained is not None:
            source = self._pretrained.module_
            target = _bare(self.module_).encoder
            if isinstance(target, SequenceEncoder):
                target = target.predictor
            target.load_state_dict(source.state_dict())  # copies: the embedder stays as it was
        elif self.pretrained_weights is not None:
            state = safe_torch_load(self.pretrained_weights, what="ResNet state dict")
            try:
                report = load_resnet_state_dict(_bare(self.module_).encoder.backbone, state)
            except ValueError as exc:
                raise ValueError(f"{os.fspath(self.pretrained_weights)!r}: {exc}") from None
            self.pretrained_report_ = report
            if report.mismatched:
                warn_user(
                    f"pretrained_weights {os.fspath(self.pretrained_weights)!r}: "
                    f"{report.summary()}",
                )
            if self.verbose and is_main_process(self):
                print(f"pretrained_weights: {report.summary()}")

    def _linear_probe_head(self, X, y, **fit_params) -> None:
        """LP-FT: a logistic regression on the frozen encoder's features sets the new layer."""
        from sklearn.linear_model import LogisticRegression

        dataset, _ = self.get_split_datasets(X, y, **fit_params)  # never the validation clips
        module = _bare(self.module_)
        was_training = module.training
        # skorch's plain iterator: with an accelerator every process probes every clip
        iterator = super(AccelerateMixin, self).get_iterator(dataset, training=False)
        if not self.freeze_encoder:
            _recalibrate_batch_norm(module, iterator, self.device)
        module.eval()
        feats, labels = [], []
        with torch.no_grad():
            for Xi, yi in iterator:
                feats.append(module.features(to_tensor(Xi, self.device)).float().cpu())
                labels.append(torch.as_tensor(yi))
        module.train(was_training)
        feats, labels = torch.cat(feats).numpy().astype(np.float64), torch.cat(labels).numpy()
        mean, std = _probe_scales(feats)
        Z = (feats - mean) / std
        probe = LogisticRegression(C=self.probe_C, max_iter=2000).fit(Z, labels)
        coef, intercept = probe.coef_, probe.intercept_
        n_classes = module.head.out_features
        if len(coef) == 1:  # two classes: one logit difference, split over the two rows
            coef, intercept = np.vstack([-coef, coef]) / 2, np.r_[-intercept, intercept] / 2
        # a class absent from the training split (possible with a validation split) starts at 0
        weight, bias = np.zeros((n_classes, feats.shape[1])), np.zeros(n_classes)
        weight[probe.classes_] = coef / std  # the head reads unstandardised features
        bias[probe.classes_] = intercept - weight[probe.classes_] @ mean
        with torch.no_grad():
            module.head.weight.copy_(torch.as_tensor(weight, dtype=module.head.weight.dtype))
            module.head.bias.copy_(torch.as_tensor(bias, dtype=module.head.bias.dtype))
            if self._n_processes() > 1:  # DDP synced the layer before the probe: sync again
                for tensor in (module.head.weight, module.head.bias):
                    torch.distributed.broadcast(tensor, src=0)
        if self.verbose and is_main_process(self):
            score = probe.score(Z, labels)
            print(f"head_init='linear_probe': training accuracy {score:.3f} on {len(labels)} clips")

    # -- data -----------------------------------------------------------------------

    def _encode_labels(self, y, what="y", fix="") -> np.ndarray:
        y = column_or_1d(y, warn=True)
        unseen = ~np.isin(y, self.classes_inferred_)
        if unseen.any():
            raise ValueError(
                f"{what} has labels {sorted(set(np.asarray(y)[unseen].tolist()))[:5]} that the "
                f"training labels {self.classes_inferred_.tolist()[:10]} do not contain{fix}"
            )
        return np.searchsorted(self.classes_inferred_, y).astype(np.int64)

    def check_data(self, X, y):
        pass  # labels are checked and encoded by fit

    def get_split_datasets(self, X, y=None, **fit_params):
        # A predefined validation fold holds the user's labels; encode them like y.
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        if isinstance(dataset_valid, Dataset) and dataset_valid.y is not None:
            X_valid = self._check_input(dataset_valid.X, reset=False)
            y_valid = self._encode_labels(np.asarray(dataset_valid.y), "the validation y")
            dataset_valid = self.get_dataset(X_valid, y_valid)
        return dataset_train, dataset_valid

    # -- fit / predict --------------------------------------------------------------

    def fit(self, X, y, **fit_params):
        """Fine-tune on labelled clips.

        Parameters
        ----------
        X : array-like
            Spectrograms ``(n, channels, n_freq, n_frames)``, or waveforms with
            a front end (the embedder's, when one is given).
        y : array-like of shape (n,)
            Labels; at least two classes.
        **fit_params : dict
            Must be empty: ``fit`` takes no metadata (no ``sample_weight``, no
            ``groups``); skorch would hand them to the network, which reads the
            clips only, so any name raises a TypeError that names it.
        """
        self._check_fit_params(fit_params)
        if self.warm_start and self.initialized_ and hasattr(self, "classes_inferred_"):
            return self.partial_fit(X, y, **fit_params)  # skorch's warm_start: continue
        return self._fit(X, y, None, **fit_params)

    def _fit(self, X, y, classes, **fit_params):
        """``fit``; ``classes`` (partial_fit's): every label, some perhaps absent from y."""
        self._embedder_kind()  # a wrong type of embedder fails before its front end is read
        X = self._check_input(X, reset=True)
        if y is None:
            raise ValueError(
                "FineTunedClassifier requires y to be passed, but the target y is None; it is a "
                "supervised classifier (use NPIDEmbedder to learn without labels)"
            )
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self._check_params(X)
        classes = np.unique(y if classes is None else column_or_1d(classes))
        if len(classes) < 2:
            raise ValueError(
                f"FineTunedClassifier needs at least 2 classes, got 1 class ({classes.tolist()})"
            )
        self.classes_inferred_ = classes
        try:
            # (only partial_fit's classes= can lack a label of y)
            y_encoded = self._encode_labels(y, fix="; add them to classes=")
        except ValueError:
            del self.classes_inferred_
            raise
        if self.head_init == "linear_probe" and len(np.unique(y)) < 2:
            del self.classes_inferred_
            raise ValueError(
                "head_init='linear_probe' fits a logistic regression on the first call's y, "
                f"which holds 1 class ({np.unique(y).tolist()}); give it clips of 2 or more "
                "classes, or use head_init='random'"
            )
        self._reset_randomness()
        self.encoder_config_ = self._encoder_config()
        saved = self._read_checkpoint(X, y)
        with self._resolved_device():
            try:
                self.initialize()
                self._initial_weights()
                done = self._resume(saved)
                if self.head_init == "linear_probe" and done == 0:
                    self._linear_probe_head(X, y_encoded, **fit_params)
            except BaseException:
                # (Ctrl-C in the probe's pass over the corpus, or a failed weight load): the
                # new network is half made; leave the classifier unfitted, not predicting
                # with a random layer
                del self.classes_inferred_
                self.initialized_ = False
                raise
            epochs = max(self.max_epochs - done, 0)
            self._train(X, y_encoded, resumable=True, epochs=epochs, **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train ``max_epochs`` more epochs on ``X, y``.

        ``classes``: every label the classifier will see, required by scikit-learn's
        convention when the first call's ``y`` may lack some (mini-batches). On the
        first call it fixes ``classes_`` (None: the labels of ``y``); later calls
        must give the same classes or None.
        """
        self._check_fit_params(fit_params, "partial_fit")
        if not self.initialized_ or not hasattr(self, "classes_inferred_"):
            return self._fit(X, y, classes, **fit_params)
        if classes is not None and not np.array_equal(
            np.unique(column_or_1d(classes)), self.classes_inferred_
        ):
            raise ValueError(
                f"classes={np.unique(classes).tolist()} differs from the classes of the first "
                f"partial_fit call, {self.classes_inferred_.tolist()}"
            )
        X = self._check_input(X, reset=False)
        y_encoded = self._encode_labels(
            y,
            fix=(
                ": the first partial_fit call fixed the classes. Pass every label the "
                "classifier will see with classes= on the first call (e.g. "
                "classes=np.unique(y_all)), even those its first batch lacks"
            ),
        )
        self._checkpoint_fingerprint = self._fingerprint(X, y)
        with self._resolved_device():
            self._train(X, y_encoded, **fit_params)
        return self

    def _logits(self, X) -> torch.Tensor:
        """The new layer's outputs ``(n, n_classes)``, as float64 on the CPU."""
        check_is_fitted(self, "classes_inferred_")
        X = self._check_input(X, reset=False)
        with self._resolved_device():
            logits = self.forward(X, training=False, device="cpu")
        # float64: the softmax then sums to 1 within 1e-16 (sklearn's log_loss wants 1e-8,
        # float32's is ~1e-7), and the log of a class far behind stays finite
        return logits.double()

    def predict_proba(self, X):
        """Class probabilities ``(n, n_classes)``, columns in ``classes_`` order."""
        return torch.softmax(self._logits(X), dim=1).numpy()

    def predict_log_proba(self, X):
        """Log class probabilities ``(n, n_classes)``, columns in ``classes_`` order.

        The log-softmax of the network's outputs: finite where ``predict_proba``
        rounds a class to 0 (no ``-inf``, no warning).

        Parameters
        ----------
        X : array-like
            Clips, as for ``predict_proba``.

        Returns
        -------
        ndarray of float64, shape (n_clips, n_classes)
        """
        return torch.log_softmax(self._logits(X), dim=1).numpy()

    def predict(self, X):
        """The most probable label of each clip."""
        proba = self.predict_proba(X)  # checks that the classifier is fitted
        return self.classes_[proba.argmax(axis=1)]

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            (
                "valid_acc",
                EpochScoring(
                    _encoded_accuracy, name="valid_acc", lower_is_better=False, use_caching=True
                ),
            ),
            ("lr_scheduler", CosineLR()),
            ("print_log", _VerbosePrintLog()),
            ("progress", EpochProgressBar()),
            *self._checkpoint_callbacks(),
        ]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags


def _encoded_accuracy(net, X, y) -> float:
    """Accuracy of the validation predictions against the encoded validation labels."""
    # skorch hands the validation Dataset and, with caching, replays the epoch's outputs
    return float(np.mean(NeuralNet.predict_proba(net, X).argmax(axis=1) == np.asarray(y)))

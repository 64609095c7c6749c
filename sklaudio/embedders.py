"""Unsupervised embedders: torch encoders trained through skorch, used as transformers."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import warnings
import zlib
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    check_array,
    check_is_fitted,
)
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import Dataset, unpack_data
from skorch.hf import AccelerateMixin
from skorch.history import History
from skorch.utils import is_dataset, to_tensor

from sklaudio._checks import did_you_mean
from sklaudio._checks import is_int as _is_int
from sklaudio._checks import is_real as _is_real
from sklaudio._doc_link import DocLinkMixin
from sklaudio._warnings import warn_user
from sklaudio.callbacks import (
    CHECKPOINT_FILE,
    CosineLR,
    EpochProgressBar,
    TrainingCheckpoint,
    is_main_process,
)
from sklaudio.features import _check_device_available, resolve_device
from sklaudio.io import (
    _TEXT_KINDS,
    AudioFileDataset,
    AudioReader,
    _as_path_list,
    _is_path_like,
    check_waveform_input,
    check_waveforms_not_empty,
    pcm_to_float,
    refuse_none,
)
from sklaudio.nn import (
    BACKBONES,
    AudioFramePredictor,
    MemoryBank,
    NPIDLoss,
    SpectrogramAugment,
    SpectrogramEncoder,
)
from sklaudio.nn.esresnet import build_backbone
from sklaudio.persist import _decode, _encode, _NewerFileError, json_default, safe_torch_load

__all__ = ["AFPPairLossEmbedder", "NPIDEmbedder"]


class _VerbosePrintLog(PrintLog):
    """skorch's per-epoch table, printed only with ``verbose >= 2``.

    The header is printed again when the columns change (AFP's phase 2 adds
    the pair-loss columns), so that values stay under their names.
    """

    def initialize(self):
        self.columns_ = None  # (a trailing underscore keeps it out of get_params)
        return super().initialize()

    def on_epoch_end(self, net, **kwargs):
        if net.verbose >= 2 and is_main_process(net):
            columns = tuple(self._sorted_keys(net.history[-1].keys()))
            if self.columns_ is not None and columns != self.columns_:
                self.first_iteration_ = True
            self.columns_ = columns
            super().on_epoch_end(net, **kwargs)


_MISSING = object()


def _same(a, b) -> bool:
    """Whether a parameter is set to what it already is (the object, or an equal plain value)."""
    if a is b:
        return True
    plain = (str, int, float, bool, type(None), tuple, type)
    if isinstance(a, plain):
        return type(a) is type(b) and a == b
    if hasattr(a, "get_params") and type(a) is type(b):
        # skorch's get_params gives fresh default callbacks on every call: the same if
        # of one class with the same parameters
        pa, pb = a.get_params(deep=False), b.get_params(deep=False)
        return pa.keys() == pb.keys() and all(_same(pa[k], pb[k]) for k in pa)
    return False


def _stable_repr(value) -> str:
    """``repr`` without memory addresses, so that it compares across processes; an
    estimator by its class and every parameter (its display repr shows only the changed
    ones, and shortens long ones, depending on sklearn's print settings)."""
    if inspect.isfunction(value) or inspect.isclass(value):
        return f"{value.__module__}.{value.__qualname__}"
    if hasattr(value, "get_params") and callable(value.get_params):
        params = value.get_params(deep=False)
        inner = ", ".join(f"{k}={_stable_repr(v)}" for k, v in sorted(params.items()))
        return f"{type(value).__name__}({inner})"
    if isinstance(value, list | tuple):
        inner = ", ".join(_stable_repr(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {_stable_repr(v)}" for k, v in sorted(value.items(), key=str))
        return "{" + inner + "}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _shorten(text, limit: int = 120) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 5] + " ... "


def _clips(shape) -> str:
    """``'32 clips of shape (1, 16, 20)'`` for a fingerprint's data shape (paths: files)."""
    if not isinstance(shape, list) or not shape:
        return "other data"
    if len(shape) == 1:
        return f"{shape[0]} files"
    return f"{shape[0]} clips of shape {tuple(shape[1:])}"


def _fingerprint_difference(saved: str | None, current: str) -> str:
    if saved is None:
        return "it has no fingerprint"
    saved, current = json.loads(saved), json.loads(current)
    keys = (
        *("estimator", "shape", "data_crc32", "files_crc32"),
        *("labels_crc32", "classes", "embedder_crc32"),
    )
    for key in keys:
        if key in current and key not in saved:
            return f"it was written by an older sklaudio (no {key}); delete it to start afresh"
        if saved.get(key) != current.get(key):
            if key in ("shape", "data_crc32", "files_crc32"):
                what = {
                    "shape": f"it trained on {_clips(saved.get('shape'))}, these are "
                    f"{_clips(current.get('shape'))}",
                    "data_crc32": "it trained on other clips",
                    "files_crc32": "its files changed on disk since (size or modification time)",
                }[key]
                # (cross-validation fits one model per fold, each on other clips)
                return (
                    f"{what}; inside cross_val_score or GridSearchCV every fit needs a "
                    "checkpoint directory of its own"
                )
            return {
                "labels_crc32": "it trained on other labels",
                "classes": f"it trained for the classes {saved.get(key)}, now {current.get(key)}",
                "embedder_crc32": "it fine-tuned an embedder with other weights",
            }.get(key, f"its {key} was {saved.get(key)}, now {current.get(key)}")
    changed = sorted(
        name
        for name in set(saved["params"]) | set(current["params"])
        if saved["params"].get(name) != current["params"].get(name)
    )
    text = (
        "the parameters "
        + ", ".join(
            f"{name}={_shorten(saved['params'].get(name))} "
            f"(now {_shorten(current['params'].get(name))})"
            for name in changed
        )
        + " differ"
    )
    if set(changed) & {"max_epochs", "mse_epochs", "pair_epochs"}:
        # the learning-rate schedule spans the epochs: more of them make another run
        text += (
            " (to train a fitted model further, call partial_fit or fit with "
            "warm_start=True; a checkpoint resumes only the run it was written by)"
        )
    return text


def _files_crc32(paths) -> int:
    """CRC of every file's size and modification time: a file rewritten since is another clip
    (reading every file to hash it would cost a pass over the corpus)."""
    stats = []
    for path in paths:
        try:
            info = os.stat(path)
            stats.append((info.st_size, info.st_mtime_ns))
        except OSError:
            stats.append((-1, -1))  # reading it reports the error with its name
    return zlib.crc32(np.asarray(stats, dtype=np.int64).tobytes())


def _holds_paths(X) -> bool:
    """Whether ``X`` starts with a file path rather than numbers (by its first entry: no
    copy of a large array; check_array reports anything mixed)."""
    if isinstance(X, list | tuple):
        return bool(X) and _is_path_like(X[0])
    dtype = getattr(X, "dtype", None)
    if dtype is None or isinstance(X, torch.Tensor):
        return False
    kind = getattr(dtype, "kind", None)
    if kind is None:  # another library's dtype (polars' String): its numpy form tells
        X = np.asarray(X)
        kind = X.dtype.kind
    if kind not in _TEXT_KINDS or not np.size(X):
        return False  # numbers
    return _is_path_like(np.asarray(X).flat[0])


def _other_clips(previous: str | None, current: str) -> bool:
    """Whether two fit fingerprints name different clips (or the same in another order)."""
    if previous is None:
        return False
    return json.loads(previous)["data_crc32"] != json.loads(current)["data_crc32"]


STAGES_EXPECTED = "a non-empty sequence of distinct stages in 1..4"


def _valid_stages(stages) -> bool:
    """Whether ``stages`` names distinct ESResNet stages (1–4): a ``stats_stages`` value."""
    return (
        isinstance(stages, Sequence | np.ndarray)
        and not isinstance(stages, str)
        and len(stages) > 0
        and all(_is_int(s) and 1 <= s <= 4 for s in stages)
        and len(set(stages)) == len(stages)
    )


def _bare(module):
    """The module inside a DistributedDataParallel wrapper (what the accelerator prepared)."""
    wrapped = isinstance(module, torch.nn.parallel.DistributedDataParallel)
    return module.module if wrapped else module


def _read_only(a) -> bool:
    return isinstance(a, np.ndarray) and not a.flags.writeable


class _ReadOnlyRows(Dataset):
    """skorch's Dataset over a read-only array (``np.load(mmap_mode='r')``, a joblib
    memmap in a worker): each row is copied as it is read, so torch never wraps read-only
    memory (its "not writable ... undefined behavior" warning) and the array is never
    copied whole."""

    def transform(self, X, y):
        X, y = super().transform(X, y)
        return tuple(np.array(a) if _read_only(a) else a for a in (X, y))


class _SequenceDataset(torch.utils.data.Dataset):
    """AFP's training sequences of all clips, ``(n, n_sequences, ...)`` flattened to one
    index without a copy: item ``k`` is ``(sequence, 0)`` (a DataLoader stacks a batch of
    them, skorch reads ``(X, y)``); a slice is the stacked sequences (for ``transform``)."""

    def __init__(self, sequences: torch.Tensor):
        self.sequences = sequences
        self.per_clip = sequences.shape[1]

    def __len__(self) -> int:
        return self.sequences.shape[0] * self.per_clip

    def __getitem__(self, index):
        if isinstance(index, slice):  # the batch's indices only, not all of them per batch
            r = range(len(self))[index]
            k = torch.arange(r.start, r.stop, r.step)
            return self.sequences[k // self.per_clip, k % self.per_clip]
        clip, j = divmod(int(index), self.per_clip)
        return self.sequences[clip, j].contiguous(), 0.0


def _loader_context():
    """The start method for DataLoader workers: ``None`` (torch's default) except inside a
    joblib (loky) worker, as ``cross_val_score(n_jobs=2)`` runs a fit. There the default
    start method is ``'loky'``, whose processes a DataLoader cannot start, and a spawned
    child cannot restore it (``cannot find context for 'loky'``): fork where the platform
    forks by default, else loky's own context, whose processes start on every platform."""
    if multiprocessing.get_start_method(allow_none=True) != "loky":
        return None
    if sys.platform.startswith("linux") and sys.version_info < (3, 14):
        return "fork"
    from joblib.externals.loky.backend.context import get_context

    return get_context("loky")


def _restarts_loky(context) -> bool:
    """Whether a DataLoader's start method starts fresh interpreters (spawn, forkserver)
    from inside a loky worker, whose children cannot restore its 'loky' start method."""
    if multiprocessing.get_start_method(allow_none=True) != "loky":
        return False
    method = context if isinstance(context, str) else getattr(context, "_name", None)
    return method in ("spawn", "forkserver")


@contextlib.contextmanager
def _sigint_noted():
    """A list that holds True once Ctrl-C (SIGINT) arrived inside the block; the handler in
    place still runs (Python's raises the KeyboardInterrupt that skorch then swallows).
    Outside the main thread, or where SIGINT is ignored or handled outside Python, nothing
    is changed and the list stays empty."""
    noted: list[bool] = []
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL, or None (a handler not set from Python)
        yield noted
        return

    def on_sigint(signum, frame):
        noted.append(True)
        previous(signum, frame)

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: a SIGINT is handled there, not here
        yield noted
        return
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


class _TorchNetMixin(DocLinkMixin, AccelerateMixin):
    """What every sklaudio skorch net shares: ``device='auto'``, seeding, input checks,
    checkpoints, pickle-free persistence and the optional ``accelerator``.

    With ``accelerator=None`` every hook of skorch's :class:`~skorch.hf.AccelerateMixin`
    falls through to plain skorch; with a Hugging Face ``Accelerator`` the modules,
    optimizer and DataLoaders are prepared by it (data-parallel over its processes, its
    mixed precision) and unwrapped after training.
    """

    # AccelerateMixin's state, without its __init__ (which makes accelerator mandatory and
    # adds a print-sink parameter that initialisation would overwrite).
    _wrapped_with_accelerator = False
    unwrap_after_train = True

    # skorch arguments that the subclass fixes; they are not parameters.
    _fixed_params: tuple[str, ...] = ("module", "criterion", "train_split")
    # Fitted attributes besides the torch state, saved by persist.save and checkpoints.
    _persisted_attributes: tuple[str, ...] = (
        "seed_",
        "n_features_in_",
        "feature_names_in_",
        "input_shape_",
        "spectrogram_shape_",
    )
    # Parameters that set_params on a fitted net applies at once (_apply_live), and those
    # that shape the network (a change waits for the next fit that builds one, with a warning).
    _live_params: tuple[str, ...] = ()
    _structural_params: tuple[str, ...] = ("frontend", "random_state")
    # Parameters that may change between an interrupted fit and its resumption.
    _resumable_params: tuple[str, ...] = (
        "verbose",
        "callbacks",
        "checkpoint",
        "device",
        "accelerator",
    )

    # Set by a fit that went through (with a built network: initialized_).
    _fitted_attribute = "input_shape_"
    # whether clips of another length than fit's (the last axis) may be given after fit
    _any_length: bool = False

    def __sklearn_is_fitted__(self) -> bool:
        # skorch sets history_, initialized_, ... in __init__: scikit-learn's default test
        # (any attribute ending in "_") would call every new net fitted
        return bool(getattr(self, "initialized_", False)) and hasattr(self, self._fitted_attribute)

    # Why a fixed argument cannot be passed, by name.
    _fixed_reasons: dict[str, str] = {
        "module": "the network is built from its parameters (backbone, ...)",
        "criterion": "the loss is built from its parameters",
        "train_split": "it trains on every clip (no labels, nothing to validate)",
    }

    def __init__(self, *args, **kwargs):
        super(AccelerateMixin, self).__init__(*args, **kwargs)

    @classmethod
    def _full_signature(cls) -> inspect.Signature:
        """The ``__init__`` signature with skorch's own parameters (``callbacks``,
        ``iterator_train``, ...) spelled out at the defaults the class gives them, so
        that scikit-learn's repr of a Pipeline or grid search shows only the parameters
        the user changed, not every skorch default."""
        own = inspect.signature(cls.__init__)
        named = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        present = {p.name for p in named}
        defaults = cls().get_params(deep=False)
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value)
            for name, value in defaults.items()
            if name not in present and "__" not in name
        ]
        rest = [p for p in own.parameters.values() if p.kind is p.VAR_KEYWORD]
        return own.replace(parameters=[*named, *extra, *rest])

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # sklaudio's own estimators only: the defaults come from an instance, and a
        # user's subclass must not be instantiated when it is defined
        if "__init__" in vars(cls) and cls.__module__.startswith("sklaudio."):
            cls.__init__.__signature__ = cls._full_signature()

    # scikit-learn's repr (the parameters the user set), as in a Pipeline, rather than
    # skorch's "<class ...>[uninitialized](module=...)"; the network is in module_. The
    # function itself, so that sklearn's pretty-printer also wraps it inside a Pipeline.
    __repr__ = BaseEstimator.__repr__

    # skorch's bookkeeping, not what a user fitted (left out of the notebook display)
    _internal_attributes = frozenset(
        {"virtual_params_", "prefixes_", "cuda_dependent_attributes_", "init_context_"}
    )

    def _get_params_html(self, *args, **kwargs):  # (sklearn 1.7 has no doc_link)
        # The notebook's parameter table: skorch expands every callback into
        # callbacks__<name>__<attribute> entries, absent from the signature and so all shown
        # as set by the user; the callbacks parameter itself stays.
        params = BaseEstimator._get_params_html(self, *args, **kwargs)
        for name in [name for name in params if name.startswith("callbacks__")]:
            del params[name]
        params.non_default = tuple(name for name in params.non_default if name in params)
        return params

    def _get_fitted_attr_html(self, *args, **kwargs):
        attrs = BaseEstimator._get_fitted_attr_html(self, *args, **kwargs)
        for name in self._internal_attributes & set(attrs):
            del attrs[name]
        return attrs

    # -- metadata: fit and partial_fit consume none ---------------------------------
    # skorch hands fit's keyword arguments to the network's forward and to train_split, and
    # lets set_fit_request request any name. sklaudio's networks take no other input than
    # the clips, so any name failed inside the first batch (a torch TypeError); every name
    # is refused, when requested or passed, with the method the user called.

    def _refuse_metadata(self, method: str, names, setter: str | None = None) -> None:
        """Refuse metadata ``names`` given to ``method`` (or requested by ``setter``)."""
        names = sorted(names)
        if not names:
            return
        name, listed = type(self).__name__, ", ".join(map(repr, names))
        if setter is not None:
            got = f"{name}.{setter} got {listed}, but {name}.{method} takes no metadata"
        else:
            got = f"{name}.{method} got the unexpected argument(s) {listed}: it takes no metadata"
        if "sample_weight" in names:
            raise TypeError(
                f"{name} does not support sample_weight: every clip counts once ({got})"
            )
        raise TypeError(
            f"{got} (its network reads the clips only). With metadata routing, route them "
            "only to the steps that consume them (groups to a CV splitter)"
        )

    def _check_fit_params(self, fit_params: dict, method: str = "fit") -> None:
        self._refuse_metadata(method, fit_params)

    def set_fit_request(self, **kwargs):
        """Request metadata for ``fit`` under metadata routing: ``fit`` takes none.

        skorch's own ``set_fit_request`` takes any name; ``fit`` here consumes
        no metadata (no ``sample_weight``, no ``groups``), so any name raises a
        TypeError, as scikit-learn's setters do for a name their method lacks.

        Parameters
        ----------
        **kwargs : dict
            Must be empty.

        Returns
        -------
        self : object
        """
        self._refuse_metadata("fit", kwargs, setter="set_fit_request")
        return self  # nothing to request (skorch < 1.3 and scikit-learn 1.6 define no setter)

    def set_partial_fit_request(self, **kwargs):
        """Request metadata for ``partial_fit`` under metadata routing: it takes none.

        Parameters
        ----------
        **kwargs : dict
            Must be empty (``classes`` is a parameter, not metadata).

        Returns
        -------
        self : object
        """
        self._refuse_metadata("partial_fit", kwargs, setter="set_partial_fit_request")
        return self

    def get_metadata_routing(self):
        """The metadata routing of this estimator: a consumer that requests nothing.

        skorch's routing also routes ``fit``'s metadata to ``train_split``'s CV
        splitter, but the same arguments would then reach the network, which
        takes none: nothing is routed.

        Returns
        -------
        routing : MetadataRequest
        """
        return self._get_metadata_request()

    def _train(self, X, y, resumable=False, **fit_params) -> None:
        """skorch's ``partial_fit``, with a warning when it stops early: skorch ends training
        quietly on a KeyboardInterrupt (Ctrl-C in a notebook, or a callback that stops it)
        and keeps the model as it is. ``resumable``: called by ``fit``, which a checkpoint
        resumes."""
        expected = fit_params.get("epochs")
        expected = self.max_epochs if expected is None else expected
        self._epochs_completed = self._epochs_begun = 0
        self._epochs_planned = expected  # for the progress bar (a resumed fit runs fewer)
        with _sigint_noted() as interrupted:
            try:
                NeuralNet.partial_fit(self, X, y, **fit_params)
            except BaseException:  # (a non-finite loss, a worker's error): completed epochs
                if self._epochs_begun > self._epochs_completed and len(self.history_) > 0:
                    del self.history_[-1]
                raise
        # leave the modules in eval mode, as transform leaves them: a fitted estimator's
        # state (and joblib.hash, Pipeline(memory=...)'s key) does not change on its first
        # transform (skorch sets training mode again at every training step)
        self._set_training(False)
        done = self._epochs_completed
        partial = self._epochs_begun > done and len(self.history_) > 0
        if partial:
            # an epoch cut short leaves a row without its losses, which history_[:, key]
            # and the learning-curve display cannot read: history_ keeps completed epochs
            del self.history_[-1]
        # a SIGINT handler of the user's own that raised nothing (a graceful-stop flag)
        # leaves the fit complete: nothing to stop then
        interrupted = interrupted and done < expected
        if expected and done < expected and not self._stopped_early() and is_main_process(self):
            if resumable and self.checkpoint is not None:
                advice = " Fit again to resume from the last completed epoch (checkpoint=)."
            else:
                advice = " partial_fit trains it further."
            cut = " (the interrupted epoch's updates are kept, not its history row)"
            why = "Ctrl-C" if interrupted else "Ctrl-C, or a callback ended it"
            warn_user(
                f"{type(self).__name__}: training stopped after {done} of {expected} epochs "
                f"({why}); the model keeps its weights as they were "
                f"then{cut if partial else ''}.{advice}",
            )
        if interrupted:
            # skorch ends training quietly, which would let a grid search, cross_val_score
            # or the rest of a script go on with a cut-short model: Ctrl-C stops them too
            raise KeyboardInterrupt

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)  # (skorch adds the epoch's history row here)
        self._epochs_begun = getattr(self, "_epochs_begun", 0) + 1

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        self._epochs_completed = getattr(self, "_epochs_completed", 0) + 1

    def _stopped_early(self) -> bool:
        """Whether skorch's EarlyStopping ended training (it does so by raising a
        KeyboardInterrupt too, but on purpose)."""
        from skorch.callbacks import EarlyStopping

        return any(
            isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience
            for _, cb in getattr(self, "callbacks_", [])
        )

    @classmethod
    def _refuse_fixed(cls, kwargs) -> None:
        """Raise on skorch arguments that the class sets itself, instead of dropping them."""
        for name in cls._fixed_params:
            if name in kwargs:
                reason = cls._fixed_reasons.get(name, f"{cls.__name__} sets it itself")
                raise TypeError(f"{cls.__name__} does not take {name}=: {reason}")
        for key in kwargs:
            part, sep, _ = key.partition("__")
            if sep and part in ("module", "criterion", "memory_bank"):
                raise TypeError(
                    f"{cls.__name__} does not take {key}=: it builds its {part.replace('_', ' ')} "
                    "from its own parameters (see get_params()), so the argument would be "
                    "ignored, and on a fitted estimator would replace the trained network"
                )

    @classmethod
    def _param_names(cls) -> set[str]:
        """The parameters ``__init__`` takes by name: those of every ``__init__`` on the
        way to skorch's, so that a subclass written the skorch way (``def __init__(self,
        extra=1, **kwargs)``, passing ``**kwargs`` on) keeps its parents' parameters."""
        names = set()
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                names |= {
                    p.name
                    for p in inspect.signature(klass.__init__).parameters.values()
                    if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                }
            if klass is NeuralNet:
                break
        return names - {"self"}

    @classmethod
    def _refuse_unknown(cls, keys, method: str = "__init__") -> None:
        """Refuse misspelled parameter names when they are given (``embeding_dim=3``,
        ``frontnd__n_mels=``), naming the closest one; skorch would keep them until fit,
        or until the first fit of a grid search. ``method`` is ``'__init__'`` (a
        TypeError, as Python raises) or ``'set_params'`` (scikit-learn's ValueError)."""
        names = cls._param_names()
        prefixes = names | set(NeuralNet.prefixes_) | {"optimizer"}
        for key in keys:
            part, sep, _ = key.partition("__")
            if key.endswith("_") or (part in prefixes if sep else key in names):
                continue  # (skorch also lets names ending in "_" through)
            if key == "kwargs":  # scikit-learn's check_do_not_raise_errors_in_init_or_set_params
                continue  # passes the signature's **kwargs by name; skorch refuses it at fit
            # not a parameter the estimator then refuses (module=, classes=)
            settable = names - set(cls._fixed_params)
            choices = [f"{p}__" for p in sorted(prefixes)] if sep else settable
            hint = did_you_mean(f"{part}__" if sep else key, choices)
            for prefix in sorted(prefixes, key=len, reverse=True):
                if not sep and key.startswith(prefix + "_"):  # iterator_train_shuffle
                    hint = f" (did you mean {prefix + '__' + key[len(prefix) + 1 :]!r}?)"
                    break
            name = cls.__name__
            valid = f"see {name}().get_params() for the valid ones"
            if method == "set_params":
                raise ValueError(f"Invalid parameter {key!r} for estimator {name}{hint}; {valid}")
            raise TypeError(
                f"{name}.__init__() got an unexpected keyword argument {key!r}{hint}; {valid}"
            )

    # -- the accelerator (None: plain skorch) ----------------------------------------------

    @property
    def _accelerated(self) -> bool:
        accelerator = getattr(self, "accelerator", None)
        if accelerator is None:
            return False
        if not (hasattr(accelerator, "prepare") and hasattr(accelerator, "device")):
            raise ValueError(
                f"accelerator must be None or an accelerate.Accelerator, got {accelerator!r}"
            )
        return True

    def _n_processes(self) -> int:
        return self.accelerator.num_processes if self._accelerated else 1

    def _process_index(self) -> int:
        return self.accelerator.process_index if self._accelerated else 0

    def _autocast(self):
        return self.accelerator.autocast() if self._accelerated else contextlib.nullcontext()

    def _backward(self, loss) -> None:
        if self._accelerated:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def _skorch_hooks(self):
        """AccelerateMixin's hooks with an accelerator, plain skorch's without."""
        return super() if self._accelerated else super(AccelerateMixin, self)

    def _validate_params(self):
        # skorch's checks only: with an accelerator, _resolved_device sets its device.
        super(AccelerateMixin, self)._validate_params()

    def _initialize_callbacks(self):
        return super(AccelerateMixin, self)._initialize_callbacks()

    def _prepare_modules(self) -> None:
        for name in (*self._modules, *self._criteria):
            module = getattr(self, name + "_")
            if not isinstance(module, torch.nn.Module):
                continue
            if any(p.requires_grad for p in module.parameters()):
                module = self.accelerator.prepare(module)
            else:  # DDP refuses modules with nothing to train (memory bank, losses)
                module = module.to(self.accelerator.device)
            setattr(self, name + "_", module)
        self._wrapped_with_accelerator = True

    def initialize(self):
        self._wrapped_with_accelerator = False  # new modules (also after a failed fit)
        # a fit builds a new network, as sklearn's estimators refit from scratch: skorch's
        # "Re-initializing module." lines on every refit with verbose tell nothing
        self.initialized_ = False
        return super().initialize()

    def _initialize_accelerator(self):
        if not self._accelerated or self._wrapped_with_accelerator:
            return self
        self._prepare_modules()
        for name in self._optimizers:
            setattr(self, name + "_", self.accelerator.prepare(getattr(self, name + "_")))
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        if self._accelerated and not self._wrapped_with_accelerator:
            # partial_fit after a fit that unwrapped the modules, or an accelerator set on
            # a net initialised without one (its optimizer is a plain torch one then)
            from accelerate.optimizer import AcceleratedOptimizer

            self._prepare_modules()
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if not isinstance(optimizer, AcceleratedOptimizer):
                    setattr(self, name + "_", self.accelerator.prepare(optimizer))

    def train_step(self, batch, **fit_params):
        if self._device_unresolved():
            with self._resolved_device():
                return self._skorch_hooks().train_step(batch, **fit_params)
        return self._skorch_hooks().train_step(batch, **fit_params)

    def train_step_single(self, batch, **fit_params):
        step = self._skorch_hooks().train_step_single(batch, **fit_params)
        self._check_finite_loss(step["loss"])
        return step

    def _check_finite_loss(self, loss) -> None:
        """Stop at a NaN or infinite loss, before the optimizer steps with its gradients (it
        would turn every weight into NaN, and the rest of the fit with them). On a GPU this
        reads one flag per batch before the step (skorch reads the loss itself after it).
        With several processes every one gets the flags of all, so that all stop together
        (one stopping alone would leave the others waiting in a collective)."""
        finite = torch.isfinite(loss.detach()).all()
        if self._n_processes() > 1:
            finite = self.accelerator.gather(finite.reshape(1)).all()
        if bool(finite):
            return
        raise ValueError(
            f"{type(self).__name__}: the training loss is {float(loss.detach()):g} in epoch "
            f"{len(self.history_)}; training stopped before the weights took its gradients. "
            "Usually the input: waveforms far outside [-1, 1] (samples of 1e15 and more "
            "overflow float32 powers into inf), or spectrograms that hold inf; else "
            f"lr={self.lr} is too high"
        )

    def _step_optimizer(self, step_fn):
        return self._skorch_hooks()._step_optimizer(step_fn)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self._n_processes() > 1:
            # DDP copies buffers from the main process at the start of each forward, so the
            # last step's batch-norm statistics still differ: every process ends with the
            # main process's model.
            for name in self._modules:
                for buffer in _bare(getattr(self, name + "_")).buffers():
                    torch.distributed.broadcast(buffer, src=0)
        return self._skorch_hooks().on_train_end(net, X=X, y=y, **kwargs)

    def evaluation_step(self, batch, training=False):
        if self._device_unresolved():
            with self._resolved_device():
                return self._skorch_hooks().evaluation_step(batch, training=training)
        return self._skorch_hooks().evaluation_step(batch, training=training)

    def save_params(self, *args, **kwargs):
        with self._auto_resolved():
            return self._skorch_hooks().save_params(*args, **kwargs)

    def load_params(self, *args, **kwargs):
        # (skorch maps the tensors to self.device: 'auto' is no torch device; also for
        # skorch's LoadInitState, which swallows the error)
        with self._auto_resolved():
            return self._skorch_hooks().load_params(*args, **kwargs)

    @contextlib.contextmanager
    def _auto_resolved(self):
        """device='auto' resolved for skorch's own methods; any other device is left to
        skorch (load_params maps 'cuda' to the CPU, with a warning, where there is none)."""
        if not self._device_unresolved():
            yield
            return
        with self._resolved_device():
            yield

    # -- parameters, device, randomness ------------------------------------------------------

    def set_params(self, **params):
        """Set parameters, as skorch does (``iterator_valid__num_workers=0`` and other
        DataLoader or dataset arguments also work on a fitted net)."""
        self._refuse_fixed(params)  # (sklearn's "Invalid parameter" would not say why)
        self._refuse_unknown(params, "set_params")
        fitted = getattr(self, "initialized_", False) and self.__sklearn_is_fitted__()
        watched = ("optimizer", *self._live_params, *self._structural_params)
        before = {k: getattr(self, k, _MISSING) for k in params if k in watched} if fitted else {}
        self._set_params(params)
        changed = [k for k, v in before.items() if not _same(getattr(self, k, _MISSING), v)]
        if changed:
            self._apply_changed(changed, before)
        return self

    def _apply_changed(self, changed: list, before: dict) -> None:
        """After ``set_params`` on a fitted net: use the new values of what training reads
        (``_live_params``, a new optimizer) at once, and say that what shapes the network
        (``_structural_params``) waits for the next ``fit`` that builds one."""
        live = [k for k in changed if k in self._live_params]
        if live:
            try:
                self._apply_live(live)  # (which checks the new values first)
            except Exception:
                for k in changed:  # refused: the estimator stays as it was
                    setattr(self, k, before[k])
                raise
        if "optimizer" in changed:
            with self._resolved_device():
                self._initialize_optimizer()  # a fresh one, for the epochs that follow
        structural = [k for k in changed if k in self._structural_params]
        if structural:
            old = ", ".join(f"{k}={before[k]!r}" for k in structural)
            warn_user(
                f"{type(self).__name__}: set_params({', '.join(structural)}=...) on a fitted "
                "estimator shapes the network that the next fit() builds; until then "
                f"transform/predict, partial_fit and warm-start fits use the fitted one ({old})"
            )

    def _apply_live(self, names: list) -> None:
        """Make the fitted net use the new values of ``names`` (see ``_live_params``)."""

    # SpectrogramAugment's settings other than its defaults, per class
    _augment_settings: dict = {}

    def _new_augment(self):
        """The spectrogram augmentation of ``augment`` (None when off), seeded per process:
        the class's settings, updated by those of an ``augment`` dict."""
        if isinstance(self.augment, dict):
            settings = {**self._augment_settings, **self.augment}
        elif self.augment:
            settings = self._augment_settings
        else:
            return None
        seed = self._seed() + 3 + 7919 * self._process_index()
        return SpectrogramAugment(seed=seed, **settings)

    def _check_augment(self) -> tuple:
        """``augment``'s check for ``_raise_on_failed``: True, False or a dict of
        SpectrogramAugment settings (refused here, with SpectrogramAugment's reason)."""
        allowed = [
            name for name in inspect.signature(SpectrogramAugment).parameters if name != "seed"
        ]
        expected = f"True, False or a dict of SpectrogramAugment settings ({', '.join(allowed)})"
        value = self.augment
        if isinstance(value, dict):
            unknown = sorted(str(k) for k in value if k not in allowed)
            if unknown:
                hint = did_you_mean(unknown[0], allowed)
                raise ValueError(f"augment has unknown setting(s) {unknown}{hint}; {expected}")
            try:
                SpectrogramAugment(**value)
            except ValueError as exc:
                raise ValueError(f"augment: {exc}") from None
            return ("augment", True, expected)
        return ("augment", isinstance(value, bool | np.bool_), expected)

    def _set_params(self, params: dict) -> None:
        # skorch 1.4 raises "Something went wrong" for iterator_*__ / dataset__ keys once the
        # net is initialised, although they need no re-initialisation: they are read
        # whenever a DataLoader is made, so they are set as attributes here.
        loader_keys = ("iterator_train__", "iterator_valid__", "dataset__")
        direct = {k: v for k, v in params.items() if k.startswith(loader_keys)}
        if direct and getattr(self, "initialized_", False):
            vars(self).update(direct)
            self._params_to_validate.update(direct)
            params = {k: v for k, v in params.items() if k not in direct}
        if "callbacks" in params and not getattr(self, "initialized_", False):
            # skorch builds callbacks as soon as they are set; before fit they are only
            # stored (sklearn's convention: fit validates), and fit builds them
            self.callbacks = params.pop("callbacks")
        # 'frontend__n_mels', 'embedder__nce_t': parameters of an estimator-valued
        # parameter go to that estimator, as in sklearn (skorch would keep them as
        # attributes of their own and refuse them at fit)
        nested: dict[str, dict] = {}
        estimators = self._estimator_valued_params(params)
        for key in list(params):
            name, sep, sub = key.partition("__")
            if sep and name in estimators:
                nested.setdefault(name, {})[sub] = params.pop(key)
            elif sep and name in ("frontend", "embedder"):
                value = params.get(name, getattr(self, name, None))
                raise ValueError(
                    f"cannot set {key}: {name} is {value!r}, not an estimator with parameters"
                )
        special = {}
        if getattr(self, "initialized_", False):
            # skorch re-initialises the network (new random weights) when compile= or a
            # module__/criterion__ argument is set on a fitted net, even to the value it
            # has, and fails on optimizer=/dataset=...: set_params(**est.get_params()) would
            # throw the fitted weights away. Such arguments are set only when they change.
            if "optimizer" in params and not _same(params["optimizer"], self.optimizer):
                # skorch fails ("Something went wrong") on a new
                self.optimizer = params.pop("optimizer")  # optimizer: set_params makes it,
                for key in [key for key in params if key.startswith("optimizer__")]:
                    vars(self)[key] = params.pop(key)  # with this call's arguments
            prefixes = tuple(getattr(self, "prefixes_", ()))
            current = self.get_params()
            for k in [k for k in params if k.startswith(prefixes) or "__" in k]:
                if k == "callbacks" and not self._runs_callbacks(params[k]):
                    continue  # new callbacks (a list changed in place, say): rebuilt
                value = params.pop(k)
                if not _same(value, current.get(k, _MISSING)):  # (the callbacks' in use)
                    special[k] = value
        if params:
            super().set_params(**params)
        if special:  # (device= and accelerator= set first: a new network goes there)
            with self._resolved_device():
                super().set_params(**special)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)

    def _get_params_callbacks(self, deep=True):
        # skorch reports a fresh default callback's parameters for every default name,
        # over those of the callback the net runs and over callbacks__x__y values the user
        # set: get_params then disagrees with the net, and set_params(**get_params())
        # resets them. The values in use win here; the callback objects stay skorch's (a
        # fitted callback's state would count as a parameter changed by fit).
        params = super()._get_params_callbacks(deep=deep)
        if not deep:
            return params
        live = dict(getattr(self, "callbacks_", []))
        for key in list(params):
            name, _, sub = key[len("callbacks__") :].partition("__")
            if not sub:
                continue
            if key in vars(self):
                params[key] = vars(self)[key]
            elif live.get(name) is not None:
                params[key] = live[name].get_params().get(sub, params[key])
        return params

    def _runs_callbacks(self, callbacks) -> bool:
        """Whether the net already runs every callback of ``callbacks`` (the object)."""
        if callbacks is None or callbacks == "disable":
            return True
        live = [id(cb) for _, cb in getattr(self, "callbacks_", [])]
        given = [cb[1] if isinstance(cb, tuple) else cb for cb in callbacks]
        return all(id(cb) in live for cb in given)

    def _estimator_valued_params(self, params: dict) -> set[str]:
        """Parameters whose value (the new one where ``params`` sets it) is an estimator."""
        names = set()
        for name in self._get_param_names():
            value = params.get(name, getattr(self, name, None))
            if hasattr(value, "set_params") and not isinstance(value, type):
                names.add(name)
        return names

    def _get_param_names(self):
        # skorch lists every attribute that does not end in "_"; private ones and the
        # fixed skorch arguments are not parameters.
        return [
            name
            for name in super()._get_param_names()
            if name not in self._fixed_params and not name.startswith("_")
        ]

    @contextlib.contextmanager
    def _resolved_device(self):
        # skorch reads self.device everywhere; 'auto' is resolved for the duration
        # of a call so that get_params still returns the parameter as given.
        requested = self.device
        if self._accelerated:
            self.device = str(self.accelerator.device)  # the accelerator places everything
        elif requested == "auto" or requested is None:
            self.device = str(resolve_device("auto"))
        else:
            _check_device_available(requested)
        try:
            yield
        finally:
            self.device = requested

    def _device_unresolved(self) -> bool:
        return self.device in ("auto", None) and not self._accelerated

    # skorch's own entry points (train_step, evaluation_step, forward_iter), called by
    # users of its API outside fit/transform: 'auto' is resolved there too (torch knows
    # no 'auto' device).
    def forward_iter(self, X, training=False, device="cpu"):
        """The module's outputs batch by batch (see :meth:`skorch.NeuralNet.forward_iter`)."""
        batches = super().forward_iter(X, training=training, device=device)
        if not self._device_unresolved():
            yield from batches
            return
        while True:  # resolved per batch: between batches get_params() shows 'auto' again
            with self._resolved_device():
                try:
                    batch = next(batches)
                except StopIteration:
                    return
            yield batch

    def validation_step(self, batch, **fit_params):
        """One skorch validation step (see :meth:`skorch.NeuralNet.validation_step`)."""
        if self._device_unresolved():
            with self._resolved_device():
                return super().validation_step(batch, **fit_params)
        return super().validation_step(batch, **fit_params)

    def __setstate__(self, state):
        # A pickle from an older sklaudio lacks the parameters added since: their defaults.
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if param.kind is param.POSITIONAL_OR_KEYWORD and param.default is not param.empty:
                state.setdefault(name, param.default)
        requested = state.get("device")
        if requested == "auto":
            state["device"] = str(resolve_device("auto"))
        snapshot = state.pop("_rng_snapshot", None)
        blob = state.get("__cuda_dependent_attributes__")
        if isinstance(blob, bytes) and blob.startswith(b"PK\x03\x04"):  # __getstate__'s
            from skorch.utils import get_map_location

            with warnings.catch_warnings():
                # (skorch says "no CUDA" twice: here, and in _check_device just below)
                warnings.filterwarnings("ignore", message="Requested to load data to CUDA")
                map_location = get_map_location(state["device"])
            state["device"] = self._check_device(state["device"], map_location)
            # (the modules themselves, as skorch's own unpickling loads them: pickles run
            # code, so only unpickle what you trust)
            state.update(
                torch.load(io.BytesIO(blob), map_location=map_location, weights_only=False)
            )
            del state["__cuda_dependent_attributes__"]
            self.__dict__.update(state)
        else:  # a pickle from an older sklaudio: skorch's own format
            super().__setstate__(state)
        if requested == "auto":
            self.device = "auto"
        if snapshot:
            self._set_rng_states(snapshot)

    def __getstate__(self):
        # skorch's __getstate__, but its torch attributes (modules, optimizers, criteria)
        # written by torch.save: skorch pickles them, and a pickled tensor's storage is
        # named by its memory address, so one fitted model gave other bytes after every
        # copy (joblib.hash, the key of Pipeline(memory=...) and of dask, changed with them)
        state = self.__dict__.copy()
        prefixes = tuple(self.cuda_dependent_attributes_)
        torch_state = {k: state.pop(k) for k in list(state) if str(k).startswith(prefixes)}
        buffer = io.BytesIO()
        torch.save(torch_state, buffer)
        state["__cuda_dependent_attributes__"] = buffer.getvalue()
        # torch generators do not pickle: their states do, so that training continued
        # after unpickling draws what it would have drawn in memory
        state.pop("_generators", None)
        if getattr(self, "initialized_", False):
            # as numpy arrays: joblib.hash of a fresh tensor differs from call to call, which
            # made Pipeline(memory=...) miss its cache for every fitted net
            state["_rng_snapshot"] = {k: v.numpy() for k, v in self._rng_states().items()}
        return state

    # parameters that must be True or False (a string such as 'no' would read as True)
    _bool_params: tuple[str, ...] = ("mixed_precision",)

    def _common_checks(self) -> list:
        """Checks of the parameters every sklaudio net has, for ``_raise_on_failed``."""
        checks = [
            (name, isinstance(getattr(self, name), bool | np.bool_), "True or False")
            for name in self._bool_params
        ]
        if "augment" in self._param_names():
            checks.append(self._check_augment())
        ok = isinstance(self.verbose, Integral | np.bool_) and self.verbose >= 0
        checks.append(("verbose", ok, "an integer >= 0"))
        checks.append(("lr", _is_real(self.lr) and self.lr >= 0, "a number >= 0"))
        checks.append(
            (
                "optimizer",
                callable(self.optimizer),
                "a torch optimizer class such as torch.optim.AdamW (or a callable that makes one "
                "from the parameters and lr)",
            )
        )
        return checks

    def _raise_on_failed(self, checks) -> None:
        """``checks``: ``(parameter name, holds, what it must be)``; raise on the first failure."""
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")

    def _reset_randomness(self) -> None:
        # A new fit draws a new seed from random_state and rebuilds the generators.
        self.__dict__.pop("seed_", None)
        self.__dict__.pop("_generators", None)

    def _seed(self) -> int:
        if not hasattr(self, "seed_"):
            # One integer drives every source of randomness (init, shuffling, sampling, masks).
            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            if self._n_processes() > 1:
                from accelerate.utils import broadcast_object_list

                # every process builds the same networks (and NPID's memory bank)
                seed = int(broadcast_object_list([seed])[0])
            self.seed_ = seed
        return self.seed_

    def _generator(self, name: str, device) -> torch.Generator:
        generators = self.__dict__.setdefault("_generators", {})
        key = (name, str(device))
        if key not in generators:
            offset = {"shuffle": 1, "sample": 2, "augment": 3}.get(name, 0)
            if name != "shuffle":  # each process draws its own negatives and masks
                offset += 7919 * self._process_index()
            generators[key] = torch.Generator(device=device).manual_seed(self._seed() + offset)
        return generators[key]

    def _check_paths(self, X, reset: bool) -> np.ndarray:
        """Audio paths for a frontend that starts with an AudioReader (streaming)."""
        paths = _as_path_list(X)
        if paths is None:
            try:
                shape = np.shape(X)
            except ValueError:  # ragged
                shape = (len(X),)
            raise ValueError(
                f"{type(self).__name__}'s frontend starts with an AudioReader, so X must be a 1-d "
                f"array of audio file paths, got an array of shape {shape}; pass paths, or drop "
                "the AudioReader from the frontend to pass waveforms"
            )
        if not paths:
            raise ValueError(f"X holds 0 paths; {type(self).__name__} needs at least one clip")
        if reset:
            # The first file fixes the clip shape and fails early if it is unreadable.
            wave, _ = AudioFileDataset(paths[:1], self._frontend_steps()[0])[0]
            self.input_shape_ = tuple(wave.shape)
            self.__dict__.pop("n_features_in_", None)  # paths have no feature axis
        return np.asarray(paths, dtype=object)

    def _check_input(self, X, reset: bool) -> np.ndarray:
        """Float32 waveforms (with a frontend) or spectrograms (without), finite, right ndim;
        a 1-d array of paths when the frontend starts with an AudioReader."""
        refuse_none(X, type(self).__name__)
        reader, step = self._frontend_steps()
        _check_feature_names(self, X, reset=reset)  # a DataFrame's columns, as in sklearn
        if reset and hasattr(step, "_check_settings"):  # a frontend is never fitted: check it
            step._warn_settings(step._check_settings())
        rates = (getattr(reader, "sample_rate", None), getattr(step, "sample_rate", None))
        # (only log-mel reads its sample_rate: the mel bands; checked when fitting, so that
        # a model saved before this check still transforms)
        if reset and getattr(step, "kind", None) == "log_mel" and None not in rates:
            if rates[0] != rates[1]:
                raise ValueError(
                    f"frontend: its AudioReader gives waveforms at sample_rate={rates[0]} Hz, "
                    f"but its {type(step).__name__}('log_mel') builds its mel bands for "
                    f"sample_rate={rates[1]} Hz; give both the same sample_rate"
                )
        if reader is not None:
            paths = self._check_paths(X, reset)
            self._check_frontend_output(reset)
            return paths
        if _holds_paths(X):
            frontend = self._frontend()
            if frontend is not None:  # its own spectrogram step: it reads waveforms
                rate = getattr(frontend, "sample_rate", None)
                at = f" at {rate} Hz" if rate else ""
                shape = getattr(self, "input_shape_", None)
                seconds = (
                    f", duration={shape[-1] / rate:g}"
                    if shape is not None and rate and not self._any_length
                    else ""
                )
                advice = (
                    f"decode the files first, e.g. with sklaudio.io.AudioReader("
                    f"sample_rate={rate}{seconds}) (its front end turns the waveforms{at} "
                    "into spectrograms)"
                )
            else:
                advice = (
                    "decode the files first (sklaudio.io.AudioReader, then a "
                    "SpectrogramTransformer)"
                )
            what = "waveforms" if frontend is not None else "spectrograms"
            raise ValueError(
                f"X holds audio file paths, but this {type(self).__name__} reads {what}: "
                f"{advice}, or stream them with frontend=make_pipeline("
                "AudioReader(duration=...), SpectrogramTransformer(...))"
            )
        if self._frontend() is not None:
            check_waveform_input(X, type(self).__name__)  # one 1-d waveform: the fix
        X = check_array(
            pcm_to_float(X) if self._frontend() is not None else X,  # waveforms, as decoded
            allow_nd=True,
            dtype=np.float32,
            ensure_all_finite=True,
            input_name="X",
            ensure_min_samples=1,
        )
        if self._frontend() is None:
            if X.ndim == 3:  # (n, F, T): one channel
                X = X[:, None]
            if X.ndim != 4:
                raise ValueError(
                    f"{type(self).__name__} without a frontend expects spectrograms of shape "
                    f"(n_clips, channels, n_freq, n_frames), got an array of shape {X.shape}; "
                    "put a SpectrogramTransformer before it or pass frontend="
                )
        elif X.ndim not in (2, 3):
            raise ValueError(
                f"with a frontend, {type(self).__name__} expects waveforms of shape "
                f"(n_clips, n_samples) or (n_clips, n_channels, n_samples), got {X.shape}"
            )
        else:
            check_waveforms_not_empty(X)  # (and channels first)
        if reset:
            self.n_features_in_ = X.shape[1]
            self.input_shape_ = X.shape[1:]
        elif self._any_length and X.ndim >= 3 and X.shape[1:-1] == tuple(self.input_shape_)[:-1]:
            # another length: the model reads any (AFP averages over a clip's sequences). Not
            # for 2-d waveforms, whose samples are scikit-learn's features (n_features_in_)
            pass
        elif X.shape[1] != getattr(self, "n_features_in_", self.input_shape_[0]):
            # (a model fitted on paths has no n_features_in_; its decoded clips' shape counts)
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.input_shape_[0]} features as input (shape per clip {X.shape[1:]}, fitted "
                f"on {tuple(self.input_shape_)})"
            )
        elif X.shape[1:] != tuple(self.input_shape_):
            raise ValueError(
                f"X has shape {X.shape[1:]} per clip, but {type(self).__name__} was fitted on "
                f"{tuple(self.input_shape_)}; use the same front end and clip duration as in fit"
            )
        self._check_frontend_output(reset)
        return X

    def _check_frontend_output(self, reset: bool) -> None:
        """A SpectrogramTransformer front end runs live at transform; one whose parameters
        changed since fit (``set_params(frontend__n_mels=...)``) gives the network images of
        another shape: refused rather than embedded."""
        step = self._frontend_steps()[1]
        if not hasattr(step, "_check_settings"):
            return  # no front end, or a callable: the network checks its input
        shape = tuple(int(d) for d in self._spectrogram_shape())
        if reset:
            self.spectrogram_shape_ = shape
        elif shape != tuple(getattr(self, "spectrogram_shape_", shape)):
            raise ValueError(
                f"the frontend now gives spectrograms of shape {shape} per clip, but "
                f"{type(self).__name__} was fitted on {tuple(self.spectrogram_shape_)}: its "
                "parameters changed since fit; set them back, or fit again"
            )

    def _frontend(self):
        """The front end in use (the classifier may inherit its embedder's)."""
        return self.frontend

    def _frontend_steps(self):
        """``(reader, spectrogram step)`` of the frontend; either may be None.

        A frontend is a spectrogram step (a :class:`SpectrogramTransformer` or a
        callable on waveform tensors) run per batch on the device, or a
        Pipeline ``[AudioReader, spectrogram step]``: then ``X`` holds paths and
        the files are decoded per batch by the DataLoader (streaming).
        """
        frontend = self._frontend()
        if not isinstance(frontend, Pipeline):
            return None, frontend
        steps = [step for _, step in frontend.steps]
        if len(steps) != 2 or not isinstance(steps[0], AudioReader):
            names = [type(step).__name__ for step in steps]
            raise ValueError(
                "a Pipeline frontend must be [AudioReader, SpectrogramTransformer] (files decoded "
                f"per batch, spectrograms on the device), got steps {names}"
            )
        return steps[0], steps[1]

    def _frontend_fn(self):
        frontend = self._frontend_steps()[1]
        if frontend is None:
            return None
        if hasattr(frontend, "transform_tensor"):
            return frontend.transform_tensor
        if callable(frontend):
            return frontend
        raise TypeError(
            f"frontend must be a SpectrogramTransformer or a callable on tensors, "
            f"got {type(frontend).__name__}"
        )

    def _group_channels(self, n_channels: int) -> int:
        # ESResNet's 3-band images: with the esresnet front end (or 3k input
        # channels) each audio channel gives one 3-channel image.
        kind = getattr(self._frontend_steps()[1], "kind", None)
        if kind is not None:
            return 3 if kind == "esresnet" else 1
        return 3 if n_channels % 3 == 0 else n_channels

    def _spectrogram_shape(self) -> tuple[int, ...]:
        """``(channels, n_freq, n_frames)`` of one clip as the backbone sees it."""
        if self._frontend() is None:
            return tuple(self.input_shape_)
        probe = torch.zeros((1, *self.input_shape_))
        with torch.no_grad():
            return tuple(self._frontend_fn()(probe).shape[1:])

    # -- persistence and checkpoints ------------------------------------------------

    def _persist_state(self) -> dict:
        """Fitted state as tensors and JSON strings (see :mod:`sklaudio.persist`)."""
        check_is_fitted(self, "input_shape_")
        attributes = {
            name: _encode(getattr(self, name))
            for name in self._persisted_attributes
            if hasattr(self, name)
        }
        return {
            "attributes": json.dumps(attributes),
            "modules": {
                name: _bare(getattr(self, name + "_")).state_dict() for name in self._modules
            },
            "optimizers": {
                name: getattr(self, name + "_").state_dict() for name in self._optimizers
            },
            "history": json.dumps(self.history_.to_list(), default=json_default),
            # the random streams, so that training continued after loading draws what it
            # would have drawn in memory
            "rng": self._rng_states(),
        }

    def _set_persisted_attributes(self, state: dict) -> None:
        for name, value in json.loads(state["attributes"]).items():
            if name not in self._persisted_attributes:  # a file never sets anything else
                if not (name.endswith("_") and name[:1].isalpha() and name.isidentifier()):
                    raise ValueError(f"{name!r} is not a fitted attribute of {type(self).__name__}")
                raise _NewerFileError(f"the fitted attribute {name} of {type(self).__name__}")
            setattr(self, name, _decode(value))

    def _load_torch_state(self, state: dict) -> None:
        for name, module_state in state["modules"].items():
            _bare(getattr(self, name + "_")).load_state_dict(module_state)
        for name, optimizer_state in state["optimizers"].items():
            getattr(self, name + "_").load_state_dict(optimizer_state)
        self.history_ = History(json.loads(state["history"]))

    def _restore_persisted(self, state: dict) -> None:
        """Rebuild the fitted estimator from :meth:`_persist_state`'s output."""
        self._set_persisted_attributes(state)
        with self._resolved_device():
            self.initialize()
            self._load_torch_state(state)
        self._set_rng_states(state.get("rng", {}))  # older model files have none

    def _rng_states(self) -> dict:
        states = {}
        for (name, device), generator in self.__dict__.get("_generators", {}).items():
            states[f"net:{name}@{device}"] = generator.get_state()
        for module_name in self._modules:
            for sub_name, sub in _bare(getattr(self, module_name + "_")).named_modules():
                for device, generator in getattr(sub, "_generators", {}).items():
                    states[f"{module_name}:{sub_name}@{device}"] = generator.get_state()
        return states

    def _set_rng_states(self, states: dict) -> None:
        for key, value in states.items():
            if self._n_processes() > 1 and not key.startswith("net:shuffle@"):
                # The checkpoint holds the main process's generators; the others' negatives
                # and masks restart from their own seeds (not bit-identical to no crash).
                continue
            where, _, device = key.rpartition("@")
            try:
                _check_device_available(device)
            except ValueError:
                continue  # resumed on another machine: those generators restart from the seed
            owner, _, name = where.partition(":")
            if owner == "net":
                generator = self._generator(name, device)
            else:
                generator = _bare(getattr(self, owner + "_")).get_submodule(name)._generator(device)
            generator.set_state(torch.as_tensor(value))  # (numpy in pickles)

    def _training_state(self) -> dict:
        """What :class:`~sklaudio.callbacks.TrainingCheckpoint` saves after each epoch."""
        state = self._persist_state()
        state.update(
            epoch=len(self.history_),
            fingerprint=self._checkpoint_fingerprint,
            rng=self._rng_states(),
        )
        return state

    def _fingerprint_extras(self, y=None) -> dict:
        """More of what a checkpoint belongs to (a classifier: its labels and embedder)."""
        return {}

    def _fingerprint(self, X: np.ndarray, y=None) -> str:
        """The data and parameters a checkpoint belongs to (a resumed fit must match)."""
        files = {}
        if X.dtype == object:  # paths: the files named are the data
            sample = np.frombuffer("\0".join(map(os.fsdecode, X)).encode(), dtype=np.uint8)
            if self.checkpoint is not None:  # ... as they are on disk now (a stat per file)
                files = {"files_crc32": _files_crc32(X)}
        else:
            flat = X.reshape(len(X), -1)
            sample = np.ascontiguousarray(flat[:, :: max(1, flat.shape[1] // 1024)])
        params = {
            name: _stable_repr(value)
            for name, value in sorted(self.get_params(deep=False).items())
            if name not in self._resumable_params
        }
        return json.dumps(
            {
                "estimator": type(self).__name__,
                "shape": list(X.shape),
                "data_crc32": zlib.crc32(sample.tobytes()),
                **files,
                "params": params,
                **self._fingerprint_extras(y),
            }
        )

    def _checkpoint_file(self) -> Path | None:
        return None if self.checkpoint is None else Path(self.checkpoint) / CHECKPOINT_FILE

    def _read_checkpoint(self, X: np.ndarray, y=None) -> dict | None:
        """The checkpoint of this same run (data and parameters), or None to start afresh.

        Sets the fitted attributes it holds (the seed among them) so that
        ``initialize`` rebuilds the same networks.
        """
        self._checkpoint_fingerprint = self._fingerprint(X, y)
        if self.checkpoint is not None and not isinstance(self.checkpoint, str | os.PathLike):
            raise ValueError(
                f"checkpoint must be None or a directory path, got {self.checkpoint!r}"
            )
        path = self._checkpoint_file()
        if path is None:
            return None
        if path.parent.exists() and not path.parent.is_dir():
            raise ValueError(
                f"checkpoint={os.fspath(self.checkpoint)!r} is a file; pass a directory (it "
                f"receives {CHECKPOINT_FILE})"
            )
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # a write that a crash interrupted
        if not path.exists():
            return None
        state = safe_torch_load(path, what="training checkpoint")
        if state.get("fingerprint") != self._checkpoint_fingerprint:
            raise ValueError(
                f"the checkpoint {str(path)!r} belongs to another run: "
                f"{_fingerprint_difference(state.get('fingerprint'), self._checkpoint_fingerprint)}"
                ". Pass another checkpoint directory, or delete this one to start afresh."
            )
        self._set_persisted_attributes(state)
        return state

    def _resume(self, state: dict | None) -> int:
        """Load a checkpoint into the initialised nets; the number of epochs it completed."""
        if state is None:
            return 0
        self._load_torch_state(state)
        self._set_rng_states(state["rng"])
        return int(state["epoch"])

    def _items_per_batch(self, batch_size: int) -> int:
        """Dataset items per training batch (AFP streams whole clips of several sequences)."""
        return batch_size

    def get_dataset(self, X, y=None):
        reader = self._frontend_steps()[0]
        if reader is None or is_dataset(X):
            if self.dataset is Dataset and any(_read_only(a) for a in (X, y)):
                return _ReadOnlyRows(X, y, **self.get_params_for("dataset"))
            return super().get_dataset(X, y)
        return AudioFileDataset(X, reader, y=y, shape=self.input_shape_)

    def get_params_for(self, prefix):
        params = super().get_params_for(prefix)
        if prefix in ("iterator_train", "iterator_valid"):
            # torch's samplers take Python ints only; a grid search over np.array([16, 32])
            # hands out numpy integers
            batch_size = params.get("batch_size", self.batch_size)
            if isinstance(batch_size, np.integer):
                params["batch_size"] = int(batch_size)
            if params.get("num_workers") and params.get("multiprocessing_context") is None:
                params["multiprocessing_context"] = _loader_context()
            elif params.get("num_workers") and _restarts_loky(params["multiprocessing_context"]):
                # 'spawn' inside a loky worker fails (`cannot find context for 'loky'`);
                # loky's own context starts fresh interpreters just as spawn does
                from joblib.externals.loky.backend.context import get_context

                params["multiprocessing_context"] = get_context("loky")
        return params

    def get_iterator(self, dataset, training=False):
        iterator = super(AccelerateMixin, self).get_iterator(dataset, training=training)
        if training:
            # Seeded shuffling; drop a last batch of one, which batch norm cannot train on.
            batch_size = self._items_per_batch(iterator.batch_size)
            iterator = type(iterator)(
                dataset,
                batch_size=batch_size,
                shuffle=True,
                drop_last=len(dataset) % batch_size == 1,
                generator=self._generator("shuffle", "cpu"),
                num_workers=iterator.num_workers,
                collate_fn=iterator.collate_fn,
                pin_memory=iterator.pin_memory,
                timeout=iterator.timeout,
                worker_init_fn=iterator.worker_init_fn,
                multiprocessing_context=iterator.multiprocessing_context,
                prefetch_factor=iterator.prefetch_factor,
                persistent_workers=iterator.persistent_workers,
            )
        if self._accelerated:
            iterator = self.accelerator.prepare(iterator)  # one shard per process
        return iterator

    def infer(self, x, **fit_params):
        if self._device_unresolved():  # called directly, outside fit / transform
            with self._resolved_device():
                return self._infer_on_device(x, **fit_params)
        return self._infer_on_device(x, **fit_params)

    def _infer_on_device(self, x, **fit_params):
        # With an accelerator, its own mixed-precision setting applies.
        use_amp = (
            self.mixed_precision
            and not self._accelerated
            and torch.device(self.device).type == "cuda"
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            return super().infer(x, **fit_params)

    def _checkpoint_callbacks(self) -> list:
        if not isinstance(self.checkpoint, str | os.PathLike):
            return []  # None, or an invalid value that fit reports
        return [("checkpoint", TrainingCheckpoint(self.checkpoint))]

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("lr_scheduler", CosineLR()),
            ("print_log", _VerbosePrintLog()),
            ("progress", EpochProgressBar()),
            *self._checkpoint_callbacks(),
        ]


class _TorchEmbedderMixin(_TorchNetMixin, TransformerMixin):
    """A skorch net used as a transformer: ``transform`` gives embeddings."""

    def _output_checks(self) -> list:
        """Checks of the read-out parameters, run by ``fit`` and ``transform`` (none here)."""
        return []

    def transform(self, X):
        """Embed clips: ``(n, embedding_dim)`` float32 vectors, or the read-out of ``output``.

        Parameters
        ----------
        X : array-like
            Spectrograms ``(n, channels, n_freq, n_frames)``, or waveforms when
            a ``frontend`` is set; the same shape per clip as in ``fit``.
        """
        check_is_fitted(self, ["input_shape_", "module_"])  # (a fit may fail after the shape)
        self._raise_on_failed(self._output_checks())
        X = self._check_input(X, reset=False)
        with self._resolved_device():
            out = self.forward(X, training=False, device="cpu")
        return out.float().numpy()

    # An embedder transforms; skorch's predict/predict_proba would return embeddings
    # under a classifier's name, so they are not offered.
    @available_if(lambda self: False)
    def predict(self, X):  # pragma: no cover
        raise NotImplementedError

    @available_if(lambda self: False)
    def predict_proba(self, X):  # pragma: no cover
        raise NotImplementedError

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then embed the training clips (in evaluation mode, without augmentation)."""
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features=None):
        """``'{class}_{output}{i}'`` for each column of ``transform``, e.g.
        ``'npidembedder_embedding0'`` (so ``set_output(transform='pandas')`` works)."""
        check_is_fitted(self, ["input_shape_", "module_"])  # (a fit may fail after the shape)
        self._raise_on_failed(self._output_checks())  # names of what transform would refuse
        # input_features names no output, but is checked as scikit-learn checks it: equal to
        # feature_names_in_, or n_features_in_ names
        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = f"{type(self).__name__.lower()}_{self.output}"
        return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out())], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class NPIDEmbedder(_TorchEmbedderMixin, NeuralNet):
    """Learn sound embeddings without labels by non-parametric instance discrimination.

    The DLS method (Hornauer et al., 2021, sections 3–4): an ESResNet encoder
    maps every spectrogram to a 128-d unit vector; each training clip is its
    own class, and a memory bank of the clips' embeddings gives the
    non-parametric softmax of Eq. 1, approximated by NCE with ``nce_k``
    negatives and temperature ``nce_t``. After fitting, ``transform`` embeds
    any clip; a (weighted) kNN or k-means on the embeddings then classifies
    or clusters sounds.

    Parameters
    ----------
    embedding_dim : int, default=128
        Size of the unit-length embedding (the paper's 128).
    nce_k : int, default=64
        Negatives per sample in NCE (the paper's NCE-K).
    nce_t : float, default=0.4
        Softmax temperature τ of Eq. 1 (the paper's NCE-T).
    nce_m : float, default=0.5
        Memory bank momentum: ``v ← normalise(m·v + (1−m)·f)``.
    loss : {'nce', 'softmax'}, default='nce'
        ``'softmax'`` computes Eq. 1 exactly over all clips instead of NCE
        (cheap and more stable on small datasets; no ``nce_k`` limit).
    backbone : str, default='esresnet_tiny'
        ``'esresnet50'`` (the paper's ResNet-50 with attention),
        ``'esresnet18'``, or the CPU-sized ``'esresnet_small'`` /
        ``'esresnet_tiny'``.
    frontend : SpectrogramTransformer, Pipeline or callable, default=None
        When set, ``X`` holds waveforms and spectrograms are computed per
        batch on the training device, never stored. A Pipeline
        ``[AudioReader, SpectrogramTransformer]`` streams: ``X`` holds paths and
        files are decoded per batch (:doc:`/scaling`). A callable maps a batch
        tensor of ``X``'s rows to spectrograms. ``None``: ``X`` holds
        spectrograms ``(n, channels, n_freq, n_frames)``. Multichannel audio:
        with a frontend, one backbone reads each audio channel's image (3
        bands for ``'esresnet'``, 1 otherwise) and the results are summed.
        Without one, the kind is guessed from the channel count: a multiple
        of 3 is read as 3-band images, any other count as one image of that
        many channels; so for multichannel log-mel pass the
        :class:`~sklaudio.features.SpectrogramTransformer` as ``frontend``.
    augment : bool or dict, default=True
        Augment spectrograms during training (random circular time shift of up
        to half the clip, a shift of up to 10 % of the frequency bins up or
        down, ±6 dB gain, two time and two frequency masks of up to 15 %;
        :class:`~sklaudio.nn.SpectrogramAugment`). Never applied by
        ``transform``. The frequency shift (roughly a pitch shift on mel bands)
        made the weighted kNN 6 points more accurate on ESC-10, on the
        embedding and on ``output='stats'`` alike (docs/benchmarks.md). A dict
        changes some settings and keeps the others, e.g.
        ``augment={'max_freq_shift': 0}`` where a sound's pitch names its
        class (tones of fixed frequencies, say).
    input_norm : bool, default=False
        Standardise every frequency bin with batch norm before the backbone
        (not in ESResNet; helps small backbones on dB spectrograms whose bands
        differ by tens of dB).
    output : {'embedding', 'features', 'stats'}, default='embedding'
        What ``transform`` returns. ``'embedding'``: the ``embedding_dim``
        unit vectors that training discriminates (the paper's read-out).
        ``'features'``: the backbone's pooled features before the projection.
        ``'stats'``: for each stage in ``stats_stages``, the stage's feature
        map averaged over frequency, then its mean and standard deviation
        over time per channel (``2 · sum of the stages' channels`` values);
        put a :class:`~sklearn.preprocessing.StandardScaler` before a cosine
        kNN. Only the read-out changes: it can be set after ``fit``. On
        ESC-10 with ``esresnet_tiny``, ``'stats'`` + scaling is about a point
        more accurate with the weighted kNN than ``'embedding'`` (0.80 against
        0.79 over three seeds; 4–5 points before the augmentation shifted
        frequencies; see docs/benchmarks.md).
    stats_stages : sequence of int, default=(2, 3, 4)
        Backbone stages (1–4) that ``output='stats'`` reads.
    max_epochs : int, default=200
        Training epochs (the paper's 200).
    batch_size : int, default=64
        Clips per batch (the paper's 64).
    lr : float, default=1e-3
        Learning rate, annealed to 0 by a cosine schedule over ``max_epochs``.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Set ``optimizer=torch.optim.SGD, lr=0.03, optimizer__momentum=0.9`` for
        NPID's original recipe.
    mixed_precision : bool, default=True
        bfloat16 autocast on CUDA (ignored on the CPU).
    device : str, default='auto'
        ``'auto'`` trains on CUDA when available, else the CPU.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, the memory bank, shuffling, negative
        sampling and augmentation.
    checkpoint : str or path-like, default=None
        A directory. After every epoch the whole training state (networks,
        optimizer, memory bank, history, random generators) is written to
        ``checkpoint/checkpoint.pt``, atomically; a later ``fit`` on the same
        data with the same parameters and directory resumes after the last
        completed epoch and, on the CPU, ends with the same model as an
        uninterrupted fit. See :class:`~sklaudio.callbacks.TrainingCheckpoint`.
    accelerator : accelerate.Accelerator, default=None
        Train through Hugging Face ``accelerate`` (skorch's
        :class:`~skorch.hf.AccelerateMixin`): launched with ``accelerate launch
        --num_processes N`` (or ``torchrun``), every process trains on its
        shard of each epoch with ``batch_size`` clips per batch, gradients are
        averaged (DistributedDataParallel), and each process's new embeddings
        are gathered before the memory-bank update so that every process keeps
        the same bank. The accelerator's device and ``mixed_precision`` replace
        ``device`` and ``mixed_precision``. Set it back to None before
        ``sklaudio.persist.save`` or pickling (an Accelerator is not saved).
    verbose : int, default=0
        0: silent; 1: a progress bar over epochs with the loss (a widget in
        Jupyter when ``ipywidgets`` is installed, text otherwise); 2: skorch's
        table instead, one line per epoch (loss and duration).
    **kwargs
        Any other :class:`skorch.NeuralNet` parameter (``callbacks``,
        ``optimizer__weight_decay``, ``iterator_train__num_workers``, ...).
        With ``warm_start=True`` a second ``fit`` trains ``max_epochs`` more
        epochs from the fitted encoder; on other clips (of the same shape) it
        starts a new memory bank for them, so an encoder pre-trained on pooled
        audio can continue on one corpus. ``partial_fit`` only continues on
        ``fit``'s own clips. A warm start continues the model in memory and
        never resumes from ``checkpoint``, which receives its epochs. It also
        continues the random streams of the first ``fit`` (``seed_`` is kept:
        a ``random_state`` set in between applies to the next cold ``fit``),
        so it draws new shuffles and negatives rather than replaying them.

    Attributes
    ----------
    module_ : SpectrogramEncoder
        The trained encoder (backbone + projection).
    memory_bank_ : MemoryBank
        The training clips' embeddings (``memory_bank_.memory``).
    history_ : skorch.History
        Loss and duration per epoch.
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
    n_train_ : int
        Clips of the last ``fit`` (the memory bank's rows).
    seed_ : int
        The seed drawn from ``random_state`` at ``fit``; every random stream
        (initialisation, shuffling, negatives, augmentation) derives from it.

    See Also
    --------
    sklaudio.classifiers.WeightedKNeighborsClassifier : NPID's kNN evaluation.

    References
    ----------
    S. Hornauer, K. Li, S. X. Yu, S. Ghaffarzadegan, L. Ren. "Unsupervised
    Discriminative Learning of Sounds for Audio Event Classification", ICASSP
    2021 (Eq. 1).
    Z. Wu, Y. Xiong, S. X. Yu, D. Lin. "Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination", CVPR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.embedders import NPIDEmbedder
    >>> X = np.random.default_rng(0).normal(size=(16, 1, 32, 40)).astype(np.float32)
    >>> emb = NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=8,
    ...                    random_state=0).fit(X)
    >>> Z = emb.transform(X)
    >>> Z.shape, bool(np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5))
    ((16, 8), True)
    >>> emb.set_params(output="stats").transform(X).shape  # stages 2-4: 2 * (32 + 64 + 128)
    (16, 448)
    """

    _bool_params = ("input_norm", "mixed_precision")
    _augment_settings = {"max_freq_shift": 0.1}

    def __init__(
        self,
        embedding_dim=128,
        nce_k=64,
        nce_t=0.4,
        nce_m=0.5,
        loss="nce",
        backbone="esresnet_tiny",
        frontend=None,
        augment=True,
        input_norm=False,
        output="embedding",
        stats_stages=(2, 3, 4),
        max_epochs=200,
        batch_size=64,
        lr=1e-3,
        optimizer=torch.optim.AdamW,
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
            module=SpectrogramEncoder,
            criterion=NPIDLoss,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=None,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.embedding_dim = embedding_dim
        self.nce_k = nce_k
        self.nce_t = nce_t
        self.nce_m = nce_m
        self.loss = loss
        self.backbone = backbone
        self.frontend = frontend
        self.augment = augment
        self.input_norm = input_norm
        self.output = output
        self.stats_stages = stats_stages
        self.mixed_precision = mixed_precision
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.accelerator = accelerator

    # the fingerprint of fit's clips: partial_fit checks it (the memory bank's rows)
    _persisted_attributes = (
        *_TorchNetMixin._persisted_attributes,
        "n_train_",
        "_checkpoint_fingerprint",
    )
    # The read-out does not change training: a checkpointed fit resumes across it.
    _resumable_params = (*_TorchNetMixin._resumable_params, "output", "stats_stages")
    _live_params = ("nce_k", "nce_t", "nce_m", "loss", "augment")
    _structural_params = (
        *_TorchNetMixin._structural_params,
        *("embedding_dim", "backbone", "input_norm"),
    )

    def _apply_live(self, names: list) -> None:
        self._check_params(self.n_train_)  # as fit would: nce_k < clips, nce_m in [0, 1), ...
        if {"nce_k", "nce_t", "loss"} & set(names):
            self.initialize_criterion()
            if "nce_t" in names:  # NCE's Z belongs to the temperature: estimated anew
                self.memory_bank_.nce_z.fill_(-1.0)
        if "nce_m" in names:
            self.memory_bank_.momentum = self.nce_m
        if "augment" in names:
            _bare(self.module_).augment = self._new_augment()

    def _n_features_out(self) -> int:
        # the fitted network's sizes, not the parameters (set_params(embedding_dim=...)
        # after fit changes the next fit, not what transform returns)
        module = _bare(self.module_)
        if self.output == "embedding":
            return int(module.projection.out_features)
        if self.output == "features":
            return int(module.projection.in_features)
        channels = module.backbone.stage_channels
        return 2 * sum(int(channels[stage - 1]) for stage in self.stats_stages)

    def _output_checks(self) -> list:
        return [
            (
                "output",
                self.output in ("embedding", "features", "stats"),
                "'embedding', 'features' or 'stats'",
            ),
            ("stats_stages", _valid_stages(self.stats_stages), STAGES_EXPECTED),
        ]

    def _check_params(self, n_samples: int) -> None:
        checks = [
            (
                "embedding_dim",
                _is_int(self.embedding_dim) and self.embedding_dim >= 1,
                "a positive integer",
            ),
            ("nce_k", _is_int(self.nce_k) and self.nce_k >= 1, "a positive integer"),
            ("nce_t", _is_real(self.nce_t) and 0 < self.nce_t < math.inf, "a finite number > 0"),
            ("nce_m", _is_real(self.nce_m) and 0 <= self.nce_m < 1, "in [0, 1)"),
            ("loss", self.loss in ("nce", "softmax"), "'nce' or 'softmax'"),
            ("backbone", self.backbone in BACKBONES, f"one of {sorted(BACKBONES)}"),
            *self._output_checks(),
            *self._common_checks(),
            (
                "max_epochs",
                _is_int(self.max_epochs) and self.max_epochs >= 1,
                "a positive integer",
            ),
            (
                "batch_size",
                _is_int(self.batch_size) and self.batch_size >= 2,
                "an integer >= 2 (batch norm needs two clips)",
            ),
        ]
        self._raise_on_failed(checks)
        if n_samples < 2:
            raise ValueError(
                f"instance discrimination needs at least 2 clips, got n_samples={n_samples}"
            )
        if self.loss == "nce" and n_samples < self.nce_k + 1:
            raise ValueError(
                f"NCE with nce_k={self.nce_k} negatives needs more than {self.nce_k} clips, got "
                f"{n_samples}; lower nce_k or use loss='softmax' (exact Eq. 1, fine for small data)"
            )

    def initialize_module(self):
        seed = self._seed()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            channels, n_freq = self._spectrogram_shape()[:2]
            backbone = build_backbone(self.backbone, in_channels=self._group_channels(channels))
            augment = self._new_augment()
            self.module_ = SpectrogramEncoder(
                backbone,
                self.embedding_dim,
                frontend=self._frontend_fn(),
                augment=augment,
                n_freq=n_freq if self.input_norm else None,
            )
            bank_rng = torch.Generator().manual_seed(seed + 4)
            self.memory_bank_ = MemoryBank(
                self.n_train_, self.embedding_dim, momentum=self.nce_m, generator=bank_rng
            )
        return self

    def initialize_criterion(self):
        self.criterion_ = NPIDLoss(nce_k=self.nce_k, nce_t=self.nce_t, loss=self.loss)
        return self

    def _renew_memory_bank(self) -> None:
        """A fresh bank for ``n_train_`` clips, where the old one is (``warm_start``)."""
        device = self.memory_bank_.memory.device
        bank_rng = torch.Generator().manual_seed(self._seed() + 4)
        self.memory_bank_ = MemoryBank(
            self.n_train_, self.embedding_dim, momentum=self.nce_m, generator=bank_rng
        ).to(device)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        bank = self.memory_bank_
        return self.criterion_(
            y_pred, y_true, bank, generator=self._generator("sample", bank.memory.device)
        )

    def infer(self, x, **fit_params):
        if not self.module_.training:  # transform: the chosen read-out
            stages = tuple(int(s) for s in self.stats_stages)
            fit_params = {"output": self.output, "stages": stages, **fit_params}
        return super().infer(x, **fit_params)

    def train_step_single(self, batch, **fit_params):
        # skorch's step, plus NPID's memory update with the batch's new embeddings.
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        bank = self.memory_bank_
        distributed = self._n_processes() > 1
        z_unset = distributed and bool(bank.nce_z < 0)
        with self._autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self._check_finite_loss(loss)  # (before the memory bank takes the batch too)
        self._backward(loss)
        indices, features = yi.to(bank.memory.device), y_pred.detach()
        if distributed:
            # Every process applies the embeddings of every process, so that the banks stay
            # identical; NCE's Z, estimated on each process's first batch, is averaged.
            indices, features = self.accelerator.gather((indices, features))
            if z_unset:
                bank.nce_z.copy_(self.accelerator.reduce(bank.nce_z.clone(), "mean"))
        bank.update(indices, features)
        return {"loss": loss, "y_pred": y_pred}

    def fit(self, X, y=None, **fit_params):
        """Train the encoder on unlabelled clips; ``y`` is ignored.

        Parameters
        ----------
        X : array-like
            Spectrograms ``(n, channels, n_freq, n_frames)``, or waveforms
            ``(n, n_samples)`` / ``(n, channels, n_samples)`` with a
            ``frontend``.
        y : ignored
            Instance discrimination uses each clip's index as its label.
        **fit_params : dict
            Must be empty: ``fit`` takes no metadata (no ``sample_weight``, no
            ``groups``); skorch would hand them to the network, which reads the
            clips only, so any name raises a TypeError that names it.
        """
        self._check_fit_params(fit_params)
        warm = bool(self.warm_start and self.initialized_)
        previous = getattr(self, "_checkpoint_fingerprint", None) if warm else None
        X = self._check_input(X, reset=not warm)  # a warm start needs the fitted input shape
        self._check_params(len(X))
        if not warm:  # a warm start continues the random streams (no replay of the first fit)
            self._reset_randomness()
        self.n_train_ = len(X)
        if warm:  # the model in memory goes on: a checkpoint only receives its epochs
            self._checkpoint_fingerprint, saved = self._fingerprint(X), None
        else:
            saved = self._read_checkpoint(X)
        with self._resolved_device():
            if not warm:
                self.initialize()
            elif len(X) != self.memory_bank_.n_samples or _other_clips(
                previous, self._checkpoint_fingerprint
            ):
                self._renew_memory_bank()  # the encoder continues; new clips, new bank rows
            done = self._resume(saved)
            epochs = max(self.max_epochs - done, 0)
            self._train(X, np.arange(len(X)), resumable=True, epochs=epochs, **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training on the same clips (the memory bank holds one row per clip)."""
        self._check_fit_params(fit_params, "partial_fit")
        if not self.initialized_:
            return self.fit(X, y, **fit_params)
        X = self._check_input(X, reset=False)
        if len(X) != self.memory_bank_.n_samples:
            raise ValueError(
                f"partial_fit got {len(X)} clips but the memory bank holds "
                f"{self.memory_bank_.n_samples}; instance ids must refer to the same clips"
            )
        previous, current = getattr(self, "_checkpoint_fingerprint", None), self._fingerprint(X)
        if _other_clips(previous, current):
            raise ValueError(
                "partial_fit got other clips than fit (or the same clips in another order); "
                "the memory bank holds one row per clip of fit, in its order"
            )
        self._checkpoint_fingerprint = current
        with self._resolved_device():
            self._train(X, np.arange(len(X)), **fit_params)
        return self


class AFPPairLossEmbedder(_TorchEmbedderMixin, NeuralNet):
    """Audio features from a ConvLSTM frame predictor trained with the KL pair loss.

    The AFP method (Meyer et al., 2017): log-mel spectrograms are cut into
    frames of ``frame_duration`` seconds with a hop of a quarter frame; a
    ConvLSTM encoder–decoder (:class:`~sklaudio.nn.AudioFramePredictor`)
    predicts frame 4 from frames 1–3. The code's per-channel averages (K =
    ``code_channels``) pass a softmax into a *feature distribution*. Training
    has two phases: ``mse_epochs`` of frame-prediction MSE only, then
    ``pair_epochs`` of MSE + ``pair_weight`` × the pair loss of Eqs. 1–2
    (:func:`~sklaudio.nn.pair_loss`). ``pair_loss=False`` trains
    ``mse_epochs + pair_epochs`` epochs of MSE only (the paper's "w/o
    PairLoss" system).

    ``transform`` gives one vector per clip: the mean over the clip's
    sequences of the feature distribution (``output='distribution'``) or of
    the pooled code (``output='code'``).

    Parameters
    ----------
    frame_duration : float, default=2.56
        Frame length T_f in seconds; the hop is T_f / 4.
    n_context : int, default=3
        Context frames; the model predicts the next one.
    code_channels : int, default=128
        K, the channels of the code and the size of the feature vector.
    threshold : float, default=1.0
        Pairs with ``f(n, m) = KL / mean KL`` below it count as similar.
    margin : float, default=1.0
        Dissimilar pairs are pushed at least this far apart in KL.
    pair_weight : float, default=1.0
        Weight of the pair loss in phase 2.
    pair_loss : bool, default=True
        Train phase 2 with MSE + ``pair_weight`` · pair loss. ``False`` is the
        paper's "w/o PairLoss" system: ``mse_epochs + pair_epochs`` epochs of
        MSE only.
    mse_epochs, pair_epochs : int, default=6, 3
        The two phases.
    output : {'distribution', 'code'}, default='distribution'
        What ``transform`` returns per clip (the mean over its sequences):
        ``'distribution'``, the softmax of the code's per-channel averages (the
        paper's feature distribution), or ``'code'``, those averages before
        the softmax. Can be changed after fitting.
    short : {'pad', 'raise'}, default='pad'
        Clips shorter than one sequence are padded with their minimum (dB
        silence) or refused.
    sample_rate, hop_length : int, default=22050, 512
        Time resolution of the input spectrograms (taken from ``frontend``
        when one is set), to convert ``frame_duration`` into steps. After a
        ``SpectrogramTransformer`` in a Pipeline, give the transformer's values:
        spectrograms do not carry them.
    frontend : SpectrogramTransformer or Pipeline, default=None
        Compute log-mel spectrograms per batch from waveforms. A Pipeline
        ``[AudioReader, SpectrogramTransformer]`` streams: ``X`` holds paths,
        files are decoded per batch and a batch holds whole clips,
        ``max(1, batch_size // sequences_per_clip_)`` of them, all of whose
        sequences are trained on (without streaming, sequences of all clips
        are shuffled together).
    widths : tuple of 2 int, default=(32, 64)
        Channels of the first two encoder layers.
    batch_size : int, default=16
        Sequences per batch (the paper's N = 16: the pair loss compares them).
    lr : float, default=1e-3
    optimizer : torch optimizer class, default=torch.optim.AdamW
    mixed_precision, device, random_state, checkpoint, accelerator, verbose, **kwargs
        As for :class:`NPIDEmbedder`. With an accelerator, the pair loss compares the
        sequences of each process's own batch (``batch_size`` per process).

    Attributes
    ----------
    module_ : AudioFramePredictor
    history_ : skorch.History
        ``train_loss`` and ``mse`` per epoch (and per batch); in phase 2 also
        ``pair``, the pair loss, and ``pair_similar``, the fraction of
        pairs of distinct sequences that ``threshold`` calls similar (see
        :func:`~sklaudio.nn.similar_pair_fraction`).
    frame_steps_, hop_steps_ : int
        Frame length and hop in spectrogram steps.
    sequences_per_clip_ : int
        Training sequences cut from each clip.
    input_shape_ : tuple
        Shape of one clip of ``X`` in ``fit`` (spectrogram, waveform, or one
        decoded file when streaming).
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
    n_epochs_ : int
        Epochs one ``fit`` or ``partial_fit`` call trains: ``mse_epochs +
        pair_epochs``. ``len(history_)`` counts the epochs trained so far.
    seed_ : int
        The seed drawn from ``random_state`` at ``fit``; every random stream
        (initialisation, shuffling, pairs) derives from it.

    References
    ----------
    M. Meyer, J. Beutel, L. Thiele. "Unsupervised Feature Learning for Audio
    Analysis", ICLR 2017 workshop (Eqs. 1–2).

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.embedders import AFPPairLossEmbedder
    >>> S = np.random.default_rng(0).normal(size=(8, 1, 16, 40)).astype(np.float32)
    >>> afp = AFPPairLossEmbedder(frame_duration=0.4, sample_rate=400, hop_length=20,
    ...                           code_channels=8, widths=(4, 4), mse_epochs=1,
    ...                           pair_epochs=1, batch_size=4, random_state=0).fit(S)
    >>> afp.transform(S).shape
    (8, 8)
    """

    _fixed_params = ("module", "criterion", "train_split", "max_epochs")
    _bool_params = ("pair_loss", "mixed_precision")
    _fixed_reasons = {
        **_TorchNetMixin._fixed_reasons,
        "max_epochs": "it trains mse_epochs + pair_epochs epochs; set those",
    }
    _persisted_attributes = (
        *_TorchNetMixin._persisted_attributes,
        *("frame_steps_", "hop_steps_", "n_epochs_", "sequences_per_clip_"),
    )
    _any_length = True  # a clip's vector is the mean over however many sequences it holds
    _structural_params = (
        *_TorchNetMixin._structural_params,
        *("frame_duration", "n_context", "code_channels", "widths", "short"),
        *("sample_rate", "hop_length"),
    )

    def __init__(
        self,
        frame_duration=2.56,
        n_context=3,
        code_channels=128,
        threshold=1.0,
        margin=1.0,
        pair_weight=1.0,
        pair_loss=True,
        mse_epochs=6,
        pair_epochs=3,
        output="distribution",
        short="pad",
        sample_rate=22050,
        hop_length=512,
        frontend=None,
        widths=(32, 64),
        batch_size=16,
        lr=1e-3,
        optimizer=torch.optim.AdamW,
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
            module=AudioFramePredictor,
            criterion=torch.nn.MSELoss,
            optimizer=optimizer,
            lr=lr,
            max_epochs=None,  # mse_epochs + pair_epochs, set by fit
            batch_size=batch_size,
            train_split=None,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.frame_duration = frame_duration
        self.n_context = n_context
        self.code_channels = code_channels
        self.threshold = threshold
        self.margin = margin
        self.pair_weight = pair_weight
        self.pair_loss = pair_loss
        self.mse_epochs = mse_epochs
        self.pair_epochs = pair_epochs
        self.output = output
        self.short = short
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.frontend = frontend
        self.widths = widths
        self.mixed_precision = mixed_precision
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.accelerator = accelerator

    def _check_params(self):
        checks = [
            (
                "frame_duration",
                _is_real(self.frame_duration) and self.frame_duration > 0,
                "a positive number of seconds",
            ),
            (
                "n_context",
                _is_int(self.n_context) and self.n_context >= 1,
                "an integer >= 1",
            ),
            (
                "code_channels",
                _is_int(self.code_channels) and self.code_channels >= 1,
                "a positive integer",
            ),
            (
                "threshold",
                _is_real(self.threshold) and 0 < self.threshold < math.inf,
                "finite, > 0",
            ),
            ("margin", _is_real(self.margin) and 0 < self.margin < math.inf, "finite, > 0"),
            ("pair_weight", _is_real(self.pair_weight) and self.pair_weight >= 0, ">= 0"),
            (
                "mse_epochs",
                _is_int(self.mse_epochs) and self.mse_epochs >= 0,
                "an integer >= 0",
            ),
            (
                "pair_epochs",
                _is_int(self.pair_epochs) and self.pair_epochs >= 0,
                "an integer >= 0",
            ),
            (
                "sample_rate",
                _is_real(self.sample_rate) and self.sample_rate > 0,
                "a positive number of Hz",
            ),
            (
                "hop_length",
                _is_int(self.hop_length) and self.hop_length >= 1,
                "a positive integer",
            ),
            (
                "widths",
                isinstance(self.widths, Sequence | np.ndarray)
                and np.ndim(self.widths) == 1
                and len(self.widths) == 2
                and all(_is_int(w) and w >= 1 for w in self.widths),
                "2 positive integers (channels of the first two encoder layers)",
            ),
            *self._output_checks(),
            *self._common_checks(),
            ("short", self.short in ("pad", "raise"), "'pad' or 'raise'"),
            (
                "batch_size",
                _is_int(self.batch_size) and self.batch_size >= 2,
                "an integer >= 2 (the pair loss compares clips)",
            ),
        ]
        self._raise_on_failed(checks)
        if self.mse_epochs + self.pair_epochs < 1:
            raise ValueError("mse_epochs + pair_epochs must be at least 1")

    def _n_features_out(self) -> int:
        return int(_bare(self.module_).code_channels)  # the fitted network's, as transform

    def _output_checks(self) -> list:
        return [("output", self.output in ("distribution", "code"), "'distribution' or 'code'")]

    def _time_resolution(self):
        spectrogram = self._frontend_steps()[1]
        if spectrogram is not None and hasattr(spectrogram, "stft_params"):
            return spectrogram.sample_rate, spectrogram.stft_params()["hop_length"]
        return self.sample_rate, self.hop_length

    @property
    def _streaming(self) -> bool:
        return self._frontend_steps()[0] is not None

    def _clip_sequences(self, x: torch.Tensor) -> torch.Tensor:
        """Clips (waveforms with a frontend, else spectrograms) → their training sequences
        ``(n, n_sequences, n_context + 1, n_mels, frame_steps)``, on ``x``'s device: a
        strided view of the spectrograms (a sequence overlaps the next by three frames),
        copied only by whoever indexes it."""
        return self._frame(self._spectrograms(x))

    def _spectrograms(self, x: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """One-channel spectrograms ``(n, 1, n_mels, steps)`` of clips; ``chunk`` clips go
        through the front end at a time (its STFT holds several times their size)."""
        with torch.no_grad():
            frontend = self._frontend_fn()
            if frontend is None:
                spec = x
            elif chunk is None or len(x) <= chunk:
                spec = frontend(x.float())
            else:
                spec = torch.cat(
                    [frontend(x[i : i + chunk].float()) for i in range(0, len(x), chunk)]
                )
        if spec.shape[1] != 1:
            raise ValueError(
                f"AFPPairLossEmbedder reads one-channel (mono) spectrograms, got "
                f"{spec.shape[1]} channels; use AudioReader(mono=True) and kind='log_mel'"
            )
        return spec

    def _frame(self, spec: torch.Tensor) -> torch.Tensor:
        from sklaudio.features import frame_sequences

        return frame_sequences(
            spec[:, 0], self.frame_steps_, self.hop_steps_, self.n_context + 1, short=self.short
        )

    def _sequences(self, X) -> tuple[_SequenceDataset, np.ndarray]:
        """All training sequences of all clips, and the clip each comes from.

        The sequences are a view of the spectrograms, not a copy: with a hop of a
        quarter frame, the four frames of every sequence would hold each spectrogram
        step about 16 times (1 GB of 30 s scenes would need 16 GB).
        """
        with warnings.catch_warnings():  # a read-only array (np.load(mmap_mode='r'), a
            # joblib memmap): it is only ever read here
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            x = torch.from_numpy(X)
        seq = self._frame(self._spectrograms(x, chunk=max(int(self.batch_size), 64)))
        n, n_seq = seq.shape[:2]
        return _SequenceDataset(seq), np.repeat(np.arange(n), n_seq)

    def _training_items(self, X):
        """What the DataLoader iterates: every clip's sequences, or the paths when streaming
        (then a batch holds whole clips, cut into sequences by ``train_step_single``)."""
        return X if self._streaming else self._sequences(X)[0]

    def _items_per_batch(self, batch_size: int) -> int:
        if not self._streaming:
            return batch_size
        # about batch_size sequences per step, as without streaming
        return max(1, batch_size // self.sequences_per_clip_)

    def train_step_single(self, batch, **fit_params):
        if self._streaming:  # a batch of clips: train on all their sequences
            Xi, yi = unpack_data(batch)
            seq = self._clip_sequences(to_tensor(Xi, device=self.device))
            batch = (seq.reshape(-1, *seq.shape[2:]), yi)
        return super().train_step_single(batch, **fit_params)

    def initialize_module(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            widths = tuple(int(w) for w in self.widths)
            self.module_ = AudioFramePredictor(self.code_channels, widths)
        return self

    def infer(self, x, **fit_params):
        # Training batches hold whole sequences; the model sees the context frames.
        return super().infer(x[:, : self.n_context], **fit_params)

    def _training_phase(self) -> str:
        """The phase of the epoch under way (its name on the progress bar)."""
        return "MSE + pair loss" if self._phase_two() else "MSE"

    def _phase_two(self) -> bool:
        return bool(self.pair_loss) and len(self.history_) > self.mse_epochs

    def get_loss(self, y_pred, y_true, X=None, training=False):
        pred, code = y_pred
        target = X[:, self.n_context].to(pred.device)
        mse = torch.nn.functional.mse_loss(pred.float(), target.float())
        phase_two = self._phase_two()
        if not phase_two:
            self.history_.record_batch("mse", float(mse.detach()))
            return mse
        from sklaudio.nn.pair_loss import _distinct_pair_fraction, _pair_loss_terms

        dist = torch.softmax(_bare(self.module_).features(code).float(), dim=1)
        pair, similar = _pair_loss_terms(dist, self.threshold, self.margin)
        self.history_.record_batch("mse", float(mse.detach()))
        self.history_.record_batch("pair", float(pair.detach()))
        self.history_.record_batch("pair_similar", _distinct_pair_fraction(similar))
        return mse + self.pair_weight * pair

    def fit(self, X, y=None, **fit_params):
        """Train the frame predictor (two phases); ``y`` is ignored.

        Parameters
        ----------
        X : array-like
            Log-mel spectrograms ``(n, channels, n_mels, n_frames)``, waveforms
            with a ``frontend``, or paths with a streaming one (see ``frontend``).
        y : ignored
        **fit_params : dict
            Must be empty: ``fit`` takes no metadata (no ``sample_weight``, no
            ``groups``); skorch would hand them to the network, which reads the
            clips only, so any name raises a TypeError that names it.
        """
        self._check_fit_params(fit_params)
        if self.warm_start and self.initialized_:  # skorch's warm_start: continue
            return self.partial_fit(X, y, **fit_params)
        X = self._check_input(X, reset=True)
        self._check_params()
        self._reset_randomness()
        sample_rate, hop = self._time_resolution()
        self.frame_steps_ = max(int(round(self.frame_duration * sample_rate / hop)), 1)
        self.hop_steps_ = max(self.frame_steps_ // 4, 1)
        # a probe clip: the sequences per clip, and an early error for too-short clips
        self.sequences_per_clip_ = self._clip_sequences(torch.zeros((1, *self.input_shape_))).shape[
            1
        ]
        self._warn_if_padded(sample_rate, hop)
        sequences = self._training_items(X)
        self.n_epochs_ = self.mse_epochs + self.pair_epochs
        saved = self._read_checkpoint(X)
        with self._resolved_device():
            self.initialize()
            done = self._resume(saved)  # the phase follows from the restored history
            self._train(
                sequences,
                np.zeros(len(sequences)),
                resumable=True,
                epochs=max(self.n_epochs_ - done, 0),
                **fit_params,
            )
        return self

    def _warn_if_padded(self, sample_rate, hop) -> None:
        """Warn when every clip is shorter than one training sequence (short='pad'): the
        usual sign of spectrograms at another time resolution than sample_rate/hop_length."""
        frontend = self._frontend_fn()
        with torch.no_grad():
            probe = torch.zeros((1, *self.input_shape_))
            steps = (probe if frontend is None else frontend(probe)).shape[-1]
        span = self.frame_steps_ + self.n_context * self.hop_steps_
        if steps < span:
            warn_user(
                f"AFPPairLossEmbedder: clips have {steps} spectrogram steps, but one training "
                f"sequence ({self.n_context + 1} frames of {self.frame_duration:g} s) spans {span} "
                f"steps at sample_rate={sample_rate} / hop_length={hop}; every clip is padded "
                "with silence (short='pad'). If the spectrograms come from an earlier Pipeline "
                "step, give this embedder its sample_rate and hop_length; for short clips, "
                "lower frame_duration",
            )

    def _sequence_features(self, sequences: torch.Tensor) -> torch.Tensor:
        """Feature vectors of ``(m, n_context + 1, ...)`` sequences: ``(m, K)`` on the CPU.

        Only the encoder runs: skorch's forward would also decode every sequence.
        """
        use_amp = (
            self.mixed_precision
            and not self._accelerated
            and torch.device(self.device).type == "cuda"
        )
        codes = []
        for start in range(0, len(sequences), self.batch_size):
            context = sequences[start : start + self.batch_size][:, : self.n_context]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                codes.append(self.module_.encode(context.to(self.device)).float().cpu())
        feats = self.module_.features(torch.cat(codes))
        return torch.softmax(feats, dim=1) if self.output == "distribution" else feats

    def transform(self, X):
        """One vector per clip: the mean over its sequences (see ``output``).

        Clips may be longer or shorter than those of ``fit`` when ``X`` has a
        channel axis (spectrograms, or waveforms ``(n, channels, n_samples)``;
        the other axes must match): a longer clip holds more sequences, and one
        shorter than a sequence is padded or refused per ``short``. 2-d
        waveforms ``(n, n_samples)`` keep scikit-learn's rule that the number
        of features (samples) does not change after ``fit``.
        """
        check_is_fitted(self, ["input_shape_", "module_"])  # (a fit may fail after the shape)
        self._raise_on_failed(self._output_checks())
        X = self._check_input(X, reset=False)
        self._set_training(False)
        with self._resolved_device(), torch.no_grad():
            if self._streaming:  # batches of clips decoded by the DataLoader
                feats = []
                # a plain DataLoader: with an accelerator, every process embeds every clip
                iterator = super(AccelerateMixin, self).get_iterator(self.get_dataset(X))
                for waves, _ in iterator:
                    seq = self._clip_sequences(waves.to(self.device))
                    n, n_seq = seq.shape[:2]
                    clip_feats = self._sequence_features(seq.reshape(n * n_seq, *seq.shape[2:]))
                    feats.append(clip_feats.view(n, n_seq, -1).mean(dim=1))
                return torch.cat(feats).numpy()
            sequences, clips = self._sequences(X)
            feats = self._sequence_features(sequences).numpy()
        out = np.zeros((len(X), feats.shape[1]), dtype=np.float32)
        np.add.at(out, clips, feats)
        counts = np.bincount(clips, minlength=len(X))[:, None].astype(np.float32)
        return out / counts

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train ``mse_epochs + pair_epochs`` more epochs (phase 2 continues) on ``X``."""
        self._check_fit_params(fit_params, "partial_fit")
        if not self.initialized_:
            return self.fit(X, y, **fit_params)
        X = self._check_input(X, reset=False)
        sequences = self._training_items(X)
        self._checkpoint_fingerprint = self._fingerprint(X)
        with self._resolved_device():
            self._train(sequences, np.zeros(len(sequences)), epochs=self.n_epochs_, **fit_params)
        return self

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("mse", PassthroughScoring(name="mse", on_train=True)),
            # phase 2 only (skipped while the batches have no such key)
            ("pair", PassthroughScoring(name="pair", lower_is_better=None, on_train=True)),
            (
                "pair_similar",
                PassthroughScoring(name="pair_similar", lower_is_better=None, on_train=True),
            ),
            ("print_log", _VerbosePrintLog()),
            ("progress", EpochProgressBar()),
            *self._checkpoint_callbacks(),
        ]

"""Save and load fitted sklaudio estimators without pickle.

A model file is one ``torch.save`` archive holding only tensors, numbers and
strings: the estimator's class name, its parameters as JSON, its fitted
attributes as JSON, the ``state_dict`` of every torch module and optimizer, the
training history and the states of its random generators (so ``partial_fit`` or
a warm start after loading trains exactly as it would have in memory).
:func:`load` checks every record's CRC-32, reads the file with
``torch.load(weights_only=True)``, which refuses any pickled object, checks the
class against the sklaudio estimators it knows, and rebuilds the estimator from
its parameters. Loading a file therefore never runs code from the file. A model
trained on a GPU loads on a machine without one.

``pickle`` / ``joblib`` also work on every sklaudio estimator (that is what
scikit-learn's ``clone``, grid search and dask rely on), but unpickling runs
whatever the file says: only unpickle files you made or trust.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from sklaudio._warnings import warn_user

__all__ = ["load", "save"]

FORMAT = "sklaudio-model"
# 2: parameters added since 1 (head_init, head_features, ...), FrozenEstimator embedders
# and kNN arrays; an older sklaudio then says "upgrade" instead of failing on them
FORMAT_VERSION = 2

# The estimators a model file may name; nothing else is ever constructed by load().
_ESTIMATORS = {
    "NPIDEmbedder": "sklaudio.embedders",
    "AFPPairLossEmbedder": "sklaudio.embedders",
    "FineTunedClassifier": "sklaudio.classifiers",
    "SpectrogramTransformer": "sklaudio.features",
    "TemporalStatistics": "sklaudio.features",
    "AudioReader": "sklaudio.io",
    "WeightedKNeighborsClassifier": "sklaudio.classifiers",
}
# Classes a parameter may hold (an optimizer, skorch's dataset and iterator), by module
# prefix: importing these runs only torch's and skorch's own code.
_ALLOWED_CLASS_MODULES = ("torch.optim.", "torch.nn.", "torch.utils.data.", "skorch.")


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` into a temporary file next to ``path``, then rename it into place.

    A crash mid-write leaves the previous file (or none), never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    serialization = torch.serialization
    crc32 = getattr(serialization, "get_crc32_options", lambda: True)()
    try:
        try:  # as open() would make it: mkstemp's file is readable by its owner only
            os.fchmod(fd, 0o666 & ~_umask())
        except (AttributeError, OSError):  # no fchmod (Windows), or a file system without modes
            pass
        with os.fdopen(fd, "wb") as f:
            if not crc32:  # checksums are what lets load() tell a damaged file
                serialization.set_crc32_options(True)
            try:
                torch.save(obj, f)
            finally:
                if not crc32:
                    serialization.set_crc32_options(False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where the system says it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(umask)
    return umask


# Files that are often mistaken for torch state dicts, by their first bytes.
_OTHER_FORMATS = (
    (b"\x93NUMPY", "a numpy .npy file"),
    (b"\x89HDF", "an HDF5 (Keras .h5) file"),
    (b"\x08", "an ONNX or protobuf file"),
    # joblib.dump(..., compress=...): a pickle inside zlib, gzip, bz2, xz or lz4
    *(
        (magic, "a compressed joblib file (joblib.load reads it; trusted files only)")
        for magic in (
            *(b"\x78" + level for level in (b"\x01", b"\x5e", b"\x9c", b"\xda")),
            b"ZF",
            b"\x1f\x8b",
            b"BZh",
            b"\xfd7zXZ",
            b"\x04\x22\x4d\x18",
        )
    ),
)


def _pickled_objects(exc: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused, in a few words (its own message is a
    page of advice, with terminal colour codes)."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if found:
        return f"it holds a pickled {found.group(1)} object"
    return "it is a pickle of Python objects, not a torch file of tensors"


def safe_torch_load(path: str | os.PathLike, what: str = "sklaudio file"):
    """``torch.load(weights_only=True)`` onto the CPU, with errors that name the file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {os.fspath(path)!r} is a folder; give the file in it")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {os.fspath(path)!r} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(9)
    if not head:
        raise ValueError(
            f"cannot read {os.fspath(path)!r} as a {what}: it is empty (0 bytes); was it "
            "written completely?"
        )
    # torch.save writes a zip archive (or, before torch 1.6, a pickle)
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        kind = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
        if kind is None and head[8:9] == b"{":  # 8 bytes of header length, then JSON
            kind = "a safetensors file (safetensors.torch.load_file reads it)"
        expected = "torch.save(model.state_dict(), path)" if "state dict" in what else "sklaudio"
        raise ValueError(
            f"cannot read {os.fspath(path)!r} as a {what}: it is "
            f"{kind or 'of another format'}; expected a file written by {expected}"
        )
    if head.startswith(b"PK\x03\x04"):
        _check_zip_checksums(path, what)
    try:
        with warnings.catch_warnings():
            # a plain pickle gets a protocol warning before it is refused below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "state dict" in what:
            expected = (
                "a state dict of tensors, as torch.save(model.state_dict(), path) writes; "
                "for a whole model saved with torch.save(model, path), load it where you "
                "trust it and save its state_dict()"
            )
        else:
            expected = (
                "what sklaudio.persist.save writes; if you made the file yourself with "
                "pickle/joblib and trust it, load it with joblib.load"
            )
        raise ValueError(
            f"refusing to load {os.fspath(path)!r} as a {what}: {_pickled_objects(exc)}, and "
            f"unpickling could run code. Expected {expected}."
        ) from exc
    except (RuntimeError, EOFError, OSError, KeyError) as exc:
        raise ValueError(
            f"cannot read {os.fspath(path)!r} as a {what}: {exc}; the file is truncated, "
            "corrupt or of another format"
        ) from exc


def _check_zip_checksums(path: Path, what: str) -> None:
    """torch.save's zip stores a CRC-32 per record, which torch.load never checks: a file
    damaged on disk or in transfer would load with wrong weights."""
    bad = None
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0 and info.file_size:
                    # written with torch.serialization.set_crc32_options(False): no checksum
                    continue
                try:
                    with archive.open(info) as record:
                        while record.read(1 << 24):
                            pass
                except zipfile.BadZipFile:  # "Bad CRC-32 for file ..."
                    bad = info.filename
                    break
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(
            f"cannot read {os.fspath(path)!r} as a {what}: {exc}; the file is truncated, "
            "corrupt or of another format"
        ) from exc
    if bad is not None:
        raise ValueError(
            f"cannot read {os.fspath(path)!r} as a {what}: its record {bad!r} fails its "
            "checksum; the file was damaged after it was written (copy it again, or save the "
            "model again)"
        )


def _encode(value):
    """A parameter or fitted attribute as JSON-able data, or TypeError."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, int | float):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, os.PathLike):  # checkpoint=Path(...): a path, stored as its text
        return {"__path__": os.fsdecode(value)}
    if f"{type(value).__module__}.{type(value).__name__}" == "sklaudio.nn.finetune.TransferReport":
        return {"__transfer_report__": {k: list(map(str, v)) for k, v in vars(value).items()}}
    if isinstance(value, np.ndarray) and (
        value.dtype.kind in "biufU"
        or (value.dtype.kind == "O" and all(isinstance(v, str) for v in value.ravel()))
    ):  # an object array of strings (string labels) comes back as one
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if inspect.isclass(value) and (value.__module__ + ".").startswith(_ALLOWED_CLASS_MODULES):
        return {"__class__": f"{value.__module__}.{value.__qualname__}"}
    if type(value).__name__ == "FrozenEstimator" and type(value).__module__.startswith(
        "sklearn."
    ):  # a FineTunedClassifier's embedder; its parameters only, as for a bare embedder
        return {"__frozen__": _encode(value.estimator)}
    if isinstance(value, Pipeline):  # a streaming frontend: [AudioReader, spectrogram step]
        return {"__pipeline__": [[name, _encode(step)] for name, step in value.steps]}
    if type(value).__name__ in _ESTIMATORS and type(value).__module__.startswith("sklaudio."):
        return {
            "__estimator__": type(value).__name__,
            "params": {k: _encode(v) for k, v in value.get_params(deep=False).items()},
        }
    raise TypeError(f"{type(value).__name__} value {value!r}")


def json_default(value):
    """``json.dumps(default=...)`` for numpy scalars (a history row's ``np.float32`` rate)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    if "__array__" in value:
        array = np.asarray(value["__array__"], dtype=np.dtype(value["dtype"]))
        if array.dtype.kind == "O" and not all(isinstance(v, str) for v in array.ravel()):
            raise ValueError("an object array in a model file holds something else than text")
        return array
    if "__device__" in value:
        return torch.device(value["__device__"])  # one this machine lacks: see _run_here
    if "__path__" in value:
        return Path(value["__path__"])
    if "__transfer_report__" in value:
        from sklaudio.nn.finetune import TransferReport

        return TransferReport(**value["__transfer_report__"])
    if "__class__" in value:
        return _allowed_class(value["__class__"])
    if "__frozen__" in value:
        from sklearn.frozen import FrozenEstimator

        return FrozenEstimator(_decode(value["__frozen__"]))
    if "__pipeline__" in value:
        return Pipeline([(str(name), _decode(step)) for name, step in value["__pipeline__"]])
    if "__estimator__" in value:
        cls = _estimator_class(value["__estimator__"])
        params = {k: _decode(v) for k, v in value["params"].items()}
        _unknown_params(cls, params)
        return cls(**params)
    raise ValueError(f"unknown entry {sorted(value)} in a model file")


def _allowed_class(dotted: str):
    module, _, name = dotted.rpartition(".")
    if not (module + ".").startswith(_ALLOWED_CLASS_MODULES):
        raise ValueError(
            f"a model file names the class {dotted!r}; only classes from "
            f"{', '.join(m + '*' for m in _ALLOWED_CLASS_MODULES)} may appear as parameters"
        )
    cls = getattr(importlib.import_module(module), name, None)
    if not inspect.isclass(cls):
        raise ValueError(f"{dotted!r} named in a model file is not a class")
    return cls


def _estimator_class(name: str):
    if name not in _ESTIMATORS:
        raise ValueError(
            f"a model file names the estimator {name!r}; sklaudio.persist.load only builds "
            f"{sorted(_ESTIMATORS)}"
        )
    return getattr(importlib.import_module(_ESTIMATORS[name]), name)


def _params_json(estimator) -> str:
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        try:
            params[key] = _encode(value)
        except TypeError as exc:
            raise TypeError(
                f"cannot save {type(estimator).__name__}: its parameter {key}= holds a "
                f"{exc}, which a model file cannot store safely. Reset it (e.g. "
                f"set_params({key}=None)) before saving, or pickle the estimator with joblib "
                "(trusted files only)."
            ) from None
    return json.dumps(params)


def save(estimator, path: str | os.PathLike) -> None:
    """Save a fitted sklaudio estimator to ``path`` without pickle.

    Parameters
    ----------
    estimator : NPIDEmbedder, AFPPairLossEmbedder, FineTunedClassifier, \
SpectrogramTransformer, TemporalStatistics, AudioReader or WeightedKNeighborsClassifier
        Must be fitted. The parameters of torch estimators must be plain values,
        torch optimizer classes or sklaudio estimators (``frontend``); custom
        ``callbacks`` cannot be stored.
    path : str or path-like
        Written atomically (a temporary file renamed into place).

    See Also
    --------
    load : The inverse.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklaudio import NPIDEmbedder
    >>> from sklaudio.persist import save, load
    >>> X = np.random.default_rng(0).normal(size=(8, 1, 16, 20)).astype(np.float32)
    >>> emb = NPIDEmbedder(embedding_dim=4, loss="softmax", max_epochs=1, batch_size=4,
    ...                    random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "npid.pt")
    >>> save(emb, path)
    >>> bool(np.allclose(load(path).transform(X), emb.transform(X), atol=1e-6))
    True
    """
    name = type(estimator).__name__
    if name not in _ESTIMATORS or not type(estimator).__module__.startswith("sklaudio."):
        raise TypeError(
            f"sklaudio.persist.save stores sklaudio estimators ({sorted(_ESTIMATORS)}), got "
            f"{name}; save the sklaudio steps of a pipeline one by one, or use joblib.dump "
            "(trusted files only)"
        )
    if not os.fspath(path):
        raise ValueError("path is empty; give the model file's name, e.g. 'model.pt'")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{os.fspath(path)!r} is a folder; give the model file's name, e.g. "
            f"{os.path.join(os.fspath(path), 'model.pt')!r}"
        )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "params": _params_json(estimator),
        "versions": _versions(),
    }
    output = getattr(estimator, "_sklearn_output_config", None)
    if output:  # set_output(transform="pandas"): the loaded model returns what this one did
        payload["output_config"] = dict(output)
    if hasattr(estimator, "_persist_state"):
        payload.update(estimator._persist_state())
    else:  # a numpy estimator: its fitted attributes are plain values and arrays
        check_is_fitted(estimator)  # (an unfitted one would write a file load refuses)
        fitted = {k: v for k, v in vars(estimator).items() if k.endswith("_") and k[0] != "_"}
        try:
            payload["attributes"] = json.dumps({k: _encode(v) for k, v in fitted.items()})
        except TypeError as exc:
            raise TypeError(f"cannot save {name}: a fitted attribute holds a {exc}") from None
        # large numeric state (a kNN's training embeddings) goes in as tensors, not JSON
        payload["arrays"] = {
            key: torch.from_numpy(np.ascontiguousarray(getattr(estimator, key)))
            for key in getattr(estimator, "_persisted_arrays", ())
            if hasattr(estimator, key)
        }
    atomic_torch_save(payload, path)


def _versions() -> dict:
    """The versions of what wrote a model file (named by load's errors)."""
    import sklearn
    import skorch

    from sklaudio import __version__

    versions = {
        "sklaudio": __version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "skorch": skorch.__version__,
    }
    return {k: str(v) for k, v in versions.items()}  # torch's is a str subclass (pickled)


def _written_by(payload) -> str:
    versions = payload.get("versions") if isinstance(payload, dict) else None
    if not isinstance(versions, dict) or "sklaudio" not in versions:
        return "an earlier sklaudio"
    return f"sklaudio {versions['sklaudio']}"


def load(path: str | os.PathLike, device: str | None = None):
    """Load an estimator written by :func:`save`, never running code from the file.

    Parameters
    ----------
    path : str or path-like
    device : str, default=None
        Override the estimator's ``device`` (e.g. ``'cpu'``); ignored for
        estimators without one (a kNN, a transformer without torch). By
        default a model saved with ``device='cuda'`` loads onto the CPU, with
        a warning, when no GPU is present.

    Returns
    -------
    estimator
        Fitted, ready to ``transform`` / ``predict``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        ``path`` does not exist, or is a folder.
    ValueError
        The file is not a sklaudio model file: a pickle (refused without being
        run), truncated, or naming a class sklaudio does not build.
    """
    payload = safe_torch_load(path, what="sklaudio model file")
    if isinstance(payload, dict) and "fingerprint" in payload and "epoch" in payload:
        raise ValueError(
            f"{os.fspath(path)!r} is a training checkpoint, not a model file: fit again with "
            "the same checkpoint= directory to resume (or finish) that run, then save the "
            "fitted estimator with sklaudio.persist.save"
        )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        if (
            isinstance(payload, dict)
            and payload
            and all(isinstance(v, torch.Tensor) for v in payload.values())
        ):
            raise ValueError(
                f"{os.fspath(path)!r} holds a state dict (tensors by parameter name), not a "
                "sklaudio model file: sklaudio.persist.load reads what sklaudio.persist.save "
                "writes. To start from torchvision ResNet-50 weights, pass the file as "
                "FineTunedClassifier(pretrained_weights=...)"
            )
        raise ValueError(
            f"{os.fspath(path)!r} is not a sklaudio model file: it holds "
            f"{_what_it_holds(payload)}, without the 'format' entry that "
            "sklaudio.persist.save writes"
        )
    version = payload.get("format_version", 0)
    if not isinstance(version, int):
        raise ValueError(f"{os.fspath(path)!r} has a format_version of {version!r}, not a number")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written by a newer sklaudio (model format "
            f"{payload['format_version']}); upgrade sklaudio to load it"
        )
    return _rebuild(payload, path, device)


def _what_it_holds(payload) -> str:
    if isinstance(payload, dict):
        keys = sorted(map(str, payload))
        return f"a dict of {', '.join(map(repr, keys[:5]))}{', ...' if len(keys) > 5 else ''}"
    return f"a {type(payload).__name__}"


class _NewerFileError(ValueError):
    """A model file holds a parameter or fitted attribute this sklaudio does not know:
    ``what`` says which, e.g. "the parameter(s) x of NPIDEmbedder"."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _newer(path, payload, exc: _NewerFileError) -> ValueError:
    return ValueError(
        f"{os.fspath(path)!r} was written by {_written_by(payload)} with {exc.what}, which "
        f"this sklaudio ({_versions()['sklaudio']}) does not know: upgrade sklaudio to "
        "load it (or load it with the sklaudio that wrote it)"
    )


def _unknown_params(cls, params: dict) -> None:
    """Raise _NewerFileError for the parameters of ``params`` that ``cls`` does not take
    (skorch nets take **kwargs and refuse an unknown one only when they are built)."""
    known = set(cls().get_params(deep=False))
    unknown = sorted(k for k in params if "__" not in k and k not in known)
    if unknown:
        raise _NewerFileError(f"the parameter(s) {', '.join(unknown)} of {cls.__name__}")


def _edited(path, exc: Exception) -> ValueError:
    # what sklaudio.persist.save writes never fails to decode: the file was edited (or
    # damaged before its checksums were computed)
    return ValueError(
        f"{os.fspath(path)!r} does not hold what sklaudio.persist.save writes "
        f"({type(exc).__name__}: {exc}); save the model again"
    )


def _rebuild(payload: dict, path, device):
    """The estimator of a model file's ``payload``."""
    try:
        cls = _estimator_class(payload["estimator"])
        params = {k: _decode(v) for k, v in json.loads(payload["params"]).items()}
        _unknown_params(cls, params)
    except _NewerFileError as exc:  # (also of a frontend or an embedder inside)
        raise _newer(path, payload, exc) from None
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise _edited(path, exc) from exc
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:  # a parameter this class does not take
        raise _edited(path, exc) from exc
    _run_here(estimator, device, path)
    if hasattr(estimator, "_restore_persisted"):
        try:
            estimator._restore_persisted(payload)
        except _NewerFileError as exc:  # a fitted attribute added since
            raise _newer(path, payload, exc) from None
        except (KeyError, AttributeError, json.JSONDecodeError) as exc:
            raise _edited(path, exc) from exc
        except RuntimeError as exc:
            if "state_dict" not in str(exc):  # out of memory, a device error: not the file
                raise
            raise _edited(path, exc) from exc
    else:
        for key, value in json.loads(payload.get("attributes", "{}")).items():
            if not (key.endswith("_") and key[:1].isalpha() and key.isidentifier()):
                raise ValueError(f"{key!r} in a model file is not a fitted attribute")
            setattr(estimator, key, _decode(value))
        _restore_arrays(estimator, payload.get("arrays", {}), path)
    _restore_output(estimator, payload.get("output_config"), path)
    return estimator


def _restore_output(estimator, config, path) -> None:
    """Redo a saved model's ``set_output``: a file without one is from before sklaudio kept
    it, or was saved with the default."""
    if config is None:
        return
    if not (isinstance(config, dict) and set(config) <= {"transform"}):
        raise _edited(path, ValueError(f"output_config {config!r} is not set_output's"))
    container = config.get("transform")
    if container in (None, "default"):
        return
    if container not in ("pandas", "polars"):  # (what sklearn's set_output takes)
        raise _edited(path, ValueError(f"output_config {config!r} is not set_output's"))
    if importlib.util.find_spec(container) is None:  # "polars" where it is not installed
        warn_user(
            f"{os.fspath(path)!r} was saved with set_output(transform={container!r}), "
            f"and {container} is not installed here: it returns numpy arrays"
        )
        return
    estimator.set_output(transform=container)


def _run_here(estimator, device, path) -> None:
    """Set every ``device`` parameter of ``estimator`` and of the estimators inside it (a
    frontend, a classifier's embedder) to ``device`` when one is given, else move those that
    name a device this machine lacks (a model saved on a GPU or a Mac) to the CPU, warning."""
    moved = _moved_devices(estimator, device)
    for key, value in estimator.get_params(deep=False).items():
        if type(value).__name__ == "FrozenEstimator":  # (its get_params hides the inner one)
            for inner_key, inner in _moved_devices(value.estimator, device).items():
                moved[f"{key}__{inner_key}"] = inner
    if moved:
        where = ", ".join(f"{k}={str(v)!r}" for k, v in moved.items())
        warn_user(
            f"{os.fspath(path)!r} was saved with {where}, which this machine does not have; "
            "loading it on the CPU (load(path, device=...) chooses another device)"
        )


def _moved_devices(estimator, device) -> dict:
    """Set the ``device`` parameters of ``estimator`` and of the estimators inside it;
    returns those moved to the CPU because this machine lacks them."""
    from sklaudio.features import _check_device_available

    keys = [k for k in estimator.get_params(deep=True) if k == "device" or k.endswith("__device")]
    moved = {}
    for key in sorted(keys, key=lambda k: k.count("__")):  # the outer one first
        value = estimator.get_params(deep=True)[key]
        if value is None:  # skorch's "leave the tensors where they are"
            continue
        if device is not None:
            new = device
        else:
            try:
                _check_device_available(value)
                continue
            except ValueError:
                new = "cpu"
                moved[key] = value
        if _same_device(value, new):
            continue
        if "__" in key:  # a nested estimator's own parameter, as set_params would set it
            owner, _, name = key.rpartition("__")
            estimator.get_params(deep=True)[owner].set_params(**{name: new})
        else:
            estimator.set_params(device=new)
    return moved


def _same_device(a, b) -> bool:
    return type(a) is type(b) and str(a) == str(b)


def _restore_arrays(estimator, arrays, path) -> None:
    """Set the arrays a numpy estimator saved as tensors, after checking that they are
    exactly the ones its class names, plain numeric tensors, consistent with each other."""
    expected = set(getattr(type(estimator), "_persisted_arrays", ()))
    if not isinstance(arrays, dict) or set(arrays) != expected:
        found = sorted(arrays) if isinstance(arrays, dict) else type(arrays).__name__
        raise ValueError(
            f"{os.fspath(path)!r}: {type(estimator).__name__} needs the arrays "
            f"{sorted(expected)}, the file holds {found}"
        )
    for key, tensor in arrays.items():
        if not (
            isinstance(tensor, torch.Tensor)
            and tensor.layout == torch.strided
            and (tensor.dtype.is_floating_point or tensor.dtype == torch.int64)
            and tensor.dtype != torch.bfloat16
        ):
            raise ValueError(f"{os.fspath(path)!r}: array {key!r} is not a numeric tensor")
        setattr(estimator, key, tensor.detach().cpu().numpy())
    if hasattr(estimator, "_check_restored"):
        try:
            estimator._check_restored()
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)!r}: {exc}") from None

"""Display objects (matplotlib is optional: ``pip install sklaudio[plot]``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["EmbeddingDisplay", "FineTuningCurveDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib; install it with `pip install sklaudio[plot]` "
            "(or `pip install matplotlib`)"
        ) from exc
    return plt


def _curve_from_history(history, metric: str) -> np.ndarray:
    """One fold's per-epoch values from a skorch History, a list of epoch dicts, or numbers."""
    rows = history.to_list() if hasattr(history, "to_list") else list(history)
    if rows and isinstance(rows[0], Mapping):
        missing = [i + 1 for i, row in enumerate(rows) if metric not in row]
        if missing:
            keys = sorted({k for row in rows for k in row if k != "batches"})
            advice = (
                "; fit with train_split=predefined_split(...) to score a held-out fold every epoch"
                if metric.startswith("valid")
                else ""
            )
            raise ValueError(
                f"epochs {missing[:5]} of a history have no {metric!r} (its epochs hold "
                f"{keys}){advice}"
            )
        return np.asarray([row[metric] for row in rows], dtype=float)
    return np.asarray(rows, dtype=float)


class FineTuningCurveDisplay:
    """Accuracy per epoch, mean ± std over folds, one line per pre-training (DLS Fig. 4).

    Parameters
    ----------
    curves : dict of str to ndarray of shape (n_folds, n_epochs)
        One entry per pre-training (``'scratch'``, ``'DLS'``, ``'ImageNet'``).
    metric : str, default='valid_acc'
        Shown on the y axis.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure, after :meth:`plot`
    lines_ : dict of str to Line2D

    Examples
    --------
    >>> from sklaudio.plotting import FineTuningCurveDisplay
    >>> disp = FineTuningCurveDisplay.from_histories(
    ...     {"scratch": [[0.2, 0.4, 0.5], [0.3, 0.4, 0.6]],
    ...      "DLS": [[0.6, 0.8, 0.9], [0.7, 0.8, 0.9]]})
    >>> disp.mean_std()["DLS"][0].round(2).tolist()
    [0.65, 0.8, 0.9]
    """

    def __init__(self, curves: Mapping[str, np.ndarray], metric: str = "valid_acc"):
        self.curves = curves
        self.metric = metric

    @classmethod
    def from_histories(
        cls, histories: Mapping[str, Sequence], metric: str = "valid_acc"
    ) -> FineTuningCurveDisplay:
        """From per-fold histories: skorch ``History`` objects, lists of epoch dicts
        (``history_.to_list()`` saved as JSON), or plain lists of values."""
        curves = {}
        for name, folds in histories.items():
            if hasattr(folds, "to_list") or (
                isinstance(folds, Sequence) and folds and isinstance(folds[0], Mapping)
            ):
                raise TypeError(
                    f"histories[{name!r}] is one history; pass a list with one history per "
                    f"fold, e.g. {{{name!r}: [clf.history_]}}"
                )
            per_fold = [_curve_from_history(h, metric) for h in folds]
            if not per_fold:
                raise ValueError(f"no fold for {name!r}")
            lengths = {len(c) for c in per_fold}
            if len(lengths) != 1:
                raise ValueError(f"the folds of {name!r} have different epoch counts {lengths}")
            curves[name] = np.stack(per_fold)
        return cls(curves, metric=metric)

    @classmethod
    def from_estimators(
        cls, estimators: Mapping[str, Sequence], metric: str = "valid_acc"
    ) -> FineTuningCurveDisplay:
        """From fitted classifiers (one per fold) whose ``history_`` holds ``metric``."""
        return cls.from_histories(
            {name: [est.history_ for est in ests] for name, ests in estimators.items()}, metric
        )

    def mean_std(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per pre-training: mean and standard deviation over folds, per epoch."""
        stats = {}
        for name, curve in self.curves.items():
            try:
                c = np.asarray(curve, dtype=float)  # lists of lists work as arrays do
            except ValueError:
                c = None  # ragged
            if c is None or c.ndim != 2 or not c.size:
                raise ValueError(
                    f"curves[{name!r}] must be (n_folds, n_epochs) values with the same number "
                    "of epochs in every fold; build the display with from_histories"
                )
            stats[name] = (c.mean(axis=0), c.std(axis=0))
        return stats

    def plot(self, ax=None, *, std: bool = True, title: str | None = None):
        """Draw the curves (a band of ± one std over folds with ``std=True``)."""
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        self.lines_ = {}
        for name, (mean, spread) in self.mean_std().items():
            epochs = np.arange(1, len(mean) + 1)
            n_folds = len(self.curves[name])
            marker = "o" if len(mean) == 1 else None  # a single epoch is a point, not a line
            folds = f"{n_folds} fold{'s' if n_folds != 1 else ''}"
            (line,) = ax.plot(epochs, mean, marker=marker, label=f"{name} ({folds})")
            if std and n_folds > 1:
                ax.fill_between(
                    epochs, mean - spread, mean + spread, alpha=0.2, color=line.get_color()
                )
            self.lines_[name] = line
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs, not 1.25 of one
        ax.set_xlabel("epoch")
        ax.set_ylabel(self.metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _integer_valued(labels: np.ndarray) -> bool:
    """Integers, or floats that are all whole numbers (labels read back from a CSV)."""
    if np.issubdtype(labels.dtype, np.integer):
        return True
    if labels.dtype == object:  # integers held as objects (pandas' nullable Int64, say)
        try:
            labels = labels.astype(float)
        except (TypeError, ValueError):
            return False
    return bool(
        np.issubdtype(labels.dtype, np.floating)
        and np.isfinite(labels).all()
        and (labels == np.round(labels)).all()
    )


def _check_labels(labels, target_names, n_points: int) -> None:
    """One label per point; integer labels index ``target_names``."""
    if labels is None:
        return
    labels = np.asarray(labels)
    if labels.shape != (n_points,):
        raise ValueError(
            f"expected one label per point, shape ({n_points},), got labels of shape {labels.shape}"
        )
    if target_names is not None and labels.size:
        if not _integer_valued(labels):
            raise ValueError(
                "target_names names integer labels (label i is target_names[i]); these "
                f"labels are {labels.dtype} values such as {labels.flat[0]!r}: pass "
                "target_names=None, or the labels as integers"
            )
        labels = labels.astype(float).astype(int)  # (objects may hold '1.0' strings)
        if labels.min() < 0 or labels.max() >= len(target_names):
            raise ValueError(
                f"labels run from {labels.min()} to {labels.max()} but target_names has "
                f"{len(target_names)} names"
            )


class EmbeddingDisplay:
    """A 2-D map of embeddings (PCA or t-SNE), coloured by label (AFP Fig. 2).

    Parameters
    ----------
    points : ndarray of shape (n, 2)
    labels : array-like of shape (n,), default=None
    target_names : list of str, default=None
        Names of integer labels, for the legend.
    method : str, default='pca'
        How ``points`` were made (axis titles).

    Attributes
    ----------
    ax_, figure_ : after :meth:`plot`

    Examples
    --------
    >>> import numpy as np
    >>> from sklaudio.plotting import EmbeddingDisplay
    >>> Z = np.random.default_rng(0).normal(size=(30, 8))
    >>> EmbeddingDisplay.from_embeddings(Z, np.arange(30) % 3).points.shape
    (30, 2)
    """

    def __init__(self, points, labels=None, target_names=None, method: str = "pca"):
        self.points = points
        self.labels = labels
        self.target_names = target_names
        self.method = method

    @classmethod
    def from_embeddings(
        cls, Z, y=None, *, method: str = "pca", target_names=None, random_state=0
    ) -> EmbeddingDisplay:
        """Project embeddings ``(n, d)`` to 2-D with ``'pca'`` or ``'tsne'``."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or len(Z) < 3:
            raise ValueError(f"expected embeddings of shape (n >= 3, d), got {Z.shape}")
        _check_labels(y, target_names, len(Z))  # before a projection that can take minutes
        if method == "pca":
            from sklearn.decomposition import PCA

            points = PCA(n_components=2, random_state=random_state).fit_transform(Z)
        elif method == "tsne":
            from sklearn.manifold import TSNE

            perplexity = min(30.0, (len(Z) - 1) / 3)
            points = TSNE(2, perplexity=perplexity, random_state=random_state).fit_transform(Z)
        else:
            raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
        _check_labels(y, target_names, len(Z))
        return cls(points, y, target_names, method)

    @classmethod
    def from_estimator(cls, embedder, X, y=None, **kwargs) -> EmbeddingDisplay:
        """Embed ``X`` with a fitted embedder (or pipeline ending in one), then project."""
        return cls.from_embeddings(embedder.transform(X), y, **kwargs)

    def plot(self, ax=None, *, title: str | None = None, **scatter_kwargs):
        """Scatter the points, one colour per label."""
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5))
        _check_labels(self.labels, self.target_names, len(self.points))
        labels = (
            np.zeros(len(self.points), dtype=int)
            if self.labels is None
            else np.asarray(self.labels)
        )
        for label in np.unique(labels):
            mask = labels == label
            name = label
            if self.target_names is not None:  # integer-valued (checked above)
                name = self.target_names[int(label)]
            ax.scatter(*self.points[mask].T, s=12, label=str(name), **scatter_kwargs)
        if self.labels is not None:
            ax.legend(fontsize="small", markerscale=1.5, loc="best")
        ax.set_xlabel(f"{self.method} 1")
        ax.set_ylabel(f"{self.method} 2")
        if title:
            ax.set_title(title)
        self.ax_, self.figure_ = ax, ax.figure
        return self

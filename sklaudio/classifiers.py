"""Classifiers on top of embeddings."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["WeightedKNeighborsClassifier"]


class WeightedKNeighborsClassifier(ClassifierMixin, BaseEstimator):
    """kNN on cosine similarity with votes weighted by ``exp(sim / τ)`` (NPID's evaluation).

    For each query, the ``n_neighbors`` training samples of highest cosine
    similarity ``s`` vote for their class with weight ``exp(s / temperature)``;
    ``predict_proba`` is the normalised vote. This is the weighted kNN with
    which DLS and NPID evaluate embeddings (DLS section 4: K = 5).

    Parameters
    ----------
    n_neighbors : int, default=5
    temperature : float, default=0.07
        τ; smaller values let the closest neighbour dominate.
    batch_size : int, default=1024
        Queries compared with the training set at once (memory bound:
        ``batch_size × n_train`` similarities).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

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
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        self._y = self._encoder.transform(y)
        self._X = self._normalise(X)
        return self

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

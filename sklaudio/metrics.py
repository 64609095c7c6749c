"""Scores for unsupervised embeddings."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import confusion_matrix, make_scorer
from sklearn.utils.validation import check_consistent_length, column_or_1d

__all__ = ["cluster_accuracy", "cluster_accuracy_scorer"]


def cluster_accuracy(y_true, y_pred) -> float:
    """Accuracy of a clustering under the best one-to-one cluster → class mapping.

    The mapping maximises the number of matched samples and is found with the
    Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`), as in
    the AFP paper's clustering evaluation (Meyer et al., 2017, section 3).
    With more clusters than classes (or the reverse), unmatched clusters count
    as errors.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth labels (any hashable values).
    y_pred : array-like of shape (n_samples,)
        Cluster ids (any hashable values).

    Returns
    -------
    float in [0, 1]

    References
    ----------
    H. W. Kuhn, "The Hungarian method for the assignment problem", 1955.

    Examples
    --------
    >>> from sklaudio.metrics import cluster_accuracy
    >>> cluster_accuracy(["a", "a", "b", "b"], [1, 1, 0, 0])
    1.0
    >>> cluster_accuracy([0, 0, 1, 1], [0, 1, 1, 1])
    0.75
    """
    y_true = column_or_1d(y_true, warn=True)
    y_pred = column_or_1d(y_pred, warn=True)
    check_consistent_length(y_true, y_pred)
    if y_true.shape[0] == 0:
        raise ValueError("cluster_accuracy needs at least one sample, got 0")
    _, true_ids = np.unique(y_true, return_inverse=True)
    _, pred_ids = np.unique(y_pred, return_inverse=True)
    counts = confusion_matrix(true_ids, pred_ids)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / y_true.shape[0])


#: ``scoring=`` object for clustering estimators whose ``predict`` gives cluster ids: the
#: :func:`cluster_accuracy` of the held-out clips, e.g.
#: ``cross_val_score(make_pipeline(FrozenEstimator(embedder), KMeans(10)), X, y,
#: cv=PredefinedSplit(folds), scoring=cluster_accuracy_scorer)`` (k-means is fitted on the
#: training folds; ``sklaudio evaluate --protocol cluster`` clusters each test fold itself).
cluster_accuracy_scorer = make_scorer(cluster_accuracy)

from itertools import permutations

import numpy as np
import pytest

from sklaudio.metrics import cluster_accuracy


def _brute_force(y_true, y_pred):
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    k = max(len(classes), len(clusters))
    padded = list(clusters) + [None] * (k - len(clusters))
    for perm in permutations(padded, k):
        mapping = dict(zip(perm, list(classes) + [None] * (k - len(classes))))
        best = max(best, sum(mapping.get(p) == t for t, p in zip(y_true, y_pred)))
    return best / len(y_true)


@pytest.mark.parametrize("seed", range(6))
def test_cluster_accuracy_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3 + seed % 2, size=30)
    y_pred = rng.integers(0, 4 - seed % 3, size=30)
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(_brute_force(y_true, y_pred))


def test_cluster_accuracy_is_invariant_to_relabelling():
    y = np.array(["dog", "dog", "rain", "rain", "sea", "sea"])
    assert cluster_accuracy(y, [2, 2, 0, 0, 1, 1]) == 1.0
    assert cluster_accuracy(y, [5, 5, 5, 5, 5, 5]) == pytest.approx(1 / 3)


def test_cluster_accuracy_errors():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cluster_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="at least one sample"):
        cluster_accuracy([], [])

import numpy as np
import pytest

from sklaudio.classifiers import WeightedKNeighborsClassifier


def _reference(Xtr, ytr, Xte, k, t):
    classes = np.unique(ytr)
    norm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    out = []
    for q in norm(Xte):
        sim = norm(Xtr) @ q
        top = np.argsort(-sim)[:k]
        votes = {c: 0.0 for c in classes}
        for i in top:
            votes[ytr[i]] += np.exp(sim[i] / t)
        total = sum(votes.values())
        out.append([votes[c] / total for c in classes])
    return np.array(out)


def test_matches_loop_reference_with_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = np.array(["dog", "rain", "sea"])[rng.integers(0, 3, 60)]
    clf = WeightedKNeighborsClassifier(n_neighbors=5, temperature=0.1, batch_size=7).fit(
        X[:40], y[:40]
    )
    proba = clf.predict_proba(X[40:])
    np.testing.assert_allclose(proba, _reference(X[:40], y[:40], X[40:], 5, 0.1), rtol=1e-6)
    assert clf.classes_.tolist() == ["dog", "rain", "sea"]
    assert set(clf.predict(X[40:])) <= {"dog", "rain", "sea"}


def test_small_temperature_follows_nearest_neighbour():
    X = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    y = [0, 1, 1, 1]
    q = [[0.99, 0.1]]
    assert WeightedKNeighborsClassifier(n_neighbors=4, temperature=0.01).fit(X, y).predict(q) == 0
    assert WeightedKNeighborsClassifier(n_neighbors=4, temperature=100).fit(X, y).predict(q) == 1


def test_bad_params():
    with pytest.raises(ValueError, match="temperature"):
        WeightedKNeighborsClassifier(temperature=0).fit([[1.0]], [0])
    with pytest.raises(ValueError, match="'n_neighbors' parameter .* a number, not True"):
        WeightedKNeighborsClassifier(n_neighbors=True).fit([[1.0]], [0])


def test_more_neighbours_than_training_samples_warns_and_all_vote():
    X = np.eye(3)
    with pytest.warns(UserWarning, match="n_neighbors=50 but only 3 training samples"):
        clf = WeightedKNeighborsClassifier(n_neighbors=50).fit(X, ["a", "b", "b"])
    assert clf.predict_proba(X[:1]).shape == (1, 2)

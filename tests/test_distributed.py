"""Searches and cross-validation on a real dask.distributed LocalCluster (2 worker processes)."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, PredefinedSplit, cross_validate
from sklearn.pipeline import Pipeline

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.datasets import make_sounds
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer

distributed = pytest.importorskip("distributed")
from joblib import parallel_backend  # noqa: E402


@pytest.fixture(scope="module")
def data():
    sounds = make_sounds(n_samples=48, n_classes=3, sample_rate=8000, duration=0.5, random_state=0)
    X = SpectrogramTransformer("log_mel", sample_rate=8000, n_mels=32, n_fft=256).fit_transform(
        sounds.data
    )
    folds = np.arange(len(X)) % 2
    return X, sounds.target, PredefinedSplit(folds)


@pytest.fixture(scope="module")
def client():
    # Processes, not threads: what a cluster does (every task's model is pickled there and back).
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _pipeline():
    return Pipeline(
        [
            (
                "npid",
                NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=2, batch_size=8, random_state=0),
            ),
            ("knn", WeightedKNeighborsClassifier(n_neighbors=3)),
        ]
    )


def _fit_and_embed(pipeline, X, y):
    """Runs on a worker: the fitted pipeline and what it computed there."""
    pipeline.fit(X, y)
    npid = pipeline.named_steps["npid"]
    return pipeline, npid.memory_bank_.memory.numpy().copy(), npid.transform(X)


def test_grid_search_runs_on_both_workers(data, client):
    X, y, cv = data
    grid = GridSearchCV(
        _pipeline(),
        {"npid__embedding_dim": [4, 8], "npid__nce_t": [0.1, 0.4]},
        cv=cv,
        error_score="raise",
    )
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        grid.fit(X, y)
    assert len({task["worker"] for task in tasks.data}) == 2, "the fits ran on both workers"
    scores = grid.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1))
    assert grid.predict(X).shape == (len(X),)


def test_models_fitted_on_workers_come_back_usable(data, client):
    # Bit-identical training across processes is not promised on the CPU (float kernels
    # may round differently with another memory alignment), so the model that came back
    # is compared with what the worker itself computed with it.
    X, y, _ = data
    future = client.submit(_fit_and_embed, _pipeline(), X, y, pure=False)
    pipeline, bank_on_worker, embedded_on_worker = future.result()
    npid = pipeline.named_steps["npid"]
    np.testing.assert_array_equal(npid.memory_bank_.memory.numpy(), bank_on_worker)
    assert len(npid.history_) == 2 and all(np.isfinite(npid.history_[:, "train_loss"]))
    np.testing.assert_allclose(npid.transform(X), embedded_on_worker, rtol=1e-5, atol=1e-6)
    assert pipeline.predict(X).shape == (len(X),)


def test_cross_validate_returns_fitted_estimators_from_workers(data, client):
    X, y, cv = data
    with parallel_backend("dask"):
        result = cross_validate(_pipeline(), X, y, cv=cv, return_estimator=True)
    for fitted in result["estimator"]:
        npid = fitted.named_steps["npid"]
        assert npid.memory_bank_.memory.shape == (len(X) // 2, 8)
        assert fitted.score(X, y) >= 0

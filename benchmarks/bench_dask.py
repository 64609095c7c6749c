"""Distributed grid search: an 8-candidate NPID grid on a dask LocalCluster, 2 workers vs 1.

Each candidate pre-trains its own encoder (tiny ESResNet) on generated sounds and is scored
by weighted kNN on two predefined folds: 8 candidates x 2 folds = 16 fits, plus the refit
of the best candidate in the client process (serial by design; timed apart too). The same
search runs on a cluster of 1 worker and on one of 2 workers (one process and one torch
thread each), and the script prints the wall times and the speed-ups. Each cluster is
started and its workers warmed before the clock starts, as in a long-running cluster:
they import sklaudio and run one small fit (a fresh process's first fit takes about twice
as long as the next ones).

joblib sizes its dask back end by the cluster's threads, so with a one-thread cluster it
runs the fits one after the other in the client process, not on the worker; the client's
torch is therefore pinned to one thread as well, like every worker's. For reference, the
script also times the same search without dask, in this process with torch on all cores
(what one would do on a single machine without a cluster).

Workers start without dask's default ``MALLOC_TRIM_THRESHOLD_=65536``: with it, glibc hands
every freed tensor back to the OS and a torch fit runs about 1.6x slower (docs/scaling.rst).
Pass ``--dask-malloc-trim`` to keep dask's default and see the difference.

    python benchmarks/bench_dask.py [--n-clips 256] [--epochs 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import machine_summary
from joblib import parallel_backend
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.datasets import make_sounds
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer

GRID = {"npid__embedding_dim": [32, 64, 96, 128], "npid__nce_t": [0.1, 0.4]}


def search(X, y, cv, epochs):
    pipe = Pipeline(
        [
            (
                "npid",
                NPIDEmbedder(
                    backbone="esresnet_tiny",
                    nce_k=32,
                    max_epochs=epochs,
                    batch_size=32,
                    random_state=0,
                ),
            ),
            ("knn", WeightedKNeighborsClassifier()),
        ]
    )
    return GridSearchCV(pipe, GRID, cv=cv)


def warm_up(X, epochs):
    """One small fit in a fresh process: torch's kernels and allocator get going."""
    NPIDEmbedder(nce_k=32, max_epochs=1, batch_size=32, random_state=0).fit(X)


def timed_search(n_workers, X, y, cv, epochs, repeat, keep_malloc_trim=False):
    """Median wall time of ``repeat`` searches on one warm cluster (total, refit)."""
    import dask
    from dask.distributed import Client, LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if not keep_malloc_trim:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        # Warm the workers as a long-running cluster is: sklaudio imported and one small fit
        # of the same shapes done (a process's first fit takes about twice as long), as the
        # client is warm from the search without dask.
        client.run(warm_up, X[:64], epochs)
        threads = set(client.run(lambda: __import__("torch").get_num_threads()).values())
        totals, refits = [], []
        for _ in range(repeat):
            grid = search(X, y, cv, epochs)
            start = time.perf_counter()
            with parallel_backend("dask"):
                grid.fit(X, y)
            totals.append(time.perf_counter() - start)
            refits.append(grid.refit_time_)
    total, refit = float(np.median(totals)), float(np.median(refits))
    print(
        f"{n_workers} worker(s), torch threads per worker {sorted(threads)}: median {total:.1f} s "
        f"(search {total - refit:.1f} s + refit {refit:.1f} s); runs "
        + ", ".join(f"{t:.1f}" for t in totals)
    )
    return total, refit, grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-clips", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="searches per cluster (median)")
    parser.add_argument("--dask-malloc-trim", action="store_true")
    args = parser.parse_args()
    print(machine_summary())

    sounds = make_sounds(
        n_samples=args.n_clips, n_classes=8, sample_rate=16000, duration=1.0, random_state=0
    )
    X = SpectrogramTransformer("log_mel", sample_rate=16000, n_mels=64).fit_transform(sounds.data)
    cv = PredefinedSplit(np.arange(len(X)) % 2)
    n_candidates = int(np.prod([len(v) for v in GRID.values()]))
    print(f"{n_candidates} candidates x 2 folds, clips {X.shape}, {args.epochs} epochs each")

    y, trim = sounds.target, args.dask_malloc_trim
    all_threads = torch.get_num_threads()
    runs = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        local = search(X, y, cv, args.epochs).fit(X, y)
        runs.append(time.perf_counter() - start)
    no_dask = float(np.median(runs))
    listed = ", ".join(f"{t:.1f}" for t in runs)
    print(
        f"no dask, this process, torch on {all_threads} threads: median {no_dask:.1f} s; {listed}"
    )
    torch.set_num_threads(1)  # the client works like one more worker from here on
    one, refit_one, grid_one = timed_search(1, X, y, cv, args.epochs, args.repeat, trim)
    two, refit_two, grid_two = timed_search(2, X, y, cv, args.epochs, args.repeat, trim)
    search_one, search_two = one - refit_one, two - refit_two
    print(f"speed-up 2 workers vs 1: {one / two:.2f}x with the refit (goal >= 1.7x)")
    print(f"                         {search_one / search_two:.2f}x for the distributed search")
    print(f"2 workers vs no dask on {all_threads} threads: {no_dask / two:.2f}x")
    score_gap = np.abs(
        grid_one.cv_results_["mean_test_score"] - grid_two.cv_results_["mean_test_score"]
    ).max()
    print(f"largest score difference between the 1- and 2-worker searches: {score_gap:.4f}")
    best = f"{grid_two.best_score_:.3f} (no dask {local.best_score_:.3f})"
    print(f"best {grid_two.best_params_}: {best}")


if __name__ == "__main__":
    main()

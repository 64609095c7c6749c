"""NPID on ESC-10: which read-out of the fitted encoder the weighted kNN should use.

For every official fold an ``NPIDEmbedder`` is fitted on the training folds
(no labels) and the weighted 5-NN (τ=0.07) scores several read-outs of the same
fitted model on the test fold, each raw and standardised with the training
folds' mean and std:

- ``embedding``: ``output='embedding'``, the 128-d unit vectors of training;
- ``features``: ``output='features'``, the pooled backbone features;
- ``stats s…``: ``output='stats'`` with ``stats_stages`` = the listed stages.

``--epochs 0`` scores the untrained encoder (one epoch at lr 0: only the batch-
norm statistics adapt), the control for what instance discrimination adds.

    python benchmarks/npid_readouts.py [--epochs 200] [--seed 0] [--folds 1 2 3 4 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import default_esc10_root, esc10_log_mel, machine_summary

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.embedders import NPIDEmbedder

READOUTS = {
    "embedding": {"output": "embedding"},
    "features": {"output": "features"},
    "stats s2": {"output": "stats", "stats_stages": (2,)},
    "stats s3": {"output": "stats", "stats_stages": (3,)},
    "stats s2,3": {"output": "stats", "stats_stages": (2, 3)},
    "stats s3,4": {"output": "stats", "stats_stages": (3, 4)},
    "stats s2,3,4": {"output": "stats", "stats_stages": (2, 3, 4)},
}


def knn_accuracy(train, y_train, test, y_test, standardise):
    if standardise:
        mean, std = train.mean(0), train.std(0) + 1e-6
        train, test = (train - mean) / std, (test - mean) / std
    knn = WeightedKNeighborsClassifier(n_neighbors=5, temperature=0.07)
    return knn.fit(train, y_train).score(test, y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--backbone", default="esresnet_tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    args = parser.parse_args(argv)

    start = time.perf_counter()
    esc10, S = esc10_log_mel(args.root, n_mels=64)
    scores = {(name, std): [] for name in READOUTS for std in (False, True)}
    for fold in args.folds:
        train, test = esc10.folds != fold, esc10.folds == fold
        npid = NPIDEmbedder(
            backbone=args.backbone,
            max_epochs=max(args.epochs, 1),
            lr=1e-3 if args.epochs else 0.0,
            random_state=args.seed,
            device="cpu",
        ).fit(S[train])
        for name, params in READOUTS.items():
            npid.set_params(**params)
            z_train, z_test = npid.transform(S[train]), npid.transform(S[test])
            for std in (False, True):
                acc = knn_accuracy(z_train, esc10.target[train], z_test, esc10.target[test], std)
                scores[name, std].append(acc)
        print(f"fold {fold} done, {time.perf_counter() - start:.0f} s", flush=True)

    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    folds = " | ".join(f"fold {f}" for f in args.folds)
    print(f"| read-out | standardised | {folds} | mean |")
    print("| --- | --- |" + " ---: |" * (len(args.folds) + 1))
    for (name, std), accs in scores.items():
        cells = " | ".join(f"{a:.3f}" for a in accs)
        print(f"| {name} | {'yes' if std else 'no'} | {cells} | {np.mean(accs):.3f} |")
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

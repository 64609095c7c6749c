"""NPID (DLS) on ESC-10: weighted-kNN accuracy over the official folds, beside the floor.

For every official fold the embedder is fitted on the four training folds
only (no labels), then a weighted kNN (K=5, τ=0.07) on the embeddings of the
training folds classifies the test fold. The log-mel + 5-NN floor runs in the
same process on the same waveforms.

    python benchmarks/npid_esc10.py [--root ../shared/data/esc10] [--epochs 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import default_esc10_root, machine_summary
from floor_esc10 import floor_pipeline
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.pipeline import Pipeline

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.datasets import load_esc10
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader

SR = 22050


def npid_pipeline(args):
    return Pipeline(
        [
            (
                "spectrogram",
                SpectrogramTransformer(
                    "log_mel",
                    sample_rate=SR,
                    n_fft=1024,
                    hop_length=512,
                    n_mels=args.n_mels,
                    device="cpu",
                ),
            ),
            (
                "npid",
                NPIDEmbedder(
                    embedding_dim=128,
                    nce_k=args.nce_k,
                    nce_t=args.nce_t,
                    nce_m=0.5,
                    loss=args.loss,
                    backbone=args.backbone,
                    max_epochs=args.epochs,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    random_state=args.seed,
                    verbose=1,
                ),
            ),
            ("knn", WeightedKNeighborsClassifier(n_neighbors=5, temperature=0.07)),
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--backbone", default="esresnet_small")
    parser.add_argument("--loss", default="nce", choices=["nce", "softmax"])
    parser.add_argument("--nce-k", type=int, default=64)
    parser.add_argument("--nce-t", type=float, default=0.4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-norm", action="store_true", help="per-bin batch norm at input")
    parser.add_argument("--folds", type=int, nargs="*", default=None, help="only these test folds")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    esc10 = load_esc10(args.root)
    waves = AudioReader(sample_rate=SR, duration=5.0, n_jobs=-1).fit_transform(esc10.filenames)
    folds = esc10.folds
    if args.folds:
        keep = np.isin(folds, np.unique(folds))  # all clips; test folds restricted below
        cv = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in args.folds]
    else:
        keep = slice(None)
        cv = PredefinedSplit(folds)
    X, y = waves[keep], esc10.target[keep]
    floor = cross_val_score(floor_pipeline(sample_rate=SR), X, y, cv=cv)
    t_floor = time.perf_counter() - start
    npid = cross_val_score(npid_pipeline(args), X, y, cv=cv)
    total = time.perf_counter() - start

    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print("| test fold | floor: log-mel stats + 5-NN | NPID + weighted 5-NN |")
    print("| ---: | ---: | ---: |")
    names = args.folds or list(np.unique(folds))
    for f, a, b in zip(names, floor, npid):
        print(f"| {f} | {a:.3f} | {b:.3f} |")
    print(
        f"| mean | {floor.mean():.3f} ± {floor.std():.3f} | {npid.mean():.3f} ± {npid.std():.3f} |"
    )
    print(f"time: floor {t_floor:.0f} s, whole run {total:.0f} s")


if __name__ == "__main__":
    main()

"""NPID (DLS) on ESC-10: weighted-kNN accuracy over the official folds, beside the floor.

For every official fold the embedder is fitted on the four training folds
only (no labels), then a weighted kNN (K=5, τ=0.07) on the embeddings of the
training folds classifies the test fold. The log-mel + 5-NN floor runs in the
same process on the same waveforms.

Each fitted embedder is scored with two read-outs: ``output='embedding'`` (the
paper's 128-d unit vectors) and ``output='stats'`` (temporal mean and std of the
backbone's stages 2–4, standardised on the training folds), each as a
``Pipeline([FrozenEstimator(spectrogram + embedder), (StandardScaler,) kNN])``.

    python benchmarks/npid_esc10.py [--root ../shared/data/esc10] [--epochs 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import default_esc10_root, machine_summary
from floor_esc10 import floor_pipeline
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.datasets import load_esc10
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader

SR = 22050


def npid_class(max_freq_shift=None):
    """NPIDEmbedder, or one whose augmentation shifts frequencies by up to
    ``max_freq_shift`` of the bins (0: off, as before 2026-11-24)."""
    if max_freq_shift is None:
        return NPIDEmbedder
    settings = {**NPIDEmbedder._augment_settings, "max_freq_shift": max_freq_shift}
    return type("NPIDEmbedder", (NPIDEmbedder,), {"_augment_settings": settings})


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
                npid_class(args.max_freq_shift)(
                    embedding_dim=128,
                    nce_k=args.nce_k,
                    nce_t=args.nce_t,
                    nce_m=0.5,
                    loss=args.loss,
                    backbone=args.backbone,
                    max_epochs=args.epochs,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    input_norm=args.input_norm,
                    random_state=args.seed,
                    verbose=1,
                ),
            ),
        ]
    )


READOUTS = {"embedding": [], "stats": [("scale", StandardScaler())]}


def readout_scores(embedder, X, y, train, test):
    """Weighted-kNN accuracy on the test clips for each read-out of one fitted embedder."""
    scores = {}
    for output, scaling in READOUTS.items():
        embedder[-1].set_params(output=output)  # only the read-out changes, not the fit
        knn = WeightedKNeighborsClassifier(n_neighbors=5, temperature=0.07)
        pipe = Pipeline([("embed", FrozenEstimator(embedder)), *scaling, ("knn", knn)])
        scores[output] = pipe.fit(X[train], y[train]).score(X[test], y[test])
    return scores


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
    parser.add_argument(
        "--max-freq-shift",
        type=float,
        default=None,
        help="augmentation's frequency shift, a fraction of the bins (default NPIDEmbedder's)",
    )
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
    splits = cv.split(X, y) if hasattr(cv, "split") else cv
    per_fold = [
        readout_scores(npid_pipeline(args).fit(X[train]), X, y, train, test)
        for train, test in splits
    ]
    emb = np.array([s["embedding"] for s in per_fold])
    stats = np.array([s["stats"] for s in per_fold])
    total = time.perf_counter() - start

    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print(
        "| test fold | floor: log-mel stats + 5-NN | NPID embedding + weighted 5-NN "
        "| NPID stage statistics + weighted 5-NN |"
    )
    print("| ---: | ---: | ---: | ---: |")
    names = args.folds or list(np.unique(folds))
    for f, a, b, c in zip(names, floor, emb, stats):
        print(f"| {f} | {a:.3f} | {b:.3f} | {c:.3f} |")
    print(
        "| mean | "
        + " | ".join(f"{v.mean():.3f} ± {v.std():.3f}" for v in (floor, emb, stats))
        + " |"
    )
    print(f"time: floor {t_floor:.0f} s, whole run {total:.0f} s")


if __name__ == "__main__":
    main()

"""The floor on ESC-10: log-mel statistics + 5-NN over the official folds.

Every learned embedding has to beat this hand-crafted baseline.

    python benchmarks/floor_esc10.py [--root ../shared/data/esc10]
"""

from __future__ import annotations

import argparse
import time

from _common import default_esc10_root, machine_summary
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklaudio.datasets import load_esc10
from sklaudio.features import SpectrogramTransformer, TemporalStatistics
from sklaudio.io import AudioReader


def floor_pipeline(sample_rate=22050, memory=None, n_jobs=-1):
    """log-mel (128 bands) → mean and std over time → standardise → 5-NN (distance weights).

    Takes paths or waveforms at ``sample_rate`` (AudioReader passes waveforms through).
    """
    return Pipeline(
        [
            ("audio", AudioReader(sample_rate=sample_rate, duration=5.0, n_jobs=n_jobs)),
            ("logmel", SpectrogramTransformer("log_mel", sample_rate=sample_rate, device="cpu")),
            ("stats", TemporalStatistics()),
            ("scale", StandardScaler()),
            ("knn", KNeighborsClassifier(n_neighbors=5, weights="distance")),
        ],
        memory=memory,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    args = parser.parse_args(argv)
    esc10 = load_esc10(args.root)
    start = time.perf_counter()
    scores = cross_val_score(
        floor_pipeline(), esc10.filenames, esc10.target, cv=PredefinedSplit(esc10.folds)
    )
    print(f"machine: {machine_summary()}")
    print("ESC-10, official folds, log-mel statistics + 5-NN (distance):")
    print(" | ".join(f"fold {i + 1}: {s:.3f}" for i, s in enumerate(scores)))
    print(
        f"mean accuracy {scores.mean():.3f} ± {scores.std():.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()

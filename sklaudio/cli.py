"""The ``sklaudio`` command."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

__all__ = ["main"]


def _demo(args) -> int:
    from sklearn.model_selection import PredefinedSplit, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklaudio.classifiers import WeightedKNeighborsClassifier
    from sklaudio.datasets import make_sounds
    from sklaudio.embedders import NPIDEmbedder
    from sklaudio.features import SpectrogramTransformer, TemporalStatistics, resolve_device
    from sklaudio.io import AudioReader

    say = (lambda *a: None) if args.quiet else print
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sklaudio-demo-") as directory:
        sounds = make_sounds(
            n_samples=args.n_samples,
            n_classes=args.n_classes,
            sample_rate=args.sample_rate,
            duration=args.duration,
            n_folds=args.n_folds,
            random_state=args.random_state,
            directory=directory,
        )
        say(
            f"sklaudio demo: {len(sounds.filenames)} synthetic clips "
            f"({args.duration:g} s @ {args.sample_rate} Hz, {args.n_classes} classes: "
            f"{', '.join(sounds.target_names)}) written to {directory}"
        )
        waves = AudioReader(
            sample_rate=args.sample_rate, duration=args.duration, n_jobs=args.n_jobs
        ).fit_transform(sounds.filenames)
    log_mel = SpectrogramTransformer(
        "log_mel",
        sample_rate=args.sample_rate,
        n_mels=64,
        n_fft=1024,
        hop_length=256,
        device="cpu",
    )
    spectrograms = log_mel.fit_transform(waves)
    cv = PredefinedSplit(sounds.folds)

    floor = make_pipeline(
        TemporalStatistics(), StandardScaler(), KNeighborsClassifier(5, weights="distance")
    )
    floor_scores = cross_val_score(floor, spectrograms, sounds.target, cv=cv)

    say(
        f"NPID pre-training on all {len(waves)} clips without labels (DLS phase 2), "
        f"{args.epochs} epochs on {resolve_device(args.device)}:"
    )
    embedder = NPIDEmbedder(
        backbone="esresnet_tiny",
        nce_k=min(64, len(waves) - 1),
        max_epochs=args.epochs,
        batch_size=32,
        device=args.device,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )
    embeddings = embedder.fit_transform(spectrograms)
    npid_scores = cross_val_score(
        WeightedKNeighborsClassifier(n_neighbors=5), embeddings, sounds.target, cv=cv
    )

    say("accuracy per official fold (train on the other folds, test on this one):")
    say(f"{'fold':>6}  {'log-mel floor':>13}  {'NPID + kNN':>10}")
    for fold, a, b in zip(np.unique(sounds.folds), floor_scores, npid_scores):
        say(f"{fold:>6}  {a:>13.3f}  {b:>10.3f}")
    say(
        f"{'mean':>6}  {floor_scores.mean():>13.3f}  {npid_scores.mean():>10.3f}   "
        f"(chance {1 / args.n_classes:.3f}; {time.perf_counter() - start:.0f} s)"
    )
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sklaudio`` command."""
    parser = argparse.ArgumentParser(
        prog="sklaudio", description="Unsupervised sound representations for scikit-learn."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the main job on generated sounds (offline, no arguments needed)",
        description="Generate labelled synthetic sounds, pre-train an NPID embedder on them "
        "without labels, and print the weighted-kNN accuracy per fold beside a log-mel floor.",
    )
    demo.add_argument("--n-samples", type=_positive_int, default=200, help="clips (default 200)")
    demo.add_argument("--n-classes", type=_positive_int, default=5, help="classes (default 5)")
    demo.add_argument("--n-folds", type=_positive_int, default=5, help="folds (default 5)")
    demo.add_argument("--sample-rate", type=_positive_int, default=16000, help="Hz (default 16000)")
    demo.add_argument("--duration", type=_positive_float, default=1.0, help="seconds (default 1)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    demo.add_argument("--epochs", type=_positive_int, default=60, help="NPID epochs (default 60)")
    demo.add_argument("--device", default="auto", help="torch device (default: cuda if present)")
    demo.add_argument("--n-jobs", type=int, default=None, help="parallel file decoding")
    demo.add_argument("--quiet", action="store_true", help="print nothing")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sklaudio`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"sklaudio {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

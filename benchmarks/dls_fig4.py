"""DLS Fig. 4: fine-tuning accuracy per epoch, from scratch vs DLS pre-training, official folds.

Phase 2 of DLS: one NPID encoder is pre-trained without labels on the pooled
audio of every fold of the pre-training corpus (by default the same corpus).
Then, for every official test fold, a FineTunedClassifier is trained on the
other folds (a) from scratch and (b) from the DLS encoder, and scored on the
test fold after every epoch. Writes a PNG (mean ± std over folds) and a JSON of
all curves; prints the table of accuracy at epochs 1, 3, 5, 10 and the last.

    python benchmarks/dls_fig4.py --dataset esc10 --root ../shared/data/esc10
    python benchmarks/dls_fig4.py --dataset esc10 --root ESC10 \\
        --pretrain-dataset urbansound8k --pretrain-root UrbanSound8K   # cross-corpus
    python benchmarks/dls_fig4.py --backbone esresnet50 --features esresnet  # the paper's, GPU
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import REPO, default_esc10_root, machine_summary
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from sklaudio.classifiers import FineTunedClassifier
from sklaudio.datasets import (
    load_dcase2013_scenes,
    load_esc10,
    load_esc50,
    load_folder,
    load_urbansound8k,
)
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader
from sklaudio.persist import load, save
from sklaudio.plotting import FineTuningCurveDisplay

LOADERS = {
    "esc10": load_esc10,
    "esc50": load_esc50,
    "urbansound8k": load_urbansound8k,
    "dcase2013": load_dcase2013_scenes,
    "folder": load_folder,  # one sub-folder per class, stratified folds
}
# each corpus's clip length (the longest clips of UrbanSound8K, DCASE 2013's whole scenes)
DURATIONS = {"esc10": 5.0, "esc50": 5.0, "urbansound8k": 4.0, "dcase2013": 30.0}
TABLE_EPOCHS = (1, 3, 5, 10)


def spectrograms(dataset, root, args):
    features = getattr(args, "features", "log_mel")
    sample_rate = args.sr or (44100 if features == "esresnet" else 22050)
    bunch = LOADERS[dataset](root)
    waves = AudioReader(sample_rate=sample_rate, duration=args.duration, n_jobs=-1).fit_transform(
        bunch.filenames
    )
    if features == "esresnet":  # the paper's 3-band images at the kind's own STFT
        spec = SpectrogramTransformer("esresnet", sample_rate=sample_rate, device="auto")
    else:
        spec = SpectrogramTransformer(
            "log_mel",
            sample_rate=sample_rate,
            n_fft=args.n_fft,
            hop_length=args.hop_length,
            n_mels=args.n_mels,
            device="cpu",
        )
    return spec.fit_transform(waves), bunch


def classifier(args, embedder=None, valid=None, cls=FineTunedClassifier):
    """The fine-tuning classifier of this benchmark (``cls``: FineTunedClassifier or a probe)."""
    return cls(
        embedder=embedder,
        backbone=None if embedder is not None else args.backbone,
        input_norm=False,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr if embedder is None or getattr(args, "dls_lr", None) is None else args.dls_lr,
        optimizer__weight_decay=args.weight_decay,
        # a new layer may learn faster than the pre-trained encoder (--head-lr)
        head_lr=args.head_lr,
        # LP-FT needs a pre-trained encoder: scratch keeps a random new layer
        head_init=args.head_init if embedder is not None else "random",
        probe_C=args.probe_c,
        head_features=args.head_features,
        train_split=predefined_split(valid),
        random_state=args.seed,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="esc10", choices=sorted(LOADERS))
    parser.add_argument("--root", default=None, help="default: ../shared/data/esc10 for esc10")
    parser.add_argument("--pretrain-dataset", default=None, choices=sorted(LOADERS))
    parser.add_argument("--pretrain-root", default=None)
    parser.add_argument("--backbone", default="esresnet_tiny")
    parser.add_argument("--pretrain-epochs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--head-lr", type=float, default=1e-2, help="lr of the new layer")
    parser.add_argument(
        "--dls-lr",
        type=float,
        default=None,
        help="lr of the pre-trained encoder in the DLS row (default --lr, which scratch uses)",
    )
    parser.add_argument(
        "--head-init",
        default="random",
        choices=["random", "linear_probe"],
        help="the DLS row's new layer: random (the paper) or LP-FT's linear probe",
    )
    parser.add_argument("--probe-c", type=float, default=0.05, help="C of the linear probe")
    parser.add_argument(
        "--head-features",
        default="pooled",
        choices=["pooled", "stats"],
        help="what the new layer reads: pooled last stage (the paper) or stages 2-4 statistics",
    )
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--features",
        default="log_mel",
        choices=["log_mel", "esresnet"],
        help="log-mel (--n-mels, --n-fft, --hop-length) or the paper's 3-band ESResNet images",
    )
    parser.add_argument(
        "--sr", type=int, default=None, help="default 22050 (log_mel), 44100 (esresnet)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds per clip, for both corpora (default: the fine-tuning corpus's: 5 for "
        "ESC, 4 for UrbanSound8K, 30 for DCASE 2013, 5 for a folder)",
    )
    parser.add_argument(
        "--nce-k", type=int, default=64, help="NCE negatives (lowered for a smaller corpus)"
    )
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--n-fft", type=int, default=1024)
    parser.add_argument("--hop-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, nargs="*", default=None)
    parser.add_argument(
        "--png",
        default=None,
        help="default docs/images/dls_fig4_DATASET.png (..._from_PRETRAIN.png across corpora)",
    )
    parser.add_argument("--json", default=None, help="default docs/images/dls_fig4_DATASET.json")
    parser.add_argument(
        "--npid-model", default=None, help="reuse this saved NPID encoder, or save it there"
    )
    args = parser.parse_args(argv)
    root = args.root or (default_esc10_root() if args.dataset == "esc10" else None)
    if root is None:
        parser.error(f"--root is needed for {args.dataset}")
    # another corpus, or another copy of the same one, to pre-train on
    cross = args.pretrain_root is not None or args.pretrain_dataset not in (None, args.dataset)
    if cross:
        args.pretrain_dataset = args.pretrain_dataset or args.dataset
        if args.pretrain_root is None:
            if args.pretrain_dataset != "esc10":
                parser.error(f"--pretrain-root is needed for {args.pretrain_dataset}")
            args.pretrain_root = default_esc10_root()
    if args.duration is None:
        args.duration = DURATIONS.get(args.dataset, 5.0)
    name = args.dataset + (f"_from_{args.pretrain_dataset}" if cross else "")
    png = Path(args.png or REPO / "docs" / "images" / f"dls_fig4_{name}.png")
    out_json = Path(args.json or png.with_suffix(".json"))

    start = time.perf_counter()
    X, bunch = spectrograms(args.dataset, root, args)
    all_folds = sorted(np.unique(bunch.folds).tolist())
    missing = sorted(set(args.folds or ()) - set(all_folds))
    if missing:
        parser.error(f"--folds {missing}: {args.dataset} at {root} has folds {all_folds}")
    if cross:
        X_pre, _ = spectrograms(args.pretrain_dataset, args.pretrain_root, args)
        source = f"{args.pretrain_dataset} at {args.pretrain_root}"
    else:
        X_pre = X  # DLS phase 2: the pooled, unlabelled audio of all folds
        source = f"{args.dataset} (all folds, no labels)"
    t_features = time.perf_counter() - start
    if args.npid_model and Path(args.npid_model).exists():
        npid = load(args.npid_model)
        print(f"DLS encoder: {args.npid_model} (not pre-trained again)")
    else:
        nce_k = min(args.nce_k, len(X_pre) - 1)
        if nce_k < args.nce_k:
            print(f"note: {len(X_pre)} clips to pre-train on: NPID uses nce_k={nce_k} negatives")
        print(f"pre-training NPID on {len(X_pre)} clips of {source}", flush=True)
        npid = NPIDEmbedder(
            backbone=args.backbone,
            nce_k=nce_k,
            max_epochs=args.pretrain_epochs,
            batch_size=64,
            random_state=args.seed,
            verbose=1,
        ).fit(X_pre)
        if args.npid_model:
            save(npid, args.npid_model)
    t_pretrain = time.perf_counter() - start - t_features

    folds = args.folds or all_folds
    head = [f"{args.head_features} head"] if args.head_features != "pooled" else []
    head += ["linear probe"] if args.head_init == "linear_probe" else []
    dls = f"DLS ({', '.join(head)})" if head else "DLS"
    curves = {"scratch": [], dls: []}
    for fold in folds:
        train, test = bunch.folds != fold, bunch.folds == fold
        valid = Dataset(X[test], bunch.target[test])
        for name, embedder in (("scratch", None), (dls, npid)):
            clf = classifier(args, embedder, valid).fit(X[train], bunch.target[train])
            curve = clf.history_[:, "valid_acc"]
            curves[name].append(curve)
            print(f"fold {fold} {name}: " + " ".join(f"{a:.2f}" for a in curve), flush=True)
    total = time.perf_counter() - start

    display = FineTuningCurveDisplay.from_histories(curves)
    pre = f", DLS pre-trained on {args.pretrain_dataset}" if cross else ""
    display.plot(title=f"{args.dataset}: fine-tuning, {args.backbone}, {len(folds)} folds{pre}")
    png.parent.mkdir(parents=True, exist_ok=True)
    display.figure_.savefig(png, dpi=120, bbox_inches="tight")
    out_json.write_text(
        json.dumps({"settings": vars(args), "machine": machine_summary(), "curves": curves})
    )

    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    epochs = sorted({*(e for e in TABLE_EPOCHS if e <= args.epochs), args.epochs})
    print("| initialisation | " + " | ".join(f"epoch {e}" for e in epochs) + " |")
    print("| --- |" + " ---: |" * len(epochs))
    for name, (mean, std) in display.mean_std().items():
        cells = " | ".join(f"{mean[e - 1]:.3f} ± {std[e - 1]:.3f}" for e in epochs)
        print(f"| {name} | {cells} |")
    print(
        f"time: spectrograms {t_features:.0f} s, pre-training {t_pretrain:.0f} s, "
        f"whole run {total:.0f} s; figure {png}"
    )


if __name__ == "__main__":
    main()

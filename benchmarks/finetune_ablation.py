"""DLS fine-tuning recipe probes on ESC-10: mixup, label smoothing, longer training.

The exploration behind the "fine-tuning recipes tried" rows of docs/benchmarks.md
(issue #4). A saved NPIDEmbedder (``dls_fig4.py --npid-model PATH`` writes one)
initialises a FineTunedClassifier for every official fold, as in dls_fig4.py,
and the test-fold accuracy after every epoch is summarised. The probes are not
library features:

- ``--mix A``: mixup with λ ~ Beta(A, A) (folded to λ ≥ 0.5) between a batch and
  a permutation of it, the loss mixed with the same λ; ``--mix-mode linear``
  mixes the dB values, ``power`` mixes the powers (BYOL-A's log-mixup-exp);
- ``--smoothing S``: label smoothing of the cross-entropy;
- ``--max-freq-shift F``: the fine-tuning augmentation also shifts frequencies by
  up to F of the bins (as NPIDEmbedder's pre-training does with 0.1).

``--head-init linear_probe [--probe-c C]`` and ``--head-features stats`` are the
library's ``FineTunedClassifier(head_init='linear_probe', probe_C=C,
head_features='stats')``. ``--ensemble N`` fine-tunes N seeds per fold and
also reports their soft vote (mean of ``predict_proba``); ``--scratch`` trains
the pre-trained model's architecture from random weights instead;
``--tta N`` also scores the final model's soft vote over N circular time shifts
of each test clip (evenly spaced; the fine-tuning augmentation shifts in time
the same way); ``--sr/--n-mels/--n-fft/--hop-length`` must match the front end the NPID model
was pre-trained on (``dls_fig4.py`` takes the same options).

    python benchmarks/dls_fig4.py --folds 1 --npid-model /tmp/bench/npid_esc10_tiny_200.pt
    python benchmarks/finetune_ablation.py --npid-model /tmp/bench/npid_esc10_tiny_200.pt \\
        [--mix 0.4] [--mix-mode power] [--smoothing 0.1] [--epochs 60]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import default_esc10_root, machine_summary
from dls_fig4 import classifier, spectrograms
from skorch.dataset import Dataset, unpack_data

from sklaudio.classifiers import FineTunedClassifier
from sklaudio.persist import load

DB = 10 / math.log(10)  # dB per neper of power


class ProbeClassifier(FineTunedClassifier):
    """FineTunedClassifier with mixup and label smoothing in its training loss."""

    mix = 0.0
    mix_mode = "linear"
    smoothing = 0.0
    rng = np.random.default_rng(0)

    def train_step_single(self, batch, **fit_params):
        Xi, yi = unpack_data(batch)
        self._mixed = None
        if self.mix > 0:
            perm = torch.randperm(Xi.shape[0])
            lam = float(self.rng.beta(self.mix, self.mix))
            lam = max(lam, 1 - lam)
            if self.mix_mode == "linear":
                Xi = lam * Xi + (1 - lam) * Xi[perm]
            else:
                Xi = DB * torch.logaddexp(
                    math.log(lam) + Xi / DB, math.log(1 - lam) + Xi[perm] / DB
                )
            self._mixed = (perm, lam)
        return super().train_step_single((Xi, yi), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not training:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        y_true = y_true.to(y_pred.device)

        def ce(target):
            return F.cross_entropy(y_pred.float(), target, label_smoothing=self.smoothing)

        if self._mixed is None:
            return ce(y_true)
        perm, lam = self._mixed
        return lam * ce(y_true) + (1 - lam) * ce(y_true[perm.to(y_true.device)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--npid-model", required=True, help="a saved NPIDEmbedder")
    parser.add_argument("--folds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--mix", type=float, default=0.0)
    parser.add_argument("--mix-mode", default="linear", choices=["linear", "power"])
    parser.add_argument("--smoothing", type=float, default=0.0)
    parser.add_argument("--head-features", default="pooled", choices=["pooled", "stats"])
    parser.add_argument("--head-init", default="random", choices=["random", "linear_probe"])
    parser.add_argument("--probe-c", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--head-lr", type=float, default=1e-2)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ensemble", type=int, default=1, help="fine-tune N seeds per fold and soft-vote them"
    )
    parser.add_argument(
        "--scratch", action="store_true", help="the pre-trained model's architecture, untrained"
    )
    parser.add_argument(
        "--max-freq-shift",
        type=float,
        default=0.0,
        help="fine-tuning augmentation's frequency shift (a fraction of the bins; "
        "FineTunedClassifier's default is 0)",
    )
    parser.add_argument(
        "--tta", type=int, default=0, help="also score a soft vote over N circular time shifts"
    )
    # the front end the NPID model was pre-trained on (dls_fig4.py's defaults)
    parser.add_argument("--sr", type=int, default=22050)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--n-fft", type=int, default=1024)
    parser.add_argument("--hop-length", type=int, default=512)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    X, bunch = spectrograms("esc10", args.root, args)
    npid = load(args.npid_model)
    ProbeClassifier.mix, ProbeClassifier.mix_mode = args.mix, args.mix_mode
    ProbeClassifier.smoothing = args.smoothing
    ProbeClassifier._augment_settings = {"max_freq_shift": args.max_freq_shift}
    ProbeClassifier.rng = np.random.default_rng(args.seed)  # the mixup draws
    torch.manual_seed(args.seed)
    embedder = None if args.scratch else npid
    args.backbone = npid.backbone  # scratch: the pre-trained encoder's architecture
    curves, voted, tta = [], [], []
    for fold in args.folds:
        train, test = bunch.folds != fold, bunch.folds == fold
        valid = Dataset(X[test], bunch.target[test])
        proba = 0
        for member in range(args.ensemble):
            member_args = argparse.Namespace(**{**vars(args), "seed": args.seed + member})
            clf = classifier(member_args, embedder, valid, cls=ProbeClassifier)
            clf.fit(X[train], bunch.target[train])
            curve = clf.history_[:, "valid_acc"]
            curves.append(curve)
            proba = proba + clf.predict_proba(X[test])
            print(f"fold {fold} seed {member_args.seed}: " + " ".join(f"{a:.2f}" for a in curve))
            if args.tta:
                frames = X.shape[-1]
                shifted = sum(
                    clf.predict_proba(np.roll(X[test], k * frames // args.tta, axis=-1))
                    for k in range(args.tta)
                )
                tta.append(np.mean(clf.classes_[shifted.argmax(1)] == bunch.target[test]))
                print(f"fold {fold} seed {member_args.seed}: {args.tta} shifts {tta[-1]:.3f}")
        if args.ensemble > 1:
            voted.append(np.mean(clf.classes_[proba.argmax(1)] == bunch.target[test]))
            print(f"fold {fold}: soft vote of {args.ensemble} seeds {voted[-1]:.3f}", flush=True)
    c = np.array(curves)
    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    mean, std = c.mean(0), c.std(0)
    shown = [e for e in (1, 3, 10) if e < c.shape[1]]
    cells = [f"epoch {e} {mean[e - 1]:.3f} ± {std[e - 1]:.3f}" for e in shown]
    cells.append(f"final {mean[-1]:.3f} ± {std[-1]:.3f}")
    print("test-fold accuracy, mean ± std over folds and seeds: " + ", ".join(cells))
    if tta:
        print(f"soft vote over {args.tta} time shifts: {np.mean(tta):.3f} ± {np.std(tta):.3f}")
    if voted:
        print(f"soft vote of {args.ensemble} seeds: {np.mean(voted):.3f} ± {np.std(voted):.3f}")
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

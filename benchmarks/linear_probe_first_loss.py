"""The linear-probe start after a short NPID pre-training: first training losses.

``FineTunedClassifier(head_init='linear_probe')`` fits its new layer on
evaluation-mode features; training reads batch statistics. After a short
pre-training the batch-norm running statistics have not converged, and the
probe now re-estimates them on the training clips first. This script shows
the training loss of the first epochs with and without that step (the
library's ``_recalibrate_batch_norm`` replaced by a no-op), beside a random
new layer, on generated sounds (5 classes: ln 5 = 1.61 for a random layer).

    python benchmarks/linear_probe_first_loss.py [--pretrain-epochs 5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from unittest import mock

from _common import machine_summary

from sklaudio.classifiers import FineTunedClassifier
from sklaudio.datasets import make_sounds
from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    sounds = make_sounds(n_samples=120, n_classes=5, sample_rate=16000, random_state=0)
    S = SpectrogramTransformer("log_mel", sample_rate=16000, n_mels=64).fit_transform(sounds.data)
    npid = NPIDEmbedder(max_epochs=args.pretrain_epochs, nce_k=32, random_state=0, device="cpu")
    npid.fit(S)
    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print("| new layer reads | start | first batches | epoch losses |")
    print("| --- | --- | --- | --- |")
    for features in ("pooled", "stats"):
        for start_as, recalibrate in (
            ("random", True),
            ("linear_probe", False),
            ("linear_probe", True),
        ):
            clf = FineTunedClassifier(
                embedder=npid,
                head_init=start_as,
                head_features=features,
                max_epochs=args.epochs,
                head_lr=1e-2,
                random_state=0,
                device="cpu",
            )
            patch = mock.patch("sklaudio.classifiers._recalibrate_batch_norm", return_value=False)
            if recalibrate:
                clf.fit(S, sounds.target)
            else:
                with patch:
                    clf.fit(S, sounds.target)
            batches = [b["train_loss"] for b in clf.history[0, "batches"]][:4]
            epochs = clf.history[:, "train_loss"]
            name = (
                start_as
                if start_as == "random"
                else (
                    "linear probe" + (", statistics re-estimated" if recalibrate else ", as before")
                )
            )
            print(
                f"| {features} | {name} | {' '.join(f'{v:.2f}' for v in batches)} | "
                f"{' '.join(f'{v:.2f}' for v in epochs)} |"
            )
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

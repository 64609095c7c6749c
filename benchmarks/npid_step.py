"""Cost of instance discrimination: one NPID training step vs a cross-entropy step.

Same encoder (backbone + 128-d projection), same batch, both through skorch's
``train_step`` (forward, loss, backward, optimizer step). NPID adds the memory
bank lookup of 1 + K rows, the NCE loss and the momentum update; the reference
adds a linear classification head and cross-entropy. Median of ``--steps``
steps after warm-up, interleaved so that machine noise hits both alike.

    python benchmarks/npid_step.py [--backbone esresnet_small] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import machine_summary
from skorch import NeuralNetClassifier
from torch import nn

from sklaudio.embedders import NPIDEmbedder
from sklaudio.nn import SpectrogramEncoder, build_backbone


class EncoderWithHead(nn.Module):
    """The NPID encoder followed by a linear classifier (the supervised reference)."""

    def __init__(self, backbone="esresnet_small", embedding_dim=128, n_classes=10):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = SpectrogramEncoder(build_backbone(backbone, in_channels=1), embedding_dim)
        self.head = nn.Linear(embedding_dim, n_classes)

    def forward(self, x):
        return self.head(self.encoder(x))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="esresnet_small")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-clips", type=int, default=2000, help="memory bank size")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n_clips, 1, 64, 216)).astype(np.float32)
    y = rng.integers(0, 10, args.n_clips)
    common = dict(
        max_epochs=1, batch_size=args.batch_size, lr=1e-3, optimizer=torch.optim.AdamW, device="cpu"
    )
    npid = NPIDEmbedder(backbone=args.backbone, augment=False, random_state=0, **common)
    npid.fit(X[: args.batch_size * 2])  # initialise the bank and optimizer
    npid.memory_bank_.memory = torch.nn.functional.normalize(torch.randn(args.n_clips, 128), dim=1)
    npid.n_train_ = args.n_clips
    ce = NeuralNetClassifier(
        EncoderWithHead, module__backbone=args.backbone, train_split=None, **common
    )
    ce.initialize()

    xb = torch.from_numpy(X[: args.batch_size])
    npid_batch = (xb, torch.arange(args.batch_size))
    ce_batch = (xb, torch.from_numpy(y[: args.batch_size]))
    times = {"npid": [], "ce": []}
    for step in range(args.steps + 3):
        for name, net, batch in (("npid", npid, npid_batch), ("ce", ce, ce_batch)):
            start = time.perf_counter()
            net.train_step(batch)
            if step >= 3:
                times[name].append(time.perf_counter() - start)
    t_npid, t_ce = statistics.median(times["npid"]), statistics.median(times["ce"])
    print(f"machine: {machine_summary()}")
    print(
        f"backbone {args.backbone}, batch {args.batch_size} log-mel clips (1×64×216), "
        f"bank of {args.n_clips}, NCE K={npid.nce_k}; median of {args.steps} steps"
    )
    print("| step | ms per step |")
    print("| --- | ---: |")
    print(f"| NPID (NCE + memory bank) | {t_npid * 1e3:.1f} |")
    print(f"| cross-entropy head | {t_ce * 1e3:.1f} |")
    print(f"| ratio NPID / CE | {t_npid / t_ce:.3f} |")


if __name__ == "__main__":
    main()

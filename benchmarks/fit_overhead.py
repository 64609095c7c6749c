"""What the sklearn/skorch layer costs: NPIDEmbedder against a bare torch loop.

The same encoder (``esresnet_tiny`` + 128-d projection), memory bank, NCE loss,
augmentation, AdamW and batch size, on the same log-mel clips: one epoch of
``NPIDEmbedder.fit`` (skorch's loop with sklaudio's callbacks: progress bar off,
cosine learning rate, seeded shuffling) against a hand-written loop, and
``transform`` against ``module(x)`` under ``torch.inference_mode``. Medians over
the epochs after the first (and over repeated transforms).

    python benchmarks/fit_overhead.py [--clips 320] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import machine_summary

from sklaudio.embedders import NPIDEmbedder
from sklaudio.nn import MemoryBank, SpectrogramAugment, SpectrogramEncoder, build_backbone
from sklaudio.nn.npid import NPIDLoss


def bare_epochs(X, epochs, batch_size):
    """Seconds per epoch of a hand-written NPID loop (what skorch does, without skorch)."""
    torch.manual_seed(0)
    encoder = SpectrogramEncoder(
        build_backbone("esresnet_tiny", in_channels=1), 128, augment=SpectrogramAugment(seed=3)
    )
    bank = MemoryBank(len(X), 128, momentum=0.5)
    loss_fn = NPIDLoss(nce_k=64, nce_t=0.4)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    shuffle, sample = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    X = torch.from_numpy(X)
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        encoder.train()
        for batch in torch.randperm(len(X), generator=shuffle).split(batch_size):
            optimizer.zero_grad()
            z = encoder(X[batch])
            loss_fn(z, batch, bank, generator=sample).backward()
            optimizer.step()
            bank.update(batch, z.detach())
        durations.append(time.perf_counter() - start)
    return durations, encoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=320, help="ESC-10's training folds")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(args.clips, 1, 64, 216)) * 10 - 40).astype(np.float32)
    embedder = NPIDEmbedder(
        backbone="esresnet_tiny",
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        device="cpu",
        random_state=0,
        verbose=0,
    ).fit(X)
    fit_epoch = statistics.median(row["dur"] for row in embedder.history_[1:])
    bare, encoder = bare_epochs(X, args.epochs, args.batch_size)
    bare_epoch = statistics.median(bare[1:])

    transform, direct = [], []
    encoder.eval()
    for _ in range(5):
        start = time.perf_counter()
        embedder.transform(X)
        transform.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.inference_mode():
            for chunk in torch.from_numpy(X).split(args.batch_size):
                encoder(chunk)
        direct.append(time.perf_counter() - start)
    t_transform, t_direct = statistics.median(transform), statistics.median(direct)

    print(f"machine: {machine_summary()}")
    print(
        f"{args.clips} log-mel clips (1×64×216), esresnet_tiny, batch {args.batch_size}; "
        f"medians over epochs 2-{args.epochs} and 5 transforms"
    )
    print("| step | sklaudio | bare torch | ratio |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| one training epoch (s) | {fit_epoch:.3f} | {bare_epoch:.3f} | "
        f"{fit_epoch / bare_epoch:.2f} |"
    )
    print(
        f"| embedding all clips (s) | {t_transform:.3f} | {t_direct:.3f} | "
        f"{t_transform / t_direct:.2f} |"
    )


if __name__ == "__main__":
    main()

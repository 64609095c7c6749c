"""NPID training throughput at the paper's resolution: clips per second on one device.

The DLS setting of issue #3: ESResNet-50 with attention, 5 s waveforms at
44.1 kHz turned into ESResNet's 3-band power spectrograms on the device by the
``esresnet`` front end (3 × 341 × 394 per clip), batch 64, bfloat16 autocast,
NCE with K = 64 against a memory bank. The clips are random noise (the content
does not change the cost); they sit in host memory as a user's decoded corpus
would, so each step includes skorch's DataLoader and the copy to the device.

Three figures, each the median over the epochs after the first (which pays for
cuDNN's algorithm search and the allocator's warm-up):

- ``fit``: ``NPIDEmbedder.fit`` as a user runs it (DataLoader included);
- ``fit, channels_last``: the same after converting the encoder to
  channels-last memory (faster convolutions on tensor cores);
- ``steps on the device``: ``train_step`` on one batch already on the device,
  the ceiling without data loading.

GPU (the issue's run; the paper reports ≈160 clips/s on four GTX 1080 Ti)::

    python benchmarks/npid_throughput.py

A CPU smoke run in seconds::

    python benchmarks/npid_throughput.py --backbone esresnet_tiny --duration 0.5 \\
        --n-clips 96 --batch-size 32 --epochs 2 --steps 2 --device cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import machine_summary

from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer


def _epoch_rate(net, n_clips: int, skip: int) -> float:
    durations = [row["dur"] for row in net.history_[skip:]]
    return n_clips / statistics.median(durations)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="esresnet50")
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per clip")
    parser.add_argument("--n-clips", type=int, default=1024, help="clips per epoch (bank rows)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="the first one is warm-up")
    parser.add_argument("--steps", type=int, default=20, help="device-only steps timed")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument(
        "--fp32", action="store_true", help="no bfloat16 autocast (mixed_precision=False)"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first one is warm-up)")

    torch.backends.cudnn.benchmark = True
    n_samples = int(round(args.duration * args.sample_rate))
    rng = np.random.default_rng(0)
    X = (0.1 * rng.standard_normal((args.n_clips, n_samples), dtype=np.float32)).astype(np.float32)
    frontend = SpectrogramTransformer("esresnet", sample_rate=args.sample_rate)

    def embedder(**extra):
        return NPIDEmbedder(
            backbone=args.backbone,
            frontend=frontend,
            batch_size=args.batch_size,
            mixed_precision=not args.fp32,
            device=args.device,
            random_state=0,
            verbose=0,
            iterator_train__num_workers=args.workers,
            iterator_train__pin_memory=torch.cuda.is_available(),
            **extra,
        )

    # 1. fit, as a user runs it
    net = embedder(max_epochs=args.epochs)
    net.fit(X)
    device = str(net.memory_bank_.memory.device)
    shape = net._spectrogram_shape()
    fit_rate = _epoch_rate(net, args.n_clips, skip=1)

    # 2. the same with a channels-last encoder (converted after the warm-up epoch)
    last = embedder(max_epochs=1)
    last.fit(X)
    last.module_.to(memory_format=torch.channels_last)
    last.set_params(max_epochs=args.epochs - 1)
    last.partial_fit(X)
    # skip the warm-up epoch and the first channels-last one (a new cuDNN algorithm search)
    last_rate = _epoch_rate(last, args.n_clips, skip=min(2, args.epochs - 1))

    # 3. train steps on a batch already on the device
    xb = torch.from_numpy(X[: args.batch_size]).to(net.memory_bank_.memory.device)
    batch = (xb, torch.arange(args.batch_size, device=xb.device))
    for _ in range(3):
        net.train_step(batch)
    times = []
    for _ in range(args.steps):
        _sync(device)
        start = time.perf_counter()
        net.train_step(batch)
        _sync(device)
        times.append(time.perf_counter() - start)
    step_rate = args.batch_size / statistics.median(times)

    precision = "float32" if args.fp32 else "bfloat16 autocast"
    print(f"machine: {machine_summary()}")
    print(
        f"NPID, backbone {args.backbone}, {args.duration:g} s clips at {args.sample_rate} Hz, "
        f"esresnet front end on the device ({'×'.join(map(str, shape))} per clip), "
        f"batch {args.batch_size}, {precision}, NCE K={net.nce_k}, {args.n_clips} clips "
        f"per epoch, {args.epochs} epochs (the first is warm-up), device {device}"
    )
    print("| measured | clips/s |")
    print("| --- | ---: |")
    print(f"| fit (DataLoader, {args.workers} workers) | {fit_rate:.0f} |")
    print(f"| fit, channels_last encoder | {last_rate:.0f} |")
    print(f"| train steps on the device (median of {args.steps}) | {step_rate:.0f} |")


if __name__ == "__main__":
    main()

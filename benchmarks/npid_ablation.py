"""NPID on one ESC-10 fold: input clamps, extra augmentations and read-outs, side by side.

The exploration behind the "other settings tried" rows of docs/benchmarks.md.
The embedder is fitted on the training folds of one official fold (no labels)
and the weighted kNN (K=5, τ=0.07) is scored with four read-outs of the same
fitted model:

- ``proj``: ``transform``, the 128-d unit embedding (what the pipeline uses);
- ``feat``: the backbone's pooled features before the projection;
- ``feat_std``: the same, standardised with the training clips' mean and std;
- ``bank``: the memory bank as the training side, test clips by ``transform``.

Options beyond NPIDEmbedder's own augmentation (these are probes, not
library features):

- ``--top-db D``: clamp each log-mel spectrogram at its maximum minus D dB;
- ``--resized-crop``: random resized crop (60–100 % of the bands, 50–100 % of
  the frames, stretched back to full size), as in BYOL-A;
- ``--mix A``: mix each clip with another clip of the batch at a random
  proportion in ``[0, A]`` in the power domain (BYOL-A's log-mixup-exp);
- ``--max-freq-shift F``: the augmentation's frequency shift, a fraction of the
  bins (``SpectrogramAugment(max_freq_shift=F)``; default NPIDEmbedder's 0.1,
  0 as before 2026-11-24);
- ``--time-stretch A``: play each clip faster or slower by a factor in
  ``[1 - A, 1 + A]`` (the time axis resampled about its centre);
- ``--tilt D``: add a random spectral tilt, a straight line across the bins
  from ``-s`` to ``+s`` dB with ``s`` uniform in ``[-D, D]`` (a microphone or
  distance that favours low or high frequencies);
- ``--crop F``: train on random time crops of a fraction F of the frames (not
  stretched back: every clip of the batch gets its own offset, the global
  pooling reads the shorter map), as COLA and BYOL-A crop about 1 s;
  ``--tta-crops N`` then also scores read-outs averaged over N evenly spaced
  crops of the same length (``proj_tta``, ``stats_tta``);
- ``--tta-freq N``: also scores both read-outs averaged over the clip shifted
  by -N..N bands as the augmentation shifts (``proj_tta_freq``,
  ``stats_tta_freq``).

A fifth read-out, ``stats_std``, is ``output='stats'`` (stages 2–4, temporal
mean and std per channel) standardised on the training clips; ``stats_max_std``
adds the temporal maximum, ``stats_freq_std`` keeps the frequency axis of the
maps (mean and std over time of every channel and frequency), both standardised.

    python benchmarks/npid_ablation.py [--fold 1] [--epochs 100] [--top-db 80]
                                       [--resized-crop] [--mix 0.4] [--loss softmax]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import default_esc10_root, esc10_log_mel, machine_summary

from sklaudio.classifiers import WeightedKNeighborsClassifier
from sklaudio.embedders import NPIDEmbedder
from sklaudio.nn import SpectrogramAugment

SR = 22050
DB = 10 / math.log(10)  # dB per neper of power


class ProbeAugment(SpectrogramAugment):
    """SpectrogramAugment preceded by the optional mixing and resized crop."""

    def __init__(self, mix=0.0, resized_crop=False, crop=1.0, time_stretch=0.0, tilt=0.0, **kwargs):
        super().__init__(**kwargs)
        self.tilt = tilt
        self.mix = mix
        self.resized_crop = resized_crop
        self.crop = crop
        self.time_stretch = time_stretch

    def forward(self, x):
        if not self.training:
            return x
        n, device = x.shape[0], x.device
        if self.mix > 0:
            other = x[torch.randperm(n, generator=self._generator(device), device=device)]
            lam = self._uniform((n, 1, 1, 1), device, 0.0, self.mix).clamp_min(1e-6)
            x = DB * torch.logaddexp(torch.log1p(-lam) + x / DB, torch.log(lam) + other / DB)
        if self.resized_crop:
            scale_f = self._uniform((n,), device, 0.6, 1.0)
            scale_t = self._uniform((n,), device, 0.5, 1.0)
            start_f = self._uniform((n,), device) * (1 - scale_f)
            start_t = self._uniform((n,), device) * (1 - scale_t)
            theta = torch.zeros(n, 2, 3, device=device)
            theta[:, 0, 0], theta[:, 0, 2] = scale_t, 2 * start_t + scale_t - 1
            theta[:, 1, 1], theta[:, 1, 2] = scale_f, 2 * start_f + scale_f - 1
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
        if self.time_stretch > 0:
            # each clip played faster or slower by a factor in [1 - A, 1 + A] about its
            # centre (the frames beyond the clip repeat its edge frames)
            rate = self._uniform((n,), device, 1 - self.time_stretch, 1 + self.time_stretch)
            theta = torch.zeros(n, 2, 3, device=device)
            theta[:, 0, 0], theta[:, 1, 1] = rate, 1.0
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
        if self.tilt > 0:
            slope = self._uniform((n, 1, 1, 1), device, -self.tilt, self.tilt)
            ramp = torch.linspace(-1.0, 1.0, x.shape[2], device=device)[None, None, :, None]
            x = x + (slope * ramp).to(x.dtype)
        if self.crop < 1:
            frames = x.shape[-1]
            length = max(1, round(self.crop * frames))
            start = (self._uniform((n,), device) * (frames - length + 1)).long()
            index = start[:, None] + torch.arange(length, device=device)[None]
            index = index[:, None, None, :].expand(*x.shape[:-1], length)
            x = torch.gather(x, -1, index)
        return super().forward(x)


def _avg_max_forward(self, x):
    """ESResNet's forward with PANNs' pooling: mean over frequency, mean + max over time."""
    x = self.feature_map(x)
    freq_mean = x.mean(dim=2, keepdim=True)
    pooled = freq_mean.mean(dim=-1, keepdim=True) + freq_mean.amax(dim=-1, keepdim=True)
    if self.attention:
        pooled = pooled * self.att5(x, pooled.shape[-2:])
    return torch.flatten(pooled, 1)


class ProbeNPID(NPIDEmbedder):
    probe = {}
    settings = {}  # SpectrogramAugment settings other than the default
    pool = "avg"
    max_freq_shift = None  # NPIDEmbedder's

    def initialize_module(self):
        super().initialize_module()
        if self.pool == "avg+max":
            backbone = self.module_.backbone
            backbone.forward = _avg_max_forward.__get__(backbone)
        if self.augment:
            library = self.module_.augment  # its seed and frequency shift
            shift = self.max_freq_shift
            shift = library.max_freq_shift if shift is None else shift
            self.module_.augment = ProbeAugment(
                seed=library.seed, max_freq_shift=shift, **self.probe, **self.settings
            )
        return self


def knn_accuracy(train, y_train, test, y_test):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    knn = WeightedKNeighborsClassifier(n_neighbors=5, temperature=0.07)
    return knn.fit(train, y_train).score(test, y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--backbone", default="esresnet_tiny")
    parser.add_argument("--loss", default="nce", choices=["nce", "softmax"])
    parser.add_argument("--nce-k", type=int, default=64)
    parser.add_argument("--nce-t", type=float, default=0.4)
    parser.add_argument("--nce-m", type=float, default=0.5)
    parser.add_argument(
        "--tta-freq",
        type=int,
        default=0,
        help="also score the statistics averaged over frequency shifts of -N..N bands",
    )
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-db", type=float, default=None)
    parser.add_argument("--resized-crop", action="store_true")
    parser.add_argument("--mix", type=float, default=0.0)
    parser.add_argument("--pool", default="avg", choices=["avg", "avg+max"])
    parser.add_argument("--crop", type=float, default=1.0)
    parser.add_argument("--tta-crops", type=int, default=0)
    parser.add_argument("--time-stretch", type=float, default=0.0)
    parser.add_argument("--tilt", type=float, default=0.0, help="dB at the band edges")
    parser.add_argument(
        "--aug",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="other SpectrogramAugment settings, e.g. max_time_mask=0.3 n_freq_masks=3",
    )
    parser.add_argument(
        "--max-freq-shift", type=float, default=None, help="default: NPIDEmbedder's (0.1)"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    esc10, S = esc10_log_mel(args.root, n_mels=64, sample_rate=SR)
    if args.top_db is not None:
        S = np.maximum(S, S.max(axis=(1, 2, 3), keepdims=True) - args.top_db)
    train, test = esc10.folds != args.fold, esc10.folds == args.fold
    y_train, y_test = esc10.target[train], esc10.target[test]

    ProbeNPID.probe = {
        "mix": args.mix,
        "resized_crop": args.resized_crop,
        "crop": args.crop,
        "time_stretch": args.time_stretch,
        "tilt": args.tilt,
    }
    ProbeNPID.max_freq_shift = args.max_freq_shift
    ProbeNPID.settings = {
        name: float(value) if "." in value else int(value)
        for name, value in (item.split("=") for item in args.aug)
    }
    ProbeNPID.pool = args.pool
    npid = ProbeNPID(
        backbone=args.backbone,
        loss=args.loss,
        nce_k=args.nce_k,
        nce_t=args.nce_t,
        nce_m=args.nce_m,
        embedding_dim=args.embedding_dim,
        lr=args.lr,
        max_epochs=args.epochs,
        random_state=args.seed,
        device="cpu",
    ).fit(S[train])
    encoder = npid.module_.eval()
    with torch.no_grad():
        f_train = encoder.features(torch.from_numpy(S[train])).numpy()
        f_test = encoder.features(torch.from_numpy(S[test])).numpy()
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    z_train, z_test = npid.transform(S[train]), npid.transform(S[test])
    scores = {
        "proj": knn_accuracy(z_train, y_train, z_test, y_test),
        "feat": knn_accuracy(f_train, y_train, f_test, y_test),
        "feat_std": knn_accuracy((f_train - mean) / std, y_train, (f_test - mean) / std, y_test),
        "bank": knn_accuracy(npid.memory_bank_.memory.numpy(), y_train, z_test, y_test),
    }
    stats = npid.set_params(output="stats")
    s_train, s_test = stats.transform(S[train]), stats.transform(S[test])
    mean, std = s_train.mean(0), s_train.std(0) + 1e-6
    s_train, s_test = (s_train - mean) / std, (s_test - mean) / std  # standardised from here
    scores["stats_std"] = knn_accuracy(s_train, y_train, s_test, y_test)
    # two more read-outs of the stage maps: mean, std and max over time (frequency
    # averaged), and mean and std over time keeping the frequency axis
    with torch.no_grad():
        maps_train = encoder.backbone.stage_maps(torch.from_numpy(S[train]), last=4)
        maps_test = encoder.backbone.stage_maps(torch.from_numpy(S[test]), last=4)

    def stage_stats(maps, keep_freq):
        out = []
        for m in maps[1:]:
            m = m.float()
            if keep_freq:
                out += [m.mean(-1).flatten(1), m.std(-1, correction=0).flatten(1)]
            else:
                m = m.mean(2)
                out += [m.mean(-1), m.std(-1, correction=0), m.amax(-1)]
        return torch.cat(out, 1).numpy()

    for name, keep in (("stats_max_std", False), ("stats_freq_std", True)):
        a, b = stage_stats(maps_train, keep), stage_stats(maps_test, keep)
        mean, std = a.mean(0), a.std(0) + 1e-6
        scores[name] = knn_accuracy((a - mean) / std, y_train, (b - mean) / std, y_test)

    # the embedding and the standardised statistics side by side, each unit length
    def unit(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    both_train = np.hstack([unit(z_train), unit(s_train)])
    both_test = np.hstack([unit(z_test), unit(s_test)])
    scores["proj+stats"] = knn_accuracy(both_train, y_train, both_test, y_test)
    # the stage statistics beside the floor's: mean and std over time of every log-mel band
    logmel = np.hstack([S.mean(-1).reshape(len(S), -1), S.std(-1).reshape(len(S), -1)])
    mean, std = logmel[train].mean(0), logmel[train].std(0) + 1e-6
    lm = unit((logmel - mean) / std)
    scores["logmel"] = knn_accuracy(lm[train], y_train, lm[test], y_test)
    scores["stats+logmel"] = knn_accuracy(
        np.hstack([unit(s_train), lm[train]]), y_train, np.hstack([unit(s_test), lm[test]]), y_test
    )
    if args.tta_freq:
        n_freq = S.shape[2]

        def shifted(X, k):  # the augmentation's shift: edge bands repeated
            index = np.clip(np.arange(n_freq) - k, 0, n_freq - 1)
            return np.ascontiguousarray(X[:, :, index])

        shifts = range(-args.tta_freq, args.tta_freq + 1)
        npid.set_params(output="stats")
        a = np.mean([npid.transform(shifted(S[train], k)) for k in shifts], axis=0)
        b = np.mean([npid.transform(shifted(S[test], k)) for k in shifts], axis=0)
        mean, std = a.mean(0), a.std(0) + 1e-6
        scores["stats_tta_freq"] = knn_accuracy((a - mean) / std, y_train, (b - mean) / std, y_test)
        npid.set_params(output="embedding")
        a = np.mean([npid.transform(shifted(S[train], k)) for k in shifts], axis=0)
        b = np.mean([npid.transform(shifted(S[test], k)) for k in shifts], axis=0)
        scores["proj_tta_freq"] = knn_accuracy(a, y_train, b, y_test)
    if args.tta_crops:
        frames = S.shape[-1]
        length = max(1, round(args.crop * frames))
        starts = np.linspace(0, frames - length, args.tta_crops).round().astype(int)

        def crops_mean(X, output):
            with torch.no_grad():
                outs = [encoder(torch.from_numpy(X[..., t : t + length]), output) for t in starts]
            return torch.stack(outs).mean(0).numpy()

        for output in ("embedding", "stats"):
            a, b = crops_mean(S[train], output), crops_mean(S[test], output)
            if output == "stats":
                mean, std = a.mean(0), a.std(0) + 1e-6
                a, b = (a - mean) / std, (b - mean) / std
            name = "proj_tta" if output == "embedding" else "stats_tta"
            scores[name] = knn_accuracy(a, y_train, b, y_test)
    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print("read-out accuracies: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

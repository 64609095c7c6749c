"""What the AFP pair loss's threshold calls "similar" on ESC-10, after phase 1.

Trains an AFPPairLossEmbedder for its MSE phase only on the training folds of
one official fold, then draws random batches of training clips (the pair
loss's N) and reports the KL statistics of their feature distributions and,
per threshold, the share of distinct pairs called similar
(``similar_pair_fraction``) and how many of those share a class.

    python benchmarks/afp_pair_stats.py [--fold 1] [--thresholds 0.1 0.2 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import default_esc10_root, esc10_log_mel, machine_summary

from sklaudio.embedders import AFPPairLossEmbedder
from sklaudio.nn import pair_kl_matrix

SR = 22050


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--n-mels", type=int, default=32)
    parser.add_argument("--widths", type=int, nargs=2, default=[16, 32])
    parser.add_argument("--mse-epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument(
        "--thresholds", type=float, nargs="*", default=[0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    esc10, spec = esc10_log_mel(args.root, n_mels=args.n_mels, sample_rate=SR)
    train = esc10.folds != args.fold
    afp = AFPPairLossEmbedder(
        pair_loss=False,
        mse_epochs=args.mse_epochs,
        pair_epochs=0,
        widths=tuple(args.widths),
        sample_rate=SR,
        hop_length=512,
        random_state=args.seed,
    ).fit(spec[train])
    codes = afp.set_params(output="code").transform(spec[train])
    dists = torch.from_numpy(afp.set_params(output="distribution").transform(spec[train]))
    labels = esc10.target[train]

    rng = np.random.default_rng(args.seed)
    off = ~np.eye(args.batch_size, dtype=bool)
    kls, rows = [], {t: [] for t in args.thresholds}
    for _ in range(args.batches):
        idx = rng.choice(len(dists), args.batch_size, replace=False)
        kl = pair_kl_matrix(dists[idx]).numpy()
        f = kl / kl.mean()
        same = (labels[idx][:, None] == labels[idx][None]) & off
        kls.append(kl[off])
        for t in args.thresholds:
            similar = (f < t) & off
            precision = (similar & same).sum() / max(similar.sum(), 1)
            # the fraction sklaudio.nn.similar_pair_fraction reports, from the KLs at hand
            rows[t].append((similar.sum() / off.sum(), precision, same.sum() / off.sum()))
    kls = np.concatenate(kls)

    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print(f"code averages: min {codes.min():.2f}, max {codes.max():.2f}")
    print(
        f"off-diagonal KL: mean {kls.mean():.3f}, median {np.median(kls):.3f}, "
        f"90th percentile {np.percentile(kls, 90):.3f}"
    )
    chance = np.mean([r[2] for r in rows[args.thresholds[0]]])
    print(f"| threshold | pairs called similar | of which same class (chance: {chance:.3f}) |")
    print("| ---: | ---: | ---: |")
    for t, values in rows.items():
        fraction, precision, _ = np.mean(values, axis=0)
        print(f"| {t:g} | {fraction:.3f} | {precision:.3f} |")
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

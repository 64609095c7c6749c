"""What the AFP pair loss's threshold calls "similar" on ESC-10, after phase 1.

Trains an AFPPairLossEmbedder for its MSE phase only on the training folds of
one official fold, then draws random batches of training clips (the pair
loss's N) and reports the KL statistics of their feature distributions and,
per threshold, the share of distinct pairs called similar
(``similar_pair_fraction``) and how many of those share a class.

``--clip-pairs K`` (K ≥ 2) draws batches as ``afp_table1.py --clip-pairs K`` trains on
them: ``batch_size // K`` clips with K of their sequences each (with ``--frame-duration``
short enough for a clip to hold several); the table then also says how many of the
similar pairs are two windows of one clip, and how many of those pairs are called similar.

    python benchmarks/afp_pair_stats.py [--fold 1] [--thresholds 0.1 0.2 1]
                                        [--frame-duration 2.0 --clip-pairs 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import default_esc10_root, esc10_log_mel, machine_summary
from afp_table1 import ClipPairsAFP

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
    parser.add_argument("--frame-duration", type=float, default=2.56)
    parser.add_argument("--clip-pairs", type=int, default=1)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    esc10, spec = esc10_log_mel(args.root, n_mels=args.n_mels, sample_rate=SR)
    train = esc10.folds != args.fold
    afp = ClipPairsAFP(
        clip_pairs=args.clip_pairs,  # phase 1 on the batches afp_table1.py trains on
        pair_loss=False,
        mse_epochs=args.mse_epochs,
        pair_epochs=0,
        frame_duration=args.frame_duration,
        widths=tuple(args.widths),
        sample_rate=SR,
        hop_length=512,
        random_state=args.seed,
    ).fit(spec[train])
    # One distribution per training sequence: each sequence's span transformed as a clip
    # of its own holds exactly that one sequence.
    per_clip = afp.sequences_per_clip_
    span = afp.frame_steps_ + afp.n_context * afp.hop_steps_
    windows = np.stack(
        [spec[train][..., k * afp.hop_steps_ : k * afp.hop_steps_ + span] for k in range(per_clip)],
        axis=1,
    ).reshape(-1, *spec.shape[1:-1], span)  # clip after clip
    codes = afp.set_params(output="code").transform(windows)
    dists = torch.from_numpy(afp.set_params(output="distribution").transform(windows))
    labels = np.repeat(esc10.target[train], per_clip)
    owner = np.repeat(np.arange(train.sum()), per_clip)

    rng = np.random.default_rng(args.seed)
    off = ~np.eye(args.batch_size, dtype=bool)
    take = min(max(args.clip_pairs, 1), per_clip)
    kls, rows = [], {t: [] for t in args.thresholds}
    for _ in range(args.batches):
        if take < 2:
            idx = rng.choice(len(dists), args.batch_size, replace=False)
        else:
            clips = rng.choice(train.sum(), args.batch_size // take, replace=False)
            picks = [c * per_clip + rng.choice(per_clip, take, replace=False) for c in clips]
            idx = np.concatenate(picks)
        pair_off = off[: len(idx), : len(idx)]
        kl = pair_kl_matrix(dists[idx]).numpy()
        f = kl / kl.mean()
        same = (labels[idx][:, None] == labels[idx][None]) & pair_off
        one_clip = (owner[idx][:, None] == owner[idx][None]) & pair_off
        kls.append(kl[pair_off])
        for t in args.thresholds:
            similar = (f < t) & pair_off
            precision = (similar & same).sum() / max(similar.sum(), 1)
            # the fraction sklaudio.nn.similar_pair_fraction reports, from the KLs at hand
            rows[t].append(
                (
                    similar.sum() / pair_off.sum(),
                    precision,
                    same.sum() / pair_off.sum(),
                    (similar & one_clip).sum() / max(similar.sum(), 1),
                    (similar & one_clip).sum() / max(one_clip.sum(), 1),
                )
            )
    kls = np.concatenate(kls)

    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print(f"code averages: min {codes.min():.2f}, max {codes.max():.2f}")
    print(
        f"off-diagonal KL: mean {kls.mean():.3f}, median {np.median(kls):.3f}, "
        f"90th percentile {np.percentile(kls, 90):.3f}"
    )
    print(f"sequences per clip: {per_clip}, drawn per clip in a batch: {take}")
    chance = np.mean([r[2] for r in rows[args.thresholds[0]]])
    header = f"| threshold | pairs called similar | of which same class (chance: {chance:.3f}) |"
    if take > 1:
        header += " of which one clip | one-clip pairs called similar |"
    print(header)
    print("| ---: | ---: | ---: |" + (" ---: | ---: |" if take > 1 else ""))
    for t, values in rows.items():
        fraction, precision, _, from_one_clip, one_clip_similar = np.mean(values, axis=0)
        line = f"| {t:g} | {fraction:.3f} | {precision:.3f} |"
        if take > 1:
            line += f" {from_one_clip:.3f} | {one_clip_similar:.3f} |"
        print(line)
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

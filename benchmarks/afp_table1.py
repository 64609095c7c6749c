"""AFP on ESC-10: with vs without the pair loss (the AFP paper's Table 1 and Fig. 2).

For every official fold, two AFPPairLossEmbedders are trained on the training
folds without labels — with the pair loss (6 MSE epochs + 3 epochs of MSE +
pair loss) and without (9 MSE epochs) — then their frozen features are scored
by (i) a linear classifier (LogisticRegression) trained on the training
folds and (ii) TSNE(2) → KMeans(n_classes) → cluster accuracy (Hungarian
matching) on the test fold. Saves t-SNE scatter plots of the first fold.

Both systems of one fold and seed share phase 1, so the script also prints
their paired difference over the fold/seed runs (mean ± standard error, and
in how many runs the pair loss was better). ``--tsne-runs R`` averages the
cluster accuracy over R t-SNE → k-means runs per embedding.

``--clip-pairs K`` (K ≥ 2) changes what a training batch holds: ``batch_size // K``
clips with K of their sequences each, drawn at random, instead of sequences shuffled
across all clips. Each batch then holds pairs of windows of one recording for the pair
loss to pull together; ``--frame-duration`` below 2.56 s cuts several sequences from a
5 s clip (2.0 s: 4). Both systems train on the same batches.

    python benchmarks/afp_table1.py [--root ../shared/data/esc10] [--folds 1 2 3 4 5]
                                    [--seeds 0 1 2] [--tsne-runs 5]
                                    [--frame-duration 2.0 --clip-pairs 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import REPO, default_esc10_root, esc10_log_mel, machine_summary
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklaudio.embedders import AFPPairLossEmbedder
from sklaudio.metrics import cluster_accuracy

SR = 22050


class ClipGroupSampler(torch.utils.data.Sampler):
    """Batches of ``clips_per_batch`` clips in random order, ``take`` random sequences of
    each (``per_clip`` sequences per clip, stored clip after clip). One epoch shows every
    clip once, less the ``n_clips % clips_per_batch`` last of its random order."""

    def __init__(self, n_clips, per_clip, clips_per_batch, take, generator):
        self.n_clips, self.per_clip = n_clips, per_clip
        self.clips_per_batch, self.take, self.generator = clips_per_batch, take, generator

    def __len__(self):
        return self.n_clips // self.clips_per_batch

    def __iter__(self):
        order = torch.randperm(self.n_clips, generator=self.generator).tolist()
        for b in range(len(self)):
            batch = []
            for clip in order[b * self.clips_per_batch : (b + 1) * self.clips_per_batch]:
                picks = torch.randperm(self.per_clip, generator=self.generator)[: self.take]
                batch += [clip * self.per_clip + j for j in picks.tolist()]
            yield batch


class ClipPairsAFP(AFPPairLossEmbedder):
    """``AFPPairLossEmbedder`` whose training batches hold ``clip_pairs`` sequences of each
    of their clips (see ``ClipGroupSampler``); ``clip_pairs=1`` is the library's shuffle.
    A benchmark's tool: it trains in one process on the CPU or one GPU (no accelerator, no
    ``iterator_train__*`` options)."""

    def __init__(self, clip_pairs=1, **kwargs):
        super().__init__(**kwargs)
        self.clip_pairs = clip_pairs

    def get_iterator(self, dataset, training=False):
        take = min(self.clip_pairs, getattr(dataset, "per_clip", 1))
        if not training or take < 2:
            return super().get_iterator(dataset, training=training)
        if self.batch_size < take or len(dataset) // dataset.per_clip < self.batch_size // take:
            raise ValueError(
                f"clip_pairs={self.clip_pairs} needs batch_size >= {take} and at least "
                f"batch_size // {take} clips; got batch_size={self.batch_size} and "
                f"{len(dataset) // dataset.per_clip} clips"
            )
        sampler = ClipGroupSampler(
            len(dataset) // dataset.per_clip,
            dataset.per_clip,
            self.batch_size // take,
            take,
            self._generator("shuffle", "cpu"),
        )
        return torch.utils.data.DataLoader(dataset, batch_sampler=sampler)


def evaluate(features_train, y_train, features_test, y_test, n_classes, seed, tsne_runs=1):
    """Linear-classifier accuracy, and cluster accuracy averaged over ``tsne_runs`` t-SNE runs.

    t-SNE and k-means start at random: with 80 test clips, one run's cluster accuracy moves by
    several points with their seed alone, so several runs on the same features (seeds ``seed``,
    ``seed + 1``, ...) measure the features rather than that luck.
    """
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    accuracy = clf.fit(features_train, y_train).score(features_test, y_test)
    scores, points = [], None
    for run_seed in range(seed, seed + tsne_runs):
        tsne = TSNE(2, perplexity=min(30, len(features_test) - 1), random_state=run_seed)
        run_points = tsne.fit_transform(features_test)
        clusters = KMeans(n_classes, n_init=10, random_state=run_seed).fit_predict(run_points)
        scores.append(cluster_accuracy(y_test, clusters))
        if points is None:
            points = run_points  # the first run's map, for the scatter plot
    return accuracy, float(np.mean(scores)), points


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--folds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n-mels", type=int, default=64)
    parser.add_argument("--mse-epochs", type=int, default=6)
    parser.add_argument("--pair-epochs", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=1.0)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--widths", type=int, nargs=2, default=[32, 64])
    parser.add_argument("--frame-duration", type=float, default=2.56)
    parser.add_argument(
        "--clip-pairs",
        type=int,
        default=1,
        help="sequences of one clip per training batch (1: sequences shuffled across clips)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[0],
        help="random_state of the embedders; results are averaged over seeds and folds "
        "(on ESC-10 one fold's scores move by about 0.05 from seed to seed)",
    )
    parser.add_argument(
        "--tsne-runs",
        type=int,
        default=1,
        help="t-SNE → k-means runs per embedding, their cluster accuracies averaged",
    )
    parser.add_argument("--plots", default=str(REPO / "docs" / "images"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    esc10, spec = esc10_log_mel(args.root, n_mels=args.n_mels, sample_rate=SR)
    n_classes = len(esc10.target_names)
    results = {True: [], False: []}
    for fold, seed in ((fold, seed) for fold in args.folds for seed in args.seeds):
        train, test = esc10.folds != fold, esc10.folds == fold
        for with_pair in (True, False):
            afp = ClipPairsAFP(
                pair_loss=with_pair,
                frame_duration=args.frame_duration,
                mse_epochs=args.mse_epochs,
                pair_epochs=args.pair_epochs,
                threshold=args.threshold,
                margin=args.margin,
                widths=tuple(args.widths),
                sample_rate=SR,
                hop_length=512,
                random_state=seed,
                verbose=1,
                clip_pairs=args.clip_pairs,
            ).fit(spec[train])
            acc, clu, points = evaluate(
                afp.transform(spec[train]),
                esc10.target[train],
                afp.transform(spec[test]),
                esc10.target[test],
                n_classes,
                seed,
                args.tsne_runs,
            )
            results[with_pair].append((acc, clu))
            similar = ""
            if with_pair and args.pair_epochs:
                share = np.mean(afp.history_[-1, "batches", :, "pair_similar"])
                similar = f" (last epoch: {share:.3f} of pairs called similar)"
            print(
                f"fold {fold} seed {seed} {'w/' if with_pair else 'w/o'} PairLoss: "
                f"classifier {acc:.3f}, clustering {clu:.3f}{similar}",
                flush=True,
            )
            if fold == args.folds[0] and seed == args.seeds[0]:
                save_scatter(
                    points, esc10.target[test], esc10.target_names, with_pair, Path(args.plots)
                )
    print(f"machine: {machine_summary()}")
    print(f"settings: {vars(args)}")
    print("| system | linear classifier | clustering (t-SNE → k-means) |")
    print("| --- | ---: | ---: |")
    for with_pair, name in ((False, "w/o PairLoss"), (True, "w/ PairLoss")):
        r = np.array(results[with_pair])
        print(
            f"| {name} | {r[:, 0].mean():.3f} ± {r[:, 0].std():.3f} | "
            f"{r[:, 1].mean():.3f} ± {r[:, 1].std():.3f} |"
        )
    w, wo = np.array(results[True]).mean(0), np.array(results[False]).mean(0)
    diff = np.array(results[True]) - np.array(results[False])  # paired: same fold, same seed
    if len(diff) > 1:
        sem = diff.std(0, ddof=1) / np.sqrt(len(diff))
        wins = (diff > 0).sum(0)
        print(
            f"paired difference w/ - w/o over {len(diff)} fold/seed runs: "
            f"classifier {diff[:, 0].mean():+.3f} ± {sem[0]:.3f} (better in {wins[0]}), "
            f"clustering {diff[:, 1].mean():+.3f} ± {sem[1]:.3f} (better in {wins[1]})"
        )
    print(
        f"relative gain of PairLoss: classifier {100 * (w[0] / wo[0] - 1):+.1f} %, "
        f"clustering {100 * (w[1] / wo[1] - 1):+.1f} %"
    )
    print(f"time: {time.perf_counter() - start:.0f} s")


def save_scatter(points, y, names, with_pair, folder):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no scatter plot")
        return
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4))
    for c, name in enumerate(names):
        ax.scatter(*points[y == c].T, s=10, label=name)
    ax.set_title(f"t-SNE of AFP feature distributions ({'w/' if with_pair else 'w/o'} PairLoss)")
    ax.legend(fontsize=6, markerscale=1.5)
    path = folder / f"afp_tsne_{'pairloss' if with_pair else 'mse_only'}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main()

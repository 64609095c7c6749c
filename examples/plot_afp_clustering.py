"""
AFP: does the pair loss make sounds cluster? (Table 1 / Fig. 2)
===============================================================

Two AFP frame predictors, with and without the KL pair loss, are trained
without labels; their feature distributions are mapped by t-SNE, clustered by
k-means, and scored by Hungarian cluster accuracy.
"""

import os

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE

from sklaudio import AFPPairLossEmbedder, SpectrogramTransformer, cluster_accuracy
from sklaudio.datasets import make_sounds
from sklaudio.plotting import EmbeddingDisplay

FAST = os.environ.get("SKLAUDIO_EXAMPLES_FAST") == "1"
sounds = make_sounds(
    n_samples=40 if FAST else 100, n_classes=4, sample_rate=8000, duration=2.0, random_state=0
)
S = SpectrogramTransformer(
    "log_mel", sample_rate=8000, n_fft=512, hop_length=128, n_mels=32
).fit_transform(sounds.data)

_, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, pair in zip(axes, (False, True)):
    afp = AFPPairLossEmbedder(
        frame_duration=0.64,
        sample_rate=8000,
        hop_length=128,
        code_channels=32,
        widths=(8, 16),
        mse_epochs=1 if FAST else 6,
        pair_epochs=1 if FAST else 3,
        pair_loss=pair,
        random_state=0,
    )
    features = afp.fit_transform(S)
    points = TSNE(2, perplexity=10, random_state=0).fit_transform(features)
    clusters = KMeans(4, n_init=10, random_state=0).fit_predict(points)
    score = cluster_accuracy(sounds.target, clusters)
    name = "w/ PairLoss" if pair else "w/o PairLoss"
    print(f"{name}: cluster accuracy {score:.3f}")
    EmbeddingDisplay(points, sounds.target, sounds.target_names, "t-SNE").plot(
        ax=ax, title=f"{name} (cluster accuracy {score:.2f})"
    )
plt.show()

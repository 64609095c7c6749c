"""
Pre-train once, reuse the frozen encoder everywhere
===================================================

DLS pre-trains on the pooled, unlabelled audio of all folds (its phase 2),
then evaluates per fold. ``FrozenEstimator`` keeps the fitted embedder from
being refitted by ``cross_val_score``; ``sklaudio.persist`` saves it safely.
"""

import os
import tempfile

from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.pipeline import make_pipeline

from sklaudio import NPIDEmbedder, SpectrogramTransformer, WeightedKNeighborsClassifier
from sklaudio.datasets import make_sounds
from sklaudio.persist import load, save

FAST = os.environ.get("SKLAUDIO_EXAMPLES_FAST") == "1"
sounds = make_sounds(n_samples=50 if FAST else 200, n_classes=5, sample_rate=8000, random_state=0)
spectrogram = SpectrogramTransformer("log_mel", sample_rate=8000, n_mels=32)
S = spectrogram.fit_transform(sounds.data)

# %%
# Phase 2: one encoder, all clips, no labels. Saved without pickle.
npid = NPIDEmbedder(
    loss="softmax", max_epochs=3 if FAST else 40, batch_size=32, random_state=0
).fit(S)
path = os.path.join(tempfile.mkdtemp(), "npid.pt")
save(npid, path)

# %%
# Per-fold evaluation: only the kNN is fitted on each training split.
pipe = make_pipeline(FrozenEstimator(load(path)), WeightedKNeighborsClassifier(n_neighbors=5))
scores = cross_val_score(pipe, S, sounds.target, cv=PredefinedSplit(sounds.folds))
print(f"weighted kNN on the frozen DLS encoder: {scores.mean():.3f} ± {scores.std():.3f}")

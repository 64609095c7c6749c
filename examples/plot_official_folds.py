"""
Cross-validation on a dataset's official folds
==============================================

Every loader returns ``folds``; ``PredefinedSplit`` turns them into the
corpus' official protocol. With ``SKLAUDIO_ESC10=/path/to/esc10`` this runs on
the real ESC-10; otherwise on generated sounds with five folds.
"""

import os

import numpy as np
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklaudio import AudioReader, SpectrogramTransformer, TemporalStatistics
from sklaudio.datasets import load_esc10, make_sounds

FAST = os.environ.get("SKLAUDIO_EXAMPLES_FAST") == "1"
root = os.environ.get("SKLAUDIO_ESC10")
if root and not FAST:
    corpus, sample_rate, duration = load_esc10(root), 22050, 5.0
    X = corpus.filenames
else:
    corpus = make_sounds(
        n_samples=50 if FAST else 200, n_classes=5, sample_rate=16000, random_state=0
    )
    sample_rate, duration = 16000, 1.0
    X = corpus.data

# %%
# The log-mel floor: per-band mean and standard deviation, then a 5-NN.
pipe = make_pipeline(
    AudioReader(sample_rate=sample_rate, duration=duration),
    SpectrogramTransformer("log_mel", sample_rate=sample_rate, n_mels=64),
    TemporalStatistics(),
    StandardScaler(),
    KNeighborsClassifier(n_neighbors=5),
)
scores = cross_val_score(pipe, X, corpus.target, cv=PredefinedSplit(corpus.folds))
for fold, score in zip(np.unique(corpus.folds), scores):
    print(f"fold {fold}: {score:.3f}")
print(f"mean {scores.mean():.3f} ± {scores.std():.3f}")

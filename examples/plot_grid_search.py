"""
Grid search over embedding hyper-parameters, with cached spectrograms
=====================================================================

Every candidate pre-trains its own encoder, but the spectrograms are the same
for all of them: a pipeline ``memory`` (joblib) computes them once per fold.
"""

import os
import tempfile

from joblib import Memory
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline

from sklaudio import NPIDEmbedder, SpectrogramTransformer, WeightedKNeighborsClassifier
from sklaudio.datasets import make_sounds

FAST = os.environ.get("SKLAUDIO_EXAMPLES_FAST") == "1"
sounds = make_sounds(
    n_samples=48 if FAST else 150, n_classes=3, sample_rate=8000, n_folds=3, random_state=0
)

cache = Memory(tempfile.mkdtemp(), verbose=0)
pipe = Pipeline(
    [
        ("spectrogram", SpectrogramTransformer("log_mel", sample_rate=8000, n_mels=32)),
        (
            "npid",
            NPIDEmbedder(
                loss="softmax", max_epochs=2 if FAST else 20, batch_size=16, random_state=0
            ),
        ),
        ("knn", WeightedKNeighborsClassifier(n_neighbors=5)),
    ],
    memory=cache,  # the fitted SpectrogramTransformer (and its output) is reused
)
grid = GridSearchCV(
    pipe,
    {"npid__embedding_dim": [16, 64], "npid__nce_t": [0.1, 0.4]},
    cv=PredefinedSplit(sounds.folds),
)
grid.fit(sounds.data, sounds.target)
print("best:", grid.best_params_, f"accuracy {grid.best_score_:.3f}")

"""
Grid search over embedding hyper-parameters, with cached spectrograms
=====================================================================

Every candidate pre-trains its own encoder, but many share their spectrograms.
A pipeline ``memory`` (joblib) caches what ``fit`` computes: each training
split's spectrograms, once per front-end setting, and every fitted step before
the last.

Two things to know about that cache:

* the held-out fold is transformed anew for every candidate (``memory`` caches
  ``fit``, not ``predict``);
* the fitted embedders are cached too, with their optimizer state: about 4 MB
  each for ``esresnet_tiny``, hundreds of MB for ``esresnet50``. Clear the
  cache after the search.

When only the embedder's parameters are searched, compute the spectrograms
once before the search instead (the front end learns nothing, so this is
exact and computes the held-out folds once too)::

    S = SpectrogramTransformer("log_mel", sample_rate=8000).fit_transform(waves)
    GridSearchCV(Pipeline([("npid", NPIDEmbedder()), ("knn", ...)]), ...).fit(S, y)

Here the front end's ``n_mels`` is searched as well, so the spectrograms stay in
the pipeline and the cache computes each setting once per fold.
"""

import os
import shutil
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

cache_dir = tempfile.mkdtemp()
pipe = Pipeline(
    [
        ("spectrogram", SpectrogramTransformer("log_mel", sample_rate=8000)),
        (
            "npid",
            NPIDEmbedder(
                loss="softmax", max_epochs=2 if FAST else 20, batch_size=16, random_state=0
            ),
        ),
        ("knn", WeightedKNeighborsClassifier(n_neighbors=5)),
    ],
    memory=Memory(cache_dir, verbose=0),  # each fold's spectrograms, per n_mels
)
grid = GridSearchCV(
    pipe,
    {"spectrogram__n_mels": [32, 64], "npid__nce_t": [0.1, 0.4]},
    cv=PredefinedSplit(sounds.folds),
)
grid.fit(sounds.data, sounds.target)
print("best:", grid.best_params_, f"accuracy {grid.best_score_:.3f}")
shutil.rmtree(cache_dir)  # the cache holds every fitted embedder

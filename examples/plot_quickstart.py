"""
Quickstart: learn sound embeddings without labels, classify with kNN
====================================================================

A scikit-learn pipeline from audio files to labels: decode and crop the
files, compute log-mel spectrograms, pre-train an NPID embedder (DLS) on the
training clips without their labels, and classify the embeddings with NPID's
weighted kNN.
"""

import os
import tempfile

from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sklaudio import (
    AudioReader,
    NPIDEmbedder,
    SpectrogramTransformer,
    WeightedKNeighborsClassifier,
)
from sklaudio.datasets import make_sounds

FAST = os.environ.get("SKLAUDIO_EXAMPLES_FAST") == "1"

# %%
# Generated sound events stand in for a real corpus (``load_esc10(root)`` gives
# the same kind of Bunch for ESC-10).
directory = tempfile.mkdtemp()
sounds = make_sounds(
    n_samples=60 if FAST else 200,
    n_classes=4,
    sample_rate=16000,
    duration=1.0,
    random_state=0,
    directory=directory,
)
X_train, X_test, y_train, y_test = train_test_split(
    sounds.filenames, sounds.target, test_size=0.25, stratify=sounds.target, random_state=0
)

# %%
# The pipeline. ``NPIDEmbedder.fit`` ignores ``y``: each clip is its own class.
pipe = make_pipeline(
    AudioReader(sample_rate=16000, duration=1.0),
    SpectrogramTransformer("log_mel", sample_rate=16000, n_mels=64, n_fft=1024, hop_length=256),
    NPIDEmbedder(max_epochs=3 if FAST else 40, loss="softmax", batch_size=32, random_state=0),
    WeightedKNeighborsClassifier(n_neighbors=5),
)
pipe.fit(X_train, y_train)
print(f"test accuracy: {pipe.score(X_test, y_test):.3f} (chance 0.25)")

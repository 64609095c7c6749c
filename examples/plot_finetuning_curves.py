"""
Fine-tuning learning curves: scratch vs DLS (the paper's Fig. 4)
================================================================

For each official fold, the same network is fine-tuned from scratch and from
the DLS encoder, and scored on the held-out fold after every epoch.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from sklaudio import FineTunedClassifier, NPIDEmbedder, SpectrogramTransformer
from sklaudio.datasets import make_sounds
from sklaudio.plotting import FineTuningCurveDisplay

FAST = os.environ.get("SKLAUDIO_EXAMPLES_FAST") == "1"
sounds = make_sounds(
    n_samples=60 if FAST else 200, n_classes=5, sample_rate=8000, n_folds=3, random_state=0
)
X = SpectrogramTransformer("log_mel", sample_rate=8000, n_mels=32).fit_transform(sounds.data)
npid = NPIDEmbedder(
    loss="softmax", max_epochs=3 if FAST else 40, batch_size=32, random_state=0
).fit(X)

fits = {"scratch": [], "DLS": []}
for fold in np.unique(sounds.folds):
    test = sounds.folds == fold
    for name, embedder in (("scratch", None), ("DLS", npid)):
        clf = FineTunedClassifier(
            embedder=embedder,
            max_epochs=2 if FAST else 15,
            batch_size=16,
            head_lr=1e-2,
            train_split=predefined_split(Dataset(X[test], sounds.target[test])),
            random_state=0,
        )
        fits[name].append(clf.fit(X[~test], sounds.target[~test]))

display = FineTuningCurveDisplay.from_estimators(fits)
for name, (mean, std) in display.mean_std().items():
    print(f"{name}: epoch 1 {mean[0]:.3f}, last epoch {mean[-1]:.3f} ± {std[-1]:.3f}")
display.plot(title="fine-tuning, 3 folds")
plt.show()

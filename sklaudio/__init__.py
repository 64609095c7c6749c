"""sklaudio: unsupervised sound representations as scikit-learn estimators."""

from sklaudio.classifiers import FineTunedClassifier, WeightedKNeighborsClassifier
from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder
from sklaudio.features import SpectrogramTransformer, TemporalStatistics
from sklaudio.io import AudioReader, read_audio
from sklaudio.metrics import cluster_accuracy

__version__ = "0.1.0.dev0"

__all__ = [
    "AFPPairLossEmbedder",
    "AudioReader",
    "FineTunedClassifier",
    "NPIDEmbedder",
    "SpectrogramTransformer",
    "TemporalStatistics",
    "WeightedKNeighborsClassifier",
    "__version__",
    "cluster_accuracy",
    "read_audio",
]

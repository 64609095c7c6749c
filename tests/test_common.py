"""scikit-learn's common estimator checks on every public estimator."""

from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklaudio.classifiers import FineTunedClassifier, WeightedKNeighborsClassifier
from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder
from sklaudio.features import SpectrogramTransformer, TemporalStatistics
from sklaudio.io import AudioReader

# Estimators are built with settings small enough for the checks' toy data
# (a few samples per "clip"); each expected failure says why it cannot pass.
ESTIMATORS = [
    AudioReader(),
    SpectrogramTransformer("power", n_fft=2, hop_length=1, device="cpu"),
    SpectrogramTransformer("log_mel", sample_rate=8, n_fft=2, hop_length=1, n_mels=2, device="cpu"),
    WeightedKNeighborsClassifier(n_neighbors=3),
    TemporalStatistics(),
]


class _RowToImage:
    """A frontend for the checks' 2-D tables: each row becomes a 1×1×F image (a class, so
    that the test ids, which hold the estimators' repr, carry no memory address)."""

    def __call__(self, x):
        return x[:, None, None, :]

    def __repr__(self):
        return "row_to_image"


_row_to_image = _RowToImage()


# NPIDEmbedder reads spectrograms (n, channels, n_freq, n_frames); the checks feed
# 2-D tables, so it runs them with a frontend that turns each row into a 1×1×F image.
NPID = NPIDEmbedder(
    embedding_dim=4,
    nce_k=2,
    loss="softmax",
    max_epochs=1,
    batch_size=16,
    random_state=0,
    frontend=_row_to_image,
    device="cpu",
)

# The temporal-statistics read-out goes through the same checks (its own output width).
NPID_STATS = clone(NPID).set_params(output="stats", stats_stages=(1, 4))

AFP = AFPPairLossEmbedder(
    frame_duration=0.5,
    sample_rate=4,
    hop_length=1,
    code_channels=4,
    widths=(2, 2),
    mse_epochs=1,
    pair_epochs=1,
    batch_size=8,
    random_state=0,
    frontend=_row_to_image,
    device="cpu",
)

FINETUNED = FineTunedClassifier(
    backbone="esresnet_tiny",
    max_epochs=8,
    batch_size=32,
    lr=3e-2,
    augment=False,
    random_state=0,
    frontend=_row_to_image,
    device="cpu",
)

# The new layer on stage statistics (batch-normalised, random start) goes through them too.
FINETUNED_STATS = clone(FINETUNED).set_params(head_features="stats")

_SKORCH_INIT = (
    "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_ "
    "(skorch's own design, shared by all skorch nets)"
)

# Not strict: whether a clip's output moves in the last bits when the other clips of its
# batch change depends on the CPU and on torch's thread count (oneDNN's blocking); on
# some machines these checks pass, on others they fail by ~1e-8.
_ROUNDING = (
    "float32 convolutions may round differently (~1e-8, depending on the CPU and thread "
    "count) when the clips of a batch change; the check demands rtol=1e-7"
)

EXPECTED_FAILED = {
    "TemporalStatistics": {},
    "FineTunedClassifier": {
        "check_no_attributes_set_in_init": _SKORCH_INIT,
        "check_methods_sample_order_invariance": _ROUNDING,
        "check_methods_subset_invariance": _ROUNDING,
    },
    "NPIDEmbedder": {
        "check_no_attributes_set_in_init": _SKORCH_INIT,
        "check_methods_sample_order_invariance": _ROUNDING,
    },
    "AFPPairLossEmbedder": {
        "check_no_attributes_set_in_init": _SKORCH_INIT,
        "check_methods_sample_order_invariance": _ROUNDING,
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(
    [*ESTIMATORS, NPID, NPID_STATS, AFP, FINETUNED, FINETUNED_STATS],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

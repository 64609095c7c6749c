"""scikit-learn's common estimator checks on every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader

# Estimators are built with settings small enough for the checks' toy data
# (a few samples per "clip"); each expected failure says why it cannot pass.
ESTIMATORS = [
    AudioReader(),
    SpectrogramTransformer("power", n_fft=2, hop_length=1, device="cpu"),
    SpectrogramTransformer("log_mel", sample_rate=8, n_fft=2, hop_length=1, n_mels=2, device="cpu"),
]

EXPECTED_FAILED = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)

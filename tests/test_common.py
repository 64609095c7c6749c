"""scikit-learn's common estimator checks on every public estimator."""

import warnings
from pathlib import Path

import pytest
import sklearn
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

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


# scikit-learn's checks of feature names, which parametrize_with_checks leaves out (its own
# test suite runs them on its estimators): DataFrame columns become feature_names_in_ and
# are checked at transform/predict, get_feature_names_out names every output column
_FEATURE_NAME_CHECKS = [
    check_dataframe_column_names_consistency,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
]


@pytest.mark.parametrize(
    "estimator",
    [*ESTIMATORS, NPID, AFP, FINETUNED],
    ids=lambda estimator: type(estimator).__name__,
)
def test_feature_names_follow_scikit_learn(estimator):
    pytest.importorskip("pandas")
    for check in _FEATURE_NAME_CHECKS:
        if "transformer" in check.__name__ and not hasattr(estimator, "transform"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (settings sized for toy data)
            check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", [NPID, AFP, FINETUNED], ids=lambda e: type(e).__name__)
def test_torch_estimators_request_no_metadata(estimator):
    # skorch's set_fit_request took any name, which fit then handed to the network
    name = type(estimator).__name__
    with sklearn.config_context(enable_metadata_routing=True):
        est = clone(estimator)
        assert est.set_fit_request() is est
        with pytest.raises(TypeError, match=f"{name} does not support sample_weight"):
            est.set_fit_request(sample_weight=True)
        with pytest.raises(TypeError, match=rf"{name}\.set_fit_request got 'groups'"):
            est.set_fit_request(groups=True)
        # (scikit-learn 1.6 replaces this setter by its own, which refuses it as well)
        with pytest.raises(TypeError, match=r"partial_fit"):
            est.set_partial_fit_request(bogus="alias")
        routing = est.get_metadata_routing()
        # (scikit-learn 1.6 lists partial_fit's classes, unrequested: None)
        requests = {**routing.fit.requests, **routing.partial_fit.requests}
        assert all(value in (None, False) for value in requests.values()), requests
        # a Pipeline routes nothing to it (nor to a train_split's splitter inside it)
        pipe = Pipeline([("step", est)])
        assert not pipe.get_metadata_routing().consumes("fit", ["sample_weight", "groups"])


PUBLIC_ESTIMATORS = [
    AudioReader,
    SpectrogramTransformer,
    TemporalStatistics,
    NPIDEmbedder,
    AFPPairLossEmbedder,
    WeightedKNeighborsClassifier,
    FineTunedClassifier,
]


@pytest.mark.parametrize("cls", PUBLIC_ESTIMATORS, ids=lambda cls: cls.__name__)
def test_the_notebook_display_links_to_sklaudios_api_page_not_scikit_learns(cls):
    link = cls()._get_doc_link()
    module = cls.__module__  # its page in docs/api.rst (autosummary's generated/ pages)
    assert link.startswith("https://sklaudio.readthedocs.io/en/")
    assert link.endswith(f"/generated/{module}.{cls.__name__}.html")
    api = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text()
    assert f"   {module.removeprefix('sklaudio.')}.{cls.__name__}\n" in api
    html = cls()._repr_html_()
    assert f'href="{link}"' in html and 'href="https://scikit-learn.org' not in html

    class Custom(cls):  # a user's subclass: no link (its docs are not sklaudio's)
        pass

    assert Custom()._get_doc_link() == ""

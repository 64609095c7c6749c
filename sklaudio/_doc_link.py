"""The link from an estimator's notebook display to its page in sklaudio's API reference."""

from __future__ import annotations

import itertools

# Where the documentation is published: pyproject.toml's Documentation URL.
DOCS_URL = "https://sklaudio.readthedocs.io"


class DocLinkMixin:
    """Point scikit-learn's HTML repr (the '?' of a notebook display) at sklaudio's docs.

    scikit-learn links only estimators of its own module and leaves others without a
    link; these attributes give sklaudio's estimators their page of docs/api.rst
    (autosummary's ``generated/sklaudio.io.AudioReader.html``). A user's subclass defined
    outside sklaudio gets no link, as scikit-learn does for its own.
    """

    _doc_link_module = "sklaudio"
    _doc_link_template = (
        DOCS_URL + "/en/{version}/generated/{estimator_module}.{estimator_name}.html"
    )

    def _doc_link_url_param_generator(self) -> dict:
        from sklaudio import __version__  # (sklaudio's __init__ imports this module first)

        cls = type(self)
        # the module up to its first private part, as scikit-learn builds it
        module = ".".join(
            itertools.takewhile(lambda part: not part.startswith("_"), cls.__module__.split("."))
        )
        return {
            # a development version is documented by the docs of the main branch
            "version": "latest" if "dev" in __version__ else "stable",
            "estimator_module": module,
            "estimator_name": cls.__name__,
        }

"""Sphinx configuration for sklaudio."""

import sklaudio

project = "sklaudio"
author = "sklaudio developers"
copyright = "2026, sklaudio developers"
release = sklaudio.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
# examples/ becomes the gallery. The scripts are shown, not run, while building the docs
# (the test suite runs each in its fast mode; run them yourself for real figures).
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "plot_gallery": "False",
    "download_all_examples": False,
}
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "alabaster"
templates_path = ["_templates"]
# The docs build offline (no intersphinx inventories to fetch); cross-references to
# other projects' objects render as plain text.
nitpicky = False
# sklearn's generated metadata-routing setters cross-reference sklearn's own glossary.
autodoc_default_options = {
    "exclude-members": ",".join(
        f"set_{method}_request"
        for method in ("fit", "partial_fit", "predict", "predict_proba", "score", "transform")
    )
}

"""Audio datasets with their official folds, and a synthetic sound generator.

``load_*`` read a local copy, ``fetch_*`` download, verify and cache one first, and
:func:`make_sounds` generates labelled clips. Every loader returns a
:class:`~sklearn.utils.Bunch` whose ``filenames``, ``target`` and ``folds`` are aligned,
so ``cross_val_score(pipe, b.filenames, b.target, cv=PredefinedSplit(b.folds))``
reproduces the corpus' official protocol. :func:`read_corpus` decodes a loaded corpus and,
when files fail to decode with ``on_error='skip'``, drops them from every per-clip field;
:func:`check_corpus` does the same a chunk at a time, for a corpus that a model will stream.
"""

from sklaudio.datasets._base import check_corpus, read_corpus
from sklaudio.datasets._dcase2013 import load_dcase2013_scenes
from sklaudio.datasets._esc import load_esc10, load_esc50
from sklaudio.datasets._fetch import (
    fetch_esc10,
    fetch_esc50,
    fetch_urbansound8k,
    get_data_home,
)
from sklaudio.datasets._folder import load_folder
from sklaudio.datasets._urbansound8k import load_urbansound8k
from sklaudio.datasets.synthetic import make_sounds

__all__ = [
    "check_corpus",
    "fetch_esc10",
    "fetch_esc50",
    "fetch_urbansound8k",
    "get_data_home",
    "load_dcase2013_scenes",
    "load_esc10",
    "load_esc50",
    "load_folder",
    "load_urbansound8k",
    "make_sounds",
    "read_corpus",
]

"""Real-data checks on ESC-10; skipped when the corpus is not beside the checkout."""

import os
from pathlib import Path

import numpy as np
import pytest

from sklaudio.datasets import load_esc10
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader

ESC10 = Path(
    os.environ.get(
        "SKLAUDIO_ESC10", Path(__file__).resolve().parents[2] / "shared" / "data" / "esc10"
    )
)

pytestmark = pytest.mark.skipif(not ESC10.is_dir(), reason=f"ESC-10 not found at {ESC10}")


def test_esc10_files_to_esresnet_spectrograms():
    esc10 = load_esc10(ESC10)
    first_of_each_class = [np.flatnonzero(esc10.target == c)[0] for c in range(10)][:4]
    files = esc10.filenames[first_of_each_class]
    waves = AudioReader(sample_rate=44100, duration=5.0, n_jobs=2).fit_transform(files)
    assert waves.shape == (4, 220500)
    spec = SpectrogramTransformer("esresnet", device="cpu").fit_transform(waves)
    assert spec.shape == (4, 3, 341, 394) and spec.dtype == np.float32
    assert np.isfinite(spec).all()
    # real recordings carry more energy in the lowest band than in the highest
    assert (spec[:, 0].mean(axis=(1, 2)) > spec[:, 2].mean(axis=(1, 2))).all()

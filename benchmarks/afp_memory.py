"""Peak memory of an in-memory AFP fit and transform on long clips.

AFP trains on sequences of four overlapping frames at a quarter-frame hop, so a copy of every
clip's sequences holds each spectrogram step about 16 times. This fits and applies an
``AFPPairLossEmbedder`` on random log-mel spectrograms of 30 s clips (DCASE 2013 scenes:
22.05 kHz, hop 512, 64 bands, 1292 steps) and prints the process's peak RSS beside the
spectrograms' own size. Run it with ``OMP_NUM_THREADS=1`` to time it like the docs.

    python benchmarks/afp_memory.py [--n-clips 200]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from _common import machine_summary

from sklaudio.embedders import AFPPairLossEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-clips", type=int, default=200)
    args = parser.parse_args()
    print(machine_summary())
    S = np.random.default_rng(0).normal(size=(args.n_clips, 1, 64, 1292)).astype(np.float32)
    start = time.perf_counter()
    afp = AFPPairLossEmbedder(
        sample_rate=22050,
        hop_length=512,
        code_channels=8,
        widths=(4, 4),
        mse_epochs=1,
        pair_epochs=0,
        random_state=0,
    ).fit(S)
    Z = afp.transform(S)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"{args.n_clips} clips, {afp.sequences_per_clip_} sequences each: spectrograms "
        f"{S.nbytes / 2**20:.0f} MiB, peak RSS {peak:.0f} MiB, fit + transform {seconds:.0f} s, "
        f"embeddings {Z.shape}"
    )


if __name__ == "__main__":
    main()

"""Clips from long recordings: AudioReader's centre window vs decoding whole files.

``AudioReader(sample_rate, duration)`` keeps the centre ``duration`` seconds of
each file. It decodes and resamples only a window around them (aligned on the
resampler's grid, with a margin wider than its filter); the reference decodes
and resamples the whole file, then centre-crops it (what AudioReader did
before). Both run in one process on the same generated files, one file after
another; the clips must be identical.

    python benchmarks/bench_long_files.py [--files 20] [--seconds 30] [--native 48000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from _common import machine_summary

from sklaudio.io import AudioReader, fix_length, read_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each file")
    parser.add_argument("--native", type=int, default=48000, help="the files' sample rate")
    parser.add_argument("--sample-rate", type=int, default=22050, help="AudioReader's rate")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds kept per clip")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine_summary())

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(args.files):
            path = Path(folder) / f"rec{i}.wav"
            n = int(args.seconds * args.native)
            sf.write(path, rng.uniform(-0.5, 0.5, n).astype(np.float32), args.native)
            paths.append(str(path))
        reader = AudioReader(sample_rate=args.sample_rate, duration=args.duration, n_jobs=1)
        n_out = reader.n_samples_out

        def whole():
            return np.stack(
                [fix_length(read_audio(p, sample_rate=args.sample_rate)[0], n_out) for p in paths]
            )

        def window():
            return reader.fit_transform(paths)

        runs = {"whole file, then crop": whole, "centre window (AudioReader)": window}
        times = {name: [] for name in runs}
        clips = {}
        for _ in range(args.repeat):  # interleaved, so both see the same machine state
            for name, run in runs.items():
                start = time.perf_counter()
                clips[name] = run()
                times[name].append(time.perf_counter() - start)
        same = np.array_equal(*clips.values())

    print(
        f"{args.files} files of {args.seconds:g} s at {args.native} Hz -> "
        f"{args.duration:g} s clips at {args.sample_rate} Hz (best of {args.repeat})"
    )
    best = {name: min(t) for name, t in times.items()}
    for name, t in best.items():
        print(f"| {name} | {t:.3f} s |")
    ratio = best["whole file, then crop"] / best["centre window (AudioReader)"]
    print(f"speed-up: {ratio:.1f}x; identical clips: {same}")


if __name__ == "__main__":
    main()

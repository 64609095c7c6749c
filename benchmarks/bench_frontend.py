"""Files → ESResNet spectrograms: sklaudio vs librosa, side by side in one run.

sklaudio: ``AudioReader(sample_rate=44100, duration=5, n_jobs=-1)`` then
``SpectrogramTransformer('esresnet')`` (batched torch STFT).
librosa: ``librosa.load(sr=44100)`` then ``librosa.stft`` with the same
parameters, power, 3 bands and dB in numpy, one file after another.

Both produce the same (n, 3, 341, 394) array (checked). Timings are the best
of ``--repeat`` runs.

    python benchmarks/bench_frontend.py [--root ../shared/data/esc10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import librosa
import numpy as np
import torch
from _common import default_esc10_root, machine_summary

from sklaudio.datasets import load_esc10
from sklaudio.features import SpectrogramTransformer, _stft_frames, _Workspace
from sklaudio.io import AudioReader, fix_length

SR, DURATION = 44100, 5.0
STFT = {"n_fft": 2048, "hop_length": 561, "win_length": 1654, "window": "blackmanharris"}


def librosa_spectrogram(y):
    spec = librosa.stft(y, center=True, pad_mode="reflect", **STFT) / np.sqrt(STFT["n_fft"])
    power = (spec.real**2 + spec.imag**2)[:1023]
    power[power <= 0] = 1e-18
    return 10 * np.log10(power).reshape(3, 341, -1)


def librosa_load(path):
    y, _ = librosa.load(path, sr=SR, mono=True)
    return fix_length(y, int(SR * DURATION))


def complex_stft(x, batch_size=2):
    """sklaudio's batched STFT (the first half of the esresnet front end), kept in memory."""
    workspace = _Workspace()
    with torch.inference_mode():
        return [
            _stft_frames(
                x[i : i + batch_size], normalized=True, workspace=workspace, **STFT
            ).clone()
            for i in range(0, len(x), batch_size)
        ]


def best_of(repeat, fn):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_esc10_root())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    args = parser.parse_args(argv)

    files = load_esc10(args.root).filenames[: args.limit]
    n = len(files)
    reader = AudioReader(sample_rate=SR, duration=DURATION, n_jobs=-1)
    spectrogram = SpectrogramTransformer("esresnet", device="cpu")
    # warm-up: imports, FFT plans, thread pools
    spectrogram.fit(reader.fit_transform(files[:4]))
    librosa_spectrogram(librosa_load(files[0]))

    t_sk_read, waves = best_of(args.repeat, lambda: reader.transform(files))
    t_sk_stft, ours = best_of(args.repeat, lambda: spectrogram.transform(waves))
    t_lr_read, lr_waves = best_of(args.repeat, lambda: [librosa_load(f) for f in files])
    t_lr_stft, theirs = best_of(args.repeat, lambda: [librosa_spectrogram(y) for y in lr_waves])
    theirs = np.stack(theirs)
    # The STFT proper (complex, before power and dB), the same way on both sides.
    t_sk_fft, _ = best_of(args.repeat, lambda: complex_stft(torch.from_numpy(waves)))
    t_lr_fft, _ = best_of(
        args.repeat,
        lambda: [librosa.stft(y, center=True, pad_mode="reflect", **STFT) for y in lr_waves],
    )

    peak = theirs.max(axis=(1, 2, 3), keepdims=True)
    mask = theirs >= peak - 80.0
    diff = float(np.abs(ours - theirs)[mask].max())

    t_sk, t_lr = t_sk_read + t_sk_stft, t_lr_read + t_lr_stft
    print(f"machine: {machine_summary()}; torch threads {torch.get_num_threads()}")
    print(f"{n} ESC-10 files -> (n, 3, 341, 394) esresnet spectrograms; best of {args.repeat}")
    print("| step | sklaudio (s) | librosa serial (s) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name, a, b in [
        ("decode + resample + fix length", t_sk_read, t_lr_read),
        ("complex STFT only", t_sk_fft, t_lr_fft),
        ("STFT → 3-band dB spectrogram (the front end)", t_sk_stft, t_lr_stft),
        ("end to end: decode + spectrogram", t_sk, t_lr),
    ]:
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f}× |")
    print(
        f"clips/s end to end: sklaudio {n / t_sk:.0f}, librosa {n / t_lr:.0f}; "
        f"max |difference| within 80 dB of each clip's peak: {diff:.4f} dB"
    )


if __name__ == "__main__":
    main()

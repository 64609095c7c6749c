"""Streaming a corpus larger than memory: one NPID epoch and one transform from files.

Generates an UrbanSound8K-sized corpus on disk (8,732 WAV files of 4 s at 44.1 kHz, about
3 GB), then fits ``NPIDEmbedder`` for one epoch and embeds every clip with
``frontend=make_pipeline(AudioReader, SpectrogramTransformer('esresnet'))`` and ``X`` a 1-d
array of paths: DataLoader workers decode the files per batch, the ESResNet spectrograms are
computed per batch, and nothing corpus-sized is built (as one float32 array the waveforms
alone would take 6.2 GB, the esresnet spectrograms 11 GB). A sampler thread records the peak
memory of this process plus its DataLoader workers (see ``PeakMemory``). The files are
deleted at the end.

    python benchmarks/bench_streaming.py [--n-files 8732] [--workers 2] [--dir /tmp/...]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
from _common import machine_summary
from sklearn.pipeline import make_pipeline

from sklaudio.embedders import NPIDEmbedder
from sklaudio.features import SpectrogramTransformer
from sklaudio.io import AudioReader

SR, SECONDS = 44100, 4.0


class PeakMemory(threading.Thread):
    """Peak memory of this process and its children (the DataLoader workers), every 0.5 s.

    ``rss``: the sum of resident sets, which counts the pages the forked workers share with
    this process once per process (an upper bound); ``pss``: the proportional set sizes,
    which count each shared page once; ``main``: this process's own resident set.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = {"rss": 0, "pss": 0, "main": 0}
        self._stop_event = threading.Event()

    def run(self):
        me = psutil.Process()
        while not self._stop_event.wait(0.5):
            rss = pss = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    info = proc.memory_full_info()
                except psutil.Error:
                    continue
                rss, pss = rss + info.rss, pss + info.pss
            main = me.memory_info().rss
            for key, value in (("rss", rss), ("pss", pss), ("main", main)):
                self.peak[key] = max(self.peak[key], value)

    def stop(self) -> dict:
        self._stop_event.set()
        self.join()
        return {key: value / 2**30 for key, value in self.peak.items()}


def write_corpus(root: Path, n_files: int) -> list[str]:
    rng = np.random.default_rng(0)
    t = np.arange(int(SR * SECONDS)) / SR
    paths = []
    for i in range(n_files):
        f0 = rng.uniform(80, 4000)
        wave = 0.3 * np.sin(2 * np.pi * f0 * t) * np.exp(-t * rng.uniform(0.2, 3))
        wave += 0.05 * rng.standard_normal(t.size)
        path = root / f"fold{i % 10 + 1}" / f"{i:05d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, wave.astype(np.float32), SR, subtype="PCM_16")
        paths.append(str(path))
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-files", type=int, default=8732)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backbone", default="esresnet_tiny")
    parser.add_argument("--dir", default=None, help="where to write the corpus (a temp dir)")
    args = parser.parse_args()
    print(machine_summary())

    root = Path(tempfile.mkdtemp(prefix="sklaudio_stream_", dir=args.dir))
    try:
        start = time.perf_counter()
        paths = np.asarray(write_corpus(root, args.n_files), dtype=object)
        size = sum(p.stat().st_size for p in root.rglob("*.wav")) / 2**30
        print(f"wrote {len(paths)} files ({size:.2f} GiB) in {time.perf_counter() - start:.0f} s")

        frontend = make_pipeline(
            AudioReader(sample_rate=SR, duration=SECONDS), SpectrogramTransformer("esresnet")
        )
        npid = NPIDEmbedder(
            backbone=args.backbone,
            frontend=frontend,
            max_epochs=1,
            batch_size=args.batch_size,
            random_state=0,
            verbose=1,
            iterator_train__num_workers=args.workers,
            iterator_valid__num_workers=args.workers,
        )
        sampler = PeakMemory()
        sampler.start()
        start = time.perf_counter()
        npid.fit(paths)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        Z = npid.transform(paths)
        transform_s = time.perf_counter() - start
        peak = sampler.stop()
        assert Z.shape == (len(paths), npid.embedding_dim) and np.isfinite(Z).all()
        n = len(paths)
        print(f"one NPID epoch: {fit_s:.0f} s, {n / fit_s:.1f} clips/s")
        print(f"transform:      {transform_s:.0f} s, {n / transform_s:.1f} clips/s")
        print(
            f"peak memory, process + DataLoader workers: PSS {peak['pss']:.2f} GiB, summed RSS "
            f"{peak['rss']:.2f} GiB (shared pages counted per process); main process RSS "
            f"{peak['main']:.2f} GiB (goal <= 8 GB)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        print(f"deleted {root}")


if __name__ == "__main__":
    main()

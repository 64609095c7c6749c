"""Shared bits of the benchmark scripts: locating and loading ESC-10, describing the machine."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_esc10_root() -> Path:
    """``$SKLAUDIO_ESC10``, else ``../shared/data/esc10`` beside the checkout."""
    return Path(os.environ.get("SKLAUDIO_ESC10", REPO.parent / "shared" / "data" / "esc10"))


def machine_summary() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores, {device}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def esc10_log_mel(root, n_mels: int, sample_rate: int = 22050):
    """ESC-10 and its 5 s clips as log-mel spectrograms (n_fft 1024, hop 512), on the CPU."""
    from sklaudio.datasets import load_esc10
    from sklaudio.features import SpectrogramTransformer
    from sklaudio.io import AudioReader

    esc10 = load_esc10(root)
    reader = AudioReader(sample_rate=sample_rate, duration=5.0, n_jobs=-1)
    spectrogram = SpectrogramTransformer(
        "log_mel", sample_rate=sample_rate, n_fft=1024, hop_length=512, n_mels=n_mels, device="cpu"
    )
    return esc10, spectrogram.fit_transform(reader.fit_transform(esc10.filenames))

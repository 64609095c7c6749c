"""Shared bits of the benchmark scripts: locating ESC-10 and describing the machine."""

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

"""Seeded, batched spectrogram augmentation for instance discrimination."""

from __future__ import annotations

import math

import torch
from torch import nn

from sklaudio._checks import is_int

__all__ = ["SpectrogramAugment"]


class SpectrogramAugment(nn.Module):
    """Random time shift, frequency shift, gain, time masks and frequency masks on
    ``(n, C, F, T)`` dB images.

    Every clip of a batch gets its own draw. Active only in training mode;
    in evaluation mode the input passes unchanged.

    Parameters
    ----------
    max_shift : float, default=0.5
        Circular time shift of up to this fraction of the frames (a random
        crop of a looped clip: sound events move in time, the clip keeps its
        size).
    max_freq_shift : float, default=0.0
        Shift along the frequency axis by a whole number of bins, up to this
        fraction of them, up or down (on mel bands, roughly a pitch shift; the
        bins shifted in repeat the edge bin). Off by default;
        :class:`~sklaudio.embedders.NPIDEmbedder` uses 0.1.
    gain_db : float, default=6.0
        Uniform gain in ``[-gain_db, gain_db]`` dB, added to dB spectrograms.
    n_time_masks, n_freq_masks : int, default=2
        Masks per clip (SpecAugment), set to the clip's mean level.
    max_time_mask, max_freq_mask : float, default=0.15
        Largest mask as a fraction of the frames / frequency bins.
    seed : int, default=0
        Seeds the module's own generator: augmentation is reproducible and
        does not touch torch's global RNG.
    """

    def __init__(
        self,
        max_shift=0.5,
        gain_db=6.0,
        n_time_masks=2,
        n_freq_masks=2,
        max_time_mask=0.15,
        max_freq_mask=0.15,
        seed=0,
        max_freq_shift=0.0,
    ):
        super().__init__()
        for name, value, high in (
            ("max_shift", max_shift, 1),
            ("max_freq_shift", max_freq_shift, 1),
            ("gain_db", gain_db, math.inf),
            ("max_time_mask", max_time_mask, 1),
            ("max_freq_mask", max_freq_mask, 1),
        ):
            if isinstance(value, bool) or not (0 <= value <= high and math.isfinite(value)):
                where = "a finite number >= 0" if high == math.inf else f"in [0, {high}]"
                raise ValueError(f"{name} must be {where}, got {value!r}")
        for name, value in (("n_time_masks", n_time_masks), ("n_freq_masks", n_freq_masks)):
            if not is_int(value) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        self.max_shift = max_shift
        self.gain_db = gain_db
        self.n_time_masks = n_time_masks
        self.n_freq_masks = n_freq_masks
        self.max_time_mask = max_time_mask
        self.max_freq_mask = max_freq_mask
        self.seed = seed
        self.max_freq_shift = max_freq_shift
        self._generators: dict = {}

    # a module pickled before max_freq_shift existed did not shift
    max_freq_shift: float = 0.0

    def extra_repr(self) -> str:
        names = ("max_shift", "max_freq_shift", "gain_db", "n_time_masks", "n_freq_masks")
        names += ("max_time_mask", "max_freq_mask", "seed")
        return ", ".join(f"{n}={getattr(self, n)}" for n in names)

    def _generator(self, device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_generators"] = {}  # generators do not pickle; a loaded model restarts them
        return state

    def _uniform(self, shape, device, low=0.0, high=1.0):
        u = torch.rand(shape, generator=self._generator(device), device=device)
        return low + (high - low) * u

    def _masks(self, n, length, count, max_fraction, device):
        """``(n, length)`` boolean: True where any of ``count`` random bands covers."""
        if count == 0 or max_fraction <= 0:
            return torch.zeros(n, length, dtype=torch.bool, device=device)
        widths = (self._uniform((n, count), device) * max_fraction * length).long()
        starts = (self._uniform((n, count), device) * (length - widths + 1)).long()
        pos = torch.arange(length, device=device)[None, None]
        inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
        return inside.any(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.ndim != 4:
            raise ValueError(f"expected spectrograms of shape (n, C, F, T), got {tuple(x.shape)}")
        n, _, n_freq, n_frames = x.shape
        device = x.device
        if self.max_shift > 0:
            shifts = (self._uniform((n,), device) * self.max_shift * n_frames).long()
            idx = (torch.arange(n_frames, device=device)[None] - shifts[:, None]) % n_frames
            x = torch.gather(x, 3, idx[:, None, None, :].expand_as(x))
        largest = int(self.max_freq_shift * n_freq)
        if largest > 0:
            shifts = (self._uniform((n,), device) * (2 * largest + 1)).long() - largest
            idx = (torch.arange(n_freq, device=device)[None] - shifts[:, None]).clamp(0, n_freq - 1)
            x = torch.gather(x, 2, idx[:, None, :, None].expand_as(x))
        if self.gain_db > 0:
            x = x + self._uniform((n, 1, 1, 1), device, -self.gain_db, self.gain_db).to(x.dtype)
        level = x.mean(dim=(1, 2, 3), keepdim=True)
        time = self._masks(n, n_frames, self.n_time_masks, self.max_time_mask, device)
        freq = self._masks(n, n_freq, self.n_freq_masks, self.max_freq_mask, device)
        masked = time[:, None, None, :] | freq[:, None, :, None]
        return torch.where(masked, level, x)

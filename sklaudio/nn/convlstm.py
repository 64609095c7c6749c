"""Convolutional LSTM (Shi et al., 2015) and the AFP audio frame predictor (Meyer et al., 2017).

The AFP reads ``n_context`` consecutive mel-spectrogram frames (each an image
of ``n_mels × frame_steps``) and predicts the next one. Its code, the output of
the last encoder layer, has ``code_channels`` (K = 128) channels; averaging
each channel over the image gives the K-dimensional feature vector on which
the pair loss acts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["AudioFramePredictor", "ConvLSTM", "ConvLSTMCell"]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: the LSTM's input, forget, output and cell gates as convolutions.

    ``i, f, o, g = split(W_x * x + W_h * h)``; ``c' = σ(f)·c + σ(i)·tanh(g)``;
    ``h' = σ(o)·tanh(c')``. The input convolution may resample: ``scale=0.5``
    is a stride-2 convolution (down), ``scale=2`` a stride-2 transposed
    convolution (up); the recurrent convolution keeps the size.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, kernel_size: int = 3, scale: float = 1
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(
                f"kernel_size must be odd (a 'same' padding keeps the size), got {kernel_size}"
            )
        pad = kernel_size // 2
        gates = 4 * hidden_channels
        if scale == 1:
            self.input_conv = nn.Conv2d(in_channels, gates, kernel_size, padding=pad)
        elif scale == 0.5:
            self.input_conv = nn.Conv2d(in_channels, gates, kernel_size, stride=2, padding=pad)
        elif scale == 2:
            self.input_conv = nn.ConvTranspose2d(
                in_channels, gates, kernel_size, stride=2, padding=pad, output_padding=1
            )
        else:
            raise ValueError(f"scale must be 0.5, 1 or 2, got {scale}")
        self.hidden_conv = nn.Conv2d(hidden_channels, gates, kernel_size, padding=pad, bias=False)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        self.scale = scale

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}, "
            f"scale={self.scale}"
        )

    def forward(self, x, state=None):
        """One step: ``x`` ``(n, in_channels, H, W)``; returns ``h'`` and ``(h', c')``."""
        if x.ndim != 4:  # (a 3-d step would pass as one unbatched image and broadcast)
            raise ValueError(
                f"expected one step of shape (n, in_channels, H, W), got {tuple(x.shape)}"
            )
        gx = self.input_conv(x)
        if state is None:
            zeros = gx.new_zeros(gx.shape[0], self.hidden_channels, *gx.shape[-2:])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = (gx + self.hidden_conv(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvLSTM(nn.Module):
    """A ConvLSTM layer over a sequence ``(n, steps, C, H, W)``, then ReLU and batch norm.

    Returns the hidden state of every step, ``(n, steps, hidden, H', W')``, as
    the AFP paper's layers do (each ConvLSTM layer is followed by a ReLU and
    batch normalisation).
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, kernel_size: int = 3, scale: float = 1
    ):
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden_channels, kernel_size, scale)
        self.norm = nn.BatchNorm2d(hidden_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] == 0:
            raise ValueError(
                f"expected a sequence of shape (n, steps >= 1, channels, H, W), got "
                f"{tuple(x.shape)}"
            )
        state, outputs = None, []
        for t in range(x.shape[1]):
            h, state = self.cell(x[:, t], state)
            outputs.append(h)
        out = torch.stack(outputs, dim=1)
        n, steps = out.shape[:2]
        out = self.norm(torch.relu(out).flatten(0, 1))
        return out.view(n, steps, *out.shape[1:])


class AudioFramePredictor(nn.Module):
    """The AFP encoder–decoder (Meyer et al., 2017, Fig. 1).

    Layers (channels, resampling), 3×3 kernels throughout:

    - encoder: ConvLSTM 32 ↓2, ConvLSTM 64 ↓2, ConvLSTM ``code_channels`` ↓2 — the code;
    - decoder: ConvLSTM 64 ↑2, ConvLSTM 32 ↑2, ConvLSTM 32 ↑2;
    - a linear Conv3d with a 3×3×1 kernel (3×3 in frequency × time, 1 step)
      maps the last step to the predicted frame.

    Input ``(n, n_context, n_mels, frame_steps)``; ``n_mels`` and
    ``frame_steps`` need not be multiples of 8 (the prediction is cropped or
    padded back to the input size).

    ``forward`` returns ``(predicted_frame, code)``: ``(n, n_mels,
    frame_steps)`` and ``(n, code_channels, ceil(n_mels / 8), ceil(frame_steps
    / 8))`` taken at the last context step (the frames are zero-padded at the
    high end to multiples of 8 first). :meth:`features` averages the code per
    channel (the K-dimensional feature vector).
    """

    def __init__(self, code_channels: int = 128, widths: Sequence[int] = (32, 64)):
        super().__init__()
        if len(widths) != 2:
            raise ValueError(
                f"widths must hold 2 channel counts (the first two encoder layers), got {widths}"
            )
        self.code_channels = code_channels
        w1, w2 = widths
        self.encoder = nn.ModuleList(
            [
                ConvLSTM(1, w1, scale=0.5),
                ConvLSTM(w1, w2, scale=0.5),
                ConvLSTM(w2, code_channels, scale=0.5),
            ]
        )
        self.decoder = nn.ModuleList(
            [
                ConvLSTM(code_channels, w2, scale=2),
                ConvLSTM(w2, w1, scale=2),
                ConvLSTM(w1, w1, scale=2),
            ]
        )
        self.output = nn.Conv3d(w1, 1, kernel_size=(1, 3, 3), padding=(0, 1, 1))
        self.code_channels = code_channels

    @staticmethod
    def _pad8(x):
        # Three stride-2 stages need sizes divisible by 8: pad at the high end.
        h, w = x.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8
        return nn.functional.pad(x, (0, pw, 0, ph)) if ph or pw else x

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4:
            raise ValueError(
                f"expected frames of shape (n, n_context, n_mels, frame_steps), got "
                f"{tuple(frames.shape)}"
            )
        x = self._pad8(frames)[:, :, None]  # (n, steps, 1, H, W)
        for layer in self.encoder:
            x = layer(x)
        return x

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """The code at the last context step, without running the decoder."""
        return self._encode(frames)[:, -1]

    def forward(self, frames: torch.Tensor):
        h, w = frames.shape[-2:]
        x = self._encode(frames)
        code = x[:, -1]
        for layer in self.decoder:
            x = layer(x)
        # Conv3d wants (n, C, steps, H, W); the 3×3×1 kernel acts within each step.
        pred = self.output(x.transpose(1, 2))[:, 0, -1]
        return pred[..., :h, :w], code

    def features(self, code: torch.Tensor) -> torch.Tensor:
        """Per-channel average of the code: ``(n, code_channels)``."""
        return code.mean(dim=(-2, -1))

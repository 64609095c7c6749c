"""Fine-tuning: a pre-trained encoder plus a new classification layer (DLS, section 5).

Also maps torchvision-format ResNet state dicts (the paper's ImageNet
initialisation) onto an :class:`~sklaudio.nn.ESResNet` backbone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from sklaudio.nn._precision import at_least_float32, full_precision
from sklaudio.nn.convlstm import AudioFramePredictor

__all__ = [
    "SequenceEncoder",
    "SpectrogramClassifier",
    "TransferReport",
    "load_resnet_state_dict",
]


class SequenceEncoder(nn.Module):
    """An AFP frame predictor's encoder as a clip-level feature extractor.

    ``framer`` cuts each clip's spectrogram into AFP sequences
    ``(n, n_sequences, n_context + 1, n_freq, frame_steps)`` (e.g.
    :func:`sklaudio.features.frame_sequences` with fixed steps); the encoder
    reads the ``n_context`` context frames of each sequence, and the
    per-channel averages of the codes are averaged over the clip's sequences:
    ``(n, code_channels)``.

    Parameters
    ----------
    predictor : AudioFramePredictor
    framer : callable
        ``(n, n_freq, n_steps)`` spectrograms → sequences.
    n_context : int
    frontend : callable, optional
        Waveforms → spectrograms ``(n, 1, n_freq, n_steps)``, applied first.
    """

    def __init__(self, predictor: AudioFramePredictor, framer, n_context: int, frontend=None):
        super().__init__()
        self.predictor = predictor
        self.framer = framer
        self.n_context = n_context
        self.frontend = frontend
        self.out_features = predictor.code_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same as :meth:`features`."""
        return self.features(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, code_channels)``: the mean over each clip's sequences of the pooled codes."""
        if self.frontend is not None:
            with torch.no_grad():  # in the model's precision (float64 waveforms, int PCM, ...)
                x = self.frontend(x.to(next(self.predictor.parameters()).dtype))
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(
                f"expected one-channel spectrograms (n, 1, n_freq, n_steps), got {tuple(x.shape)}"
            )
        seq = self.framer(x[:, 0])
        n, n_seq = seq.shape[:2]
        context = seq[:, :, : self.n_context].reshape(n * n_seq, self.n_context, *seq.shape[3:])
        code = self.predictor.encode(context)
        return self.predictor.features(code).view(n, n_seq, -1).mean(dim=1)


class SpectrogramClassifier(nn.Module):
    """The encoder's features followed by a new linear layer: class logits.

    DLS (section 5) replaces the pre-trained network's projection by "a new
    classification layer for each dataset" and fine-tunes all layers; with
    ``freeze_encoder=True`` only the new layer learns and the encoder stays
    in evaluation mode (its batch-norm statistics are kept).

    Parameters
    ----------
    encoder : SpectrogramEncoder or SequenceEncoder
        Anything with ``features(x) -> (n, out_features)`` and ``out_features``.
    n_classes : int
    freeze_encoder : bool, default=False
    stats_stages : sequence of int, default=None
        None: the layer reads ``encoder.features`` (pooled last stage). Else
        the layer reads ``encoder.stage_statistics(x, stats_stages)`` (ESResNet
        encoders), the per-channel temporal mean and std of those stages.
    normalise_stats : bool, default=True
        With ``stats_stages``, batch-normalise the statistics (no affine
        parameters) before the layer: their scales differ by stage. A layer
        initialised by a linear probe has the scales folded into its weights
        and takes ``False``.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import SpectrogramEncoder, build_backbone
    >>> from sklaudio.nn.finetune import SpectrogramClassifier
    >>> enc = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=1), 8)
    >>> SpectrogramClassifier(enc, n_classes=5)(torch.zeros(2, 1, 32, 40)).shape
    torch.Size([2, 5])
    """

    # what a module pickled before stats_stages existed reads (it had the pooled features)
    stats_stages: tuple[int, ...] | None = None

    def __init__(
        self,
        encoder: nn.Module,
        n_classes: int,
        freeze_encoder: bool = False,
        stats_stages: Sequence[int] | None = None,
        normalise_stats: bool = True,
    ):
        super().__init__()
        self.encoder = encoder
        self.stats_stages = None if stats_stages is None else tuple(int(s) for s in stats_stages)
        if self.stats_stages is None:
            in_features = encoder.out_features
        else:
            if not hasattr(encoder, "stage_statistics"):
                raise ValueError(
                    f"stage statistics need an ESResNet spectrogram encoder, not "
                    f"{type(encoder).__name__}"
                )
            channels = encoder.backbone.stage_channels
            in_features = 2 * sum(channels[s - 1] for s in self.stats_stages)
            norm = nn.BatchNorm1d(in_features, affine=False) if normalise_stats else nn.Identity()
            self.stats_norm = norm
        self.head = nn.Linear(in_features, n_classes)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            encoder.requires_grad_(False)
        # What ``features`` never runs (the NPID projection the head replaces, the AFP
        # decoder) gets no gradient: frozen, so that data-parallel training accepts it.
        unused = [getattr(encoder, "projection", None)]
        predictor = getattr(encoder, "predictor", None)
        if predictor is not None:
            unused += [predictor.decoder, predictor.output]
        if self.stats_stages is not None:  # no pooling attention, no stage past the last read
            backbone = encoder.backbone
            unused.append(getattr(backbone, "att5", None))
            for stage in range(max(self.stats_stages) + 1, 5):
                unused += [
                    getattr(backbone, f"layer{stage}"),
                    getattr(backbone, f"att{stage}", None),
                ]
        for module in unused:
            if module is not None:
                module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
            augment = getattr(self.encoder, "augment", None)
            if augment is not None:
                augment.train(mode)  # augmentation still applies while training
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the new layer reads: pooled features, or the (normalised) stage statistics."""
        if self.stats_stages is None:
            return at_least_float32(self.encoder.features(x))
        return self.stats_norm(
            at_least_float32(self.encoder.stage_statistics(x, self.stats_stages))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        # float32 even under autocast: a probed layer's weights and bias cancel in large terms
        with full_precision(x.device):
            return self.head(at_least_float32(features))


@dataclass
class TransferReport:
    """What :func:`load_resnet_state_dict` did with each key."""

    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # conv1 summed over RGB for 1-channel input
    missing: list[str] = field(default_factory=list)  # in the backbone, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the backbone
    mismatched: list[str] = field(default_factory=list)  # same name, other shape

    def summary(self) -> str:
        def head(names):
            return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")

        parts = [f"{len(self.loaded)} tensors loaded"]
        if self.adapted:
            parts.append(f"{len(self.adapted)} adapted ({head(self.adapted)})")
        for name in ("missing", "unexpected", "mismatched"):
            names = getattr(self, name)
            if names:
                parts.append(f"{len(names)} {name} ({head(names)})")
        return "; ".join(parts)


def _unwrap_state_dict(state) -> dict:
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            "expected a state dict (a mapping of parameter names to tensors), got "
            f"{type(state).__name__}"
        )
    # checkpoints written from DataParallel / DistributedDataParallel prefix every key
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if "conv1.weight" not in state:
        # a training framework's checkpoint (Lightning's 'model.', a wrapper's 'backbone.')
        # prefixes every key of the ResNet: the prefix of its first convolution, if all share it
        prefix = next(
            (
                k[: -len("conv1.weight")]
                for k in state
                if k.endswith(".conv1.weight") and not re.search(r"layer\d+\.\d+\.conv1\.", k)
            ),
            None,
        )
        if prefix and all(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def _resnet_kind(state) -> str:
    """What ResNet a torchvision-format state dict holds, and the backbone that fits it."""
    from sklaudio.nn.esresnet import BACKBONES, Bottleneck

    blocks, widths = [], []
    for stage in range(1, 5):
        names = {k.split(".")[1] for k in state if k.startswith(f"layer{stage}.")}
        first = state.get(f"layer{stage}.0.conv1.weight")
        if not names or first is None or first.ndim != 4:
            return "it is not a ResNet of four stages"
        blocks.append(len(names))
        widths.append(int(first.shape[0]))
    bottleneck = any(k.startswith("layer1.0.conv3.") for k in state)
    kind = "bottleneck" if bottleneck else "basic"
    for name, (block, layers, channels) in BACKBONES.items():
        if (block is Bottleneck) == bottleneck and (
            (tuple(layers), tuple(channels)) == (tuple(blocks), tuple(widths))
        ):
            return f"it holds a ResNet of {kind} blocks {tuple(blocks)}, so use backbone={name!r}"
    return (
        f"it holds a ResNet of {kind} blocks {tuple(blocks)}, widths {tuple(widths)}, which "
        "no backbone has (torchvision's resnet18 and resnet50 fit 'esresnet18' and "
        "'esresnet50')"
    )


def load_resnet_state_dict(backbone: nn.Module, state) -> TransferReport:
    """Copy a torchvision-format ResNet state dict into an ESResNet backbone.

    ESResNet keeps torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv1``,
    ...), so ResNet weights map by name. The attention blocks (``att1``–``att5``)
    have no ImageNet counterpart and keep their initialisation; ``fc`` is
    dropped (a new classification layer replaces it). A 1-channel backbone
    receives ``conv1`` summed over the three RGB input channels.

    Parameters
    ----------
    backbone : ESResNet
    state : dict of str to Tensor
        Optionally wrapped as ``{'state_dict': ...}``; ``module.`` prefixes are
        removed.

    Returns
    -------
    TransferReport

    Raises
    ------
    ValueError
        ``state`` is not a state dict, none of its tensors fits the backbone, or
        tensors of the body differ in shape (a ResNet of another depth or width;
        the message names the backbone that fits). Only ``conv1`` may differ
        (an input of another channel count): it is reported and left as it is.
    """
    state = _unwrap_state_dict(state)
    own = backbone.state_dict()
    report = TransferReport()
    update = {}
    for name, tensor in state.items():
        if name not in own:
            report.unexpected.append(name)
            continue
        target = own[name]
        if tensor.shape == target.shape:
            update[name] = tensor
            report.loaded.append(name)
        elif (
            name == "conv1.weight"
            and tensor.ndim == 4
            and tensor.shape[1] == 3
            and target.shape[1] == 1
            and tensor.shape[0] == target.shape[0]
            and tensor.shape[2:] == target.shape[2:]
        ):
            update[name] = tensor.sum(dim=1, keepdim=True)
            report.adapted.append(name)
        else:
            report.mismatched.append(f"{name} {tuple(tensor.shape)}→{tuple(target.shape)}")
    report.missing = [name for name in own if name not in state]
    # the residual stages must match one to one: a tensor of another shape, or blocks the
    # backbone lacks or has more of, mean another depth or width (conv1 alone may differ:
    # an input of another channel count keeps the rest)
    in_body = re.compile(r"layer\d+\.").match
    differ = {
        "of another shape": [m for m in report.mismatched if not m.startswith("conv1.weight ")],
        "the backbone lacks": [k for k in report.unexpected if in_body(k)],
        "missing": [k for k in report.missing if in_body(k)],
    }
    body = ", ".join(f"{len(v)} {what}" for what, v in differ.items() if v)
    if body or not any(tensor.ndim > 0 for tensor in update.values()):  # not just BN counters
        what = f"tensors of its residual stages: {body}" if body else "no tensor fits"
        raise ValueError(
            f"the state dict does not fit the backbone ({what}): {_resnet_kind(state)}; "
            f"{report.summary()}"
        )
    with torch.no_grad():
        for name, tensor in update.items():
            own[name].copy_(tensor.to(own[name].dtype))
    return report

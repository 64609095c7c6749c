"""Non-parametric instance discrimination (Wu et al., 2018), as used by DLS.

Each training clip is its own class. A memory bank keeps one unit embedding
per clip; the probability that embedding ``v`` is clip ``i`` is the
non-parametric softmax of Eq. 1 of the DLS paper,
``P(i|v) = exp(v_i·v / τ) / Σ_j exp(v_j·v / τ)``, approximated by noise
contrastive estimation (NCE) with ``K`` uniformly drawn negatives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sklaudio._checks import is_int
from sklaudio.nn._precision import at_least_float32, full_precision

__all__ = [
    "MemoryBank",
    "NPIDLoss",
    "SpectrogramEncoder",
    "estimate_nce_z",
    "instance_softmax_loss",
    "nce_loss",
]


class SpectrogramEncoder(nn.Module):
    """Backbone + linear projection to unit-length embeddings.

    ESResNet reads one 3-band image per audio channel: the input's channels
    are split into groups of ``backbone.in_channels``, each group goes through
    the same backbone, and the features of the groups are summed before the
    projection.

    Parameters
    ----------
    backbone : nn.Module
        Maps ``(n, in_channels, F, T)`` to ``(n, out_features)``; must expose
        ``in_channels`` and ``out_features``.
    embedding_dim : int
        Size of the L2-normalised output.
    frontend : callable, optional
        Applied to the input first (waveforms → spectrograms on the device).
    augment : nn.Module, optional
        Applied to the spectrograms in training mode only.
    n_freq : int, optional
        When given, each frequency bin is standardised by batch norm (over
        clips, channels and frames) before the backbone, so that quiet high
        bands weigh as much as loud low ones.
    """

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int = 128,
        frontend=None,
        augment: nn.Module | None = None,
        n_freq: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Linear(backbone.out_features, embedding_dim)
        self.frontend = frontend
        self.augment = augment
        self.input_norm = None if n_freq is None else nn.BatchNorm2d(n_freq)

    @property
    def out_features(self) -> int:
        """Size of :meth:`features` (the backbone's pooled output)."""
        return self.backbone.out_features

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        if self.frontend is not None:
            with torch.no_grad():  # in the model's precision (float64 waveforms, int PCM, ...)
                x = self.frontend(x.to(self.projection.weight.dtype))
        if self.augment is not None and self.training:
            x = self.augment(x)
        if self.input_norm is not None:
            x = self.input_norm(x.transpose(1, 2)).transpose(1, 2)
        return x

    def _groups(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Spectrograms as ``(n · groups, in_channels, F, T)`` backbone images, and ``groups``."""
        x = self.spectrogram(x)
        group = self.backbone.in_channels
        n, channels = x.shape[:2]
        if channels % group:
            raise ValueError(
                f"input has {channels} channels, not a multiple of the backbone's "
                f"{group} input channels"
            )
        return x.reshape(n * (channels // group), group, *x.shape[2:]), channels // group

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(n, out_features)`` summed over channel groups."""
        images, groups = self._groups(x)
        feats = self.backbone(images)
        return feats.view(-1, groups, feats.shape[1]).sum(dim=1)

    def stage_statistics(self, x: torch.Tensor, stages: Sequence[int] = (2, 3, 4)) -> torch.Tensor:
        """Temporal statistics of intermediate stages, summed over channel groups.

        For each stage in ``stages`` (1–4) of the backbone, the stage's map is
        averaged over frequency, then its mean and standard deviation over time
        are taken per channel: ``(n, 2 · sum(channels of the stages))``, stage
        by stage in the order of ``stages``, each stage's means then its stds.
        The backbone must expose ``stage_maps`` (ESResNet does). Computed in
        float32 even under autocast: bf16 would keep ~3 significant digits of
        statistics that a scaler later magnifies.
        """
        stages = tuple(stages)
        if not stages or not all(is_int(s) and 1 <= s <= 4 for s in stages):
            raise ValueError(f"stages must name stages 1 to 4 of the backbone, got {stages}")
        images, groups = self._groups(x)
        maps = self.backbone.stage_maps(images, last=max(stages))  # no later stage runs
        stats = []
        for stage in stages:
            over_time = at_least_float32(maps[stage - 1]).mean(dim=2)
            stats += [over_time.mean(dim=-1), over_time.std(dim=-1, correction=0)]
        out = torch.cat(stats, dim=1)
        return out.view(-1, groups, out.shape[1]).sum(dim=1)

    def forward(
        self, x: torch.Tensor, output: str = "embedding", stages: Sequence[int] = (2, 3, 4)
    ) -> torch.Tensor:
        """``output='embedding'``: unit vectors; ``'features'``: :meth:`features`;
        ``'stats'``: :meth:`stage_statistics` of ``stages``."""
        # float32 under autocast (half precision upcast), float64 kept
        if output == "features":
            return at_least_float32(self.features(x))
        if output == "stats":
            return at_least_float32(self.stage_statistics(x, stages))
        if output != "embedding":
            raise ValueError(f"output must be 'embedding', 'features' or 'stats', got {output!r}")
        return F.normalize(at_least_float32(self.projection(self.features(x))), dim=1)


class MemoryBank(nn.Module):
    """One unit-length embedding per training sample, updated with momentum.

    Buffers (saved with the module and moved by ``.to(device)``):
    ``memory`` ``(n_samples, dim)`` and ``nce_z``, NCE's normalisation constant
    (``-1`` until estimated on the first batch).

    Parameters
    ----------
    n_samples, dim : int
    momentum : float
        ``m`` in ``v ← normalise(m·v + (1−m)·f)``; NPID and DLS use 0.5.
    generator : torch.Generator, optional
        Seeds the random unit initialisation.
    """

    def __init__(self, n_samples: int, dim: int, momentum: float = 0.5, generator=None):
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if n_samples < 1 or dim < 1:
            raise ValueError(f"n_samples and dim must be >= 1, got {n_samples} and {dim}")
        self.momentum = momentum
        init = torch.randn(n_samples, dim, generator=generator)
        self.register_buffer("memory", F.normalize(init, dim=1))
        self.register_buffer("nce_z", torch.tensor(-1.0))

    @property
    def n_samples(self) -> int:
        return self.memory.shape[0]

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """``memory[i] ← normalise(m·memory[i] + (1−m)·f)`` for each (i, f)."""
        features = features.detach().to(self.memory.dtype)
        mixed = self.memory[indices] * self.momentum + features * (1 - self.momentum)
        self.memory[indices] = F.normalize(mixed, dim=1)

    def sample(self, n: int, k: int, generator=None) -> torch.Tensor:
        """``(n, k)`` uniformly drawn indices of negatives."""
        return torch.randint(self.n_samples, (n, k), generator=generator, device=self.memory.device)

    def nce_logits(self, features, indices, negatives, temperature):
        """``(n, 1 + K)`` scores ``v_j·f / τ``; column 0 is the positive ``j = indices``.

        In the memory's precision (float32) even under autocast: the scores feed
        ``exp`` and NCE's normalisation constant."""
        candidates = torch.cat([indices[:, None], negatives], dim=1)
        weights = self.memory[candidates]  # (n, 1 + K, dim), a copy: safe to update later
        with full_precision(weights.device):
            return torch.einsum("nkd,nd->nk", weights, features.to(weights.dtype)) / temperature

    def extra_repr(self) -> str:
        return f"n_samples={self.n_samples}, dim={self.memory.shape[1]}, momentum={self.momentum}"


def estimate_nce_z(logits: torch.Tensor, n_data: int) -> torch.Tensor:
    """NPID's normalisation constant: ``Z ≈ n · mean(exp(scores))`` over a batch.

    Computed in log space; a ``Z`` beyond float32's range (scores of about 80 or
    more: a temperature under ~0.012 for unit vectors) raises a ``ValueError``.
    """
    logits = at_least_float32(logits.detach())
    log_z = torch.logsumexp(logits.flatten(), dim=0) - math.log(logits.numel()) + math.log(n_data)
    z = torch.exp(log_z)
    _check_z(z, logits)
    return z


def _check_z(z: torch.Tensor, logits: torch.Tensor) -> None:
    if not torch.isfinite(logits).all():  # not the temperature: the embeddings themselves
        raise ValueError(
            "NCE's scores (similarity / temperature) are not finite: the batch's embeddings "
            "hold NaN or inf, usually from the input (spectrograms that hold inf, or "
            "waveforms far outside [-1, 1]), else from a learning rate that made the "
            "weights diverge"
        )
    if not torch.isfinite(z):
        raise ValueError(
            f"NCE's normalisation constant overflows {str(z.dtype).removeprefix('torch.')}: "
            f"the scores (similarity / temperature) reach {float(logits.max()):.0f}; raise the "
            "temperature (nce_t; NPID uses 0.07, DLS 0.4)"
        )


def nce_loss(logits: torch.Tensor, n_data: int, z: torch.Tensor | float) -> torch.Tensor:
    """NCE loss of NPID (Wu et al., 2018, Eq. 6–7) from ``(n, 1 + K)`` scores.

    With ``P(i|v) = exp(score) / Z`` and the noise distribution uniform,
    ``P_n = 1 / n_data``, the positive (column 0) is classified as data with
    probability ``P / (P + K·P_n)`` and each negative as noise with
    ``K·P_n / (P + K·P_n)``; the loss is the negative log-likelihood summed
    over the ``1 + K`` columns and averaged over the batch.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import nce_loss
    >>> logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 5.0]])
    >>> good, bad = nce_loss(logits[:1], 100, 1.0), nce_loss(logits[1:], 100, 1.0)
    >>> bool(good < bad)
    True
    """
    k = logits.shape[1] - 1
    if k < 1:
        raise ValueError(f"logits need a positive and at least one negative column, got {k + 1}")
    # in log space (float32 at least): exp(score) / Z overflows for small temperatures
    with full_precision(logits.device):
        logits = at_least_float32(logits)
        log_p = logits - torch.log(torch.as_tensor(z, dtype=logits.dtype, device=logits.device))
        log_noise = torch.full_like(log_p[:, :1], math.log(k / n_data))
        log_data = log_p[:, 0:1] - torch.logaddexp(log_p[:, 0:1], log_noise)
        log_is_noise = log_noise - torch.logaddexp(log_p[:, 1:], log_noise)
        return -(log_data.sum() + log_is_noise.sum()) / logits.shape[0]


def instance_softmax_loss(
    features: torch.Tensor, memory: torch.Tensor, indices: torch.Tensor, temperature: float
) -> torch.Tensor:
    """The exact non-parametric softmax of Eq. 1 (DLS), as cross-entropy over all clips.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import instance_softmax_loss
    >>> memory = torch.eye(3)
    >>> float(instance_softmax_loss(memory[:2], memory, torch.tensor([0, 1]), 0.1)) < 1e-3
    True
    """
    with full_precision(memory.device):
        logits = features.to(memory.dtype) @ memory.T / temperature
        return F.cross_entropy(logits, indices)


class NPIDLoss(nn.Module):
    """Instance-discrimination loss against a :class:`MemoryBank`.

    ``loss='nce'`` draws ``nce_k`` uniform negatives per sample and applies
    :func:`nce_loss`, estimating ``Z`` on the first batch it sees (stored in
    the bank's ``nce_z``); ``loss='softmax'`` is the exact softmax of Eq. 1
    over every clip (:func:`instance_softmax_loss`), affordable for small
    datasets.
    """

    def __init__(self, nce_k: int = 64, nce_t: float = 0.4, loss: str = "nce"):
        super().__init__()
        if loss not in ("nce", "softmax"):
            raise ValueError(f"loss must be 'nce' or 'softmax', got {loss!r}")
        if not is_int(nce_k) or nce_k < 1:
            raise ValueError(f"nce_k must be a positive integer, got {nce_k!r}")
        if isinstance(nce_t, bool) or not 0 < nce_t < math.inf:
            raise ValueError(f"nce_t must be a finite positive number, got {nce_t!r}")
        self.nce_k = nce_k
        self.nce_t = nce_t
        self.loss = loss

    def extra_repr(self) -> str:
        return f"nce_k={self.nce_k}, nce_t={self.nce_t}, loss={self.loss!r}"

    def forward(self, features, indices, bank: MemoryBank, generator=None):
        """The loss of ``(n, dim)`` unit ``features`` of the clips ``indices``.

        Update the bank (:meth:`MemoryBank.update`) after ``backward``: the exact
        softmax reads the bank itself, which an update before would modify in place.
        """
        indices = indices.to(bank.memory.device).long()
        if self.loss == "softmax":
            return instance_softmax_loss(features, bank.memory, indices, self.nce_t)
        negatives = bank.sample(indices.shape[0], self.nce_k, generator)
        logits = bank.nce_logits(features, indices, negatives, self.nce_t)
        if bank.nce_z < 0:
            bank.nce_z.copy_(estimate_nce_z(logits, bank.n_samples))
            _check_z(bank.nce_z, logits)  # (in the bank's precision)
        return nce_loss(logits, bank.n_samples, bank.nce_z)

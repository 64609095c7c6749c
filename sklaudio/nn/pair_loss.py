"""The AFP pair loss on feature distributions (Meyer et al., 2017, Eqs. 1–2)."""

from __future__ import annotations

import math

import torch

from sklaudio.nn._precision import at_least_float32, full_precision

__all__ = ["pair_kl_matrix", "pair_loss", "similar_pair_fraction"]


def pair_kl_matrix(distributions: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``KL(B_n ‖ B_m)`` for every pair of rows of ``(N, K)`` distributions → ``(N, N)``.

    Computed in float32 at least, even under autocast (the KLs are differences of
    terms near ``log K``; bfloat16 would leave mostly rounding), and never below 0.
    ``eps`` floors the probabilities inside the logarithm.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import pair_kl_matrix
    >>> kl = pair_kl_matrix(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    >>> round(float(kl[0, 1]), 4), float(kl[0, 0])
    (0.5108, 0.0)
    """
    with full_precision(distributions.device):
        b = at_least_float32(distributions)
        log_b = torch.log(b.clamp_min(eps))
        # KL(n‖m) = Σ_k B_nk log B_nk − Σ_k B_nk log B_mk
        entropy_term = (b * log_b).sum(dim=1, keepdim=True)
        return (entropy_term - b @ log_b.T).clamp_min(0)


def pair_loss(distributions: torch.Tensor, threshold: float, margin: float) -> torch.Tensor:
    """Pull similar pairs together, push dissimilar ones ``margin`` apart (Eqs. 1–2).

    With ``f(n, m) = KL(B_n‖B_m) / mean_{o,p} KL(B_o‖B_p)`` (Eq. 2), each pair
    contributes ``KL`` when ``f < threshold`` and ``max(0, margin − KL)``
    otherwise (Eq. 1); the loss is the sum over all ``N²`` ordered pairs. The
    similarity test ``f`` is not differentiated through.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import pair_loss
    >>> B = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> float(pair_loss(B, threshold=0.5, margin=1.0)) > 0
    True
    """
    return _pair_loss_terms(distributions, threshold, margin)[0]


def _pair_loss_terms(distributions: torch.Tensor, threshold: float, margin: float):
    """:func:`pair_loss` and the ``(N, N)`` boolean mask of the pairs it calls similar."""
    _check_positive(threshold=threshold, margin=margin)
    kl = pair_kl_matrix(distributions)
    similar = _similar(kl, threshold)
    return torch.where(similar, kl, torch.relu(margin - kl)).sum(), similar


def _check_positive(**values) -> None:
    for name, value in values.items():
        try:
            ok = not isinstance(value, bool) and math.isfinite(value) and value > 0
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@torch.no_grad()
def _similar(kl: torch.Tensor, threshold: float) -> torch.Tensor:
    """Eq. 2's test ``f(n, m) = KL / mean KL < threshold``, not differentiated through."""
    return kl / kl.mean().clamp_min(1e-12) < threshold


def _distinct_pair_fraction(mask: torch.Tensor) -> float:
    """Fraction of the off-diagonal entries of a square boolean mask that are True."""
    n = mask.shape[0]
    if n < 2:
        return 0.0
    return float(mask.sum() - mask.diagonal().sum()) / (n * (n - 1))


@torch.no_grad()
def similar_pair_fraction(distributions: torch.Tensor, threshold: float) -> float:
    """Fraction of pairs of distinct rows that :func:`pair_loss` treats as similar.

    The diagnostic for choosing ``threshold``: ``f < threshold`` pulls a
    pair together, so this fraction should be near the share of pairs that
    truly belong together — about ``1 / n_classes`` for a batch drawn from
    ``n_classes`` balanced classes. With ``threshold=1`` (the mean KL) it is
    usually over one half, because the KLs of a batch are skewed: most pairs
    lie below their mean.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import similar_pair_fraction
    >>> B = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> similar_pair_fraction(B, threshold=0.5)  # only the identical pair (both orders)
    0.3333333333333333
    """
    _check_positive(threshold=threshold)
    return _distinct_pair_fraction(_similar(pair_kl_matrix(distributions), threshold))

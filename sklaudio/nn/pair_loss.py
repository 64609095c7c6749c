"""The AFP pair loss on feature distributions (Meyer et al., 2017, Eqs. 1–2)."""

from __future__ import annotations

import torch

__all__ = ["pair_kl_matrix", "pair_loss"]


def pair_kl_matrix(distributions: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``KL(B_n ‖ B_m)`` for every pair of rows of ``(N, K)`` distributions → ``(N, N)``.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import pair_kl_matrix
    >>> kl = pair_kl_matrix(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    >>> round(float(kl[0, 1]), 4), float(kl[0, 0])
    (0.5108, 0.0)
    """
    log_b = torch.log(distributions.clamp_min(eps))
    # KL(n‖m) = Σ_k B_nk log B_nk − Σ_k B_nk log B_mk
    entropy_term = (distributions * log_b).sum(dim=1, keepdim=True)
    return entropy_term - distributions @ log_b.T


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
    if threshold <= 0 or margin <= 0:
        raise ValueError(f"threshold and margin must be > 0, got {threshold} and {margin}")
    kl = pair_kl_matrix(distributions)
    with torch.no_grad():
        f = kl / kl.mean().clamp_min(1e-12)
    similar = f < threshold
    return torch.where(similar, kl, torch.relu(margin - kl)).sum()

"""The regularisers of paper 003 (section 3.4, Eq. 7-10), term by term, on the spatial masks and the temporal
attention weights of :class:`~actx.models.where_when.head.WhereWhenHead`.

    L = L_CE + lambda_TV L_TV + lambda_contrast L_contrast + lambda_unimodal L_unimodal          (003 Eq. 7)

Every term is summed over the frames of one video as the paper writes it and averaged over the batch.

Where the authors' public code differs (read for facts, not copied): it takes a square root of each unimodality
hinge (``variant="authors"`` here); the paper's Eq. 10 has none (``variant="paper"``, the default).
"""

from __future__ import annotations

import torch

UNIMODAL_VARIANTS = ("paper", "authors")
# Binarisation threshold of the contrast term (003 Eq. 9: B_i = 1{M_i > 0.5}).
CONTRAST_THRESHOLD = 0.5


def total_variation(masks: torch.Tensor) -> torch.Tensor:
    """003 Eq. 8, L1 total variation: sum_i sum_{j,k} |M_i[j+1,k] - M_i[j,k]| + |M_i[j,k+1] - M_i[j,k]|.

    masks (B, n, h, w) in [0, 1] -> scalar, the per-video sum averaged over the batch."""
    _check(masks, 4, "masks")
    rows = (masks[:, :, 1:, :] - masks[:, :, :-1, :]).abs().sum((1, 2, 3))  # (B,)
    cols = (masks[:, :, :, 1:] - masks[:, :, :, :-1]).abs().sum((1, 2, 3))  # (B,)
    return (rows + cols).mean()


def contrast(masks: torch.Tensor) -> torch.Tensor:
    """003 Eq. 9: sum_i mean_{j,k}(-1/2 M_i * B_i + 1/2 M_i * (1 - B_i)) with B_i = 1{M_i > 0.5}.

    The paper writes the element-wise products without saying how a map becomes a number; we take the mean over
    the cells (so the term does not grow with the grid), summed over the frames as Eq. 9 sums. Low where the mask
    is confident: cells above 0.5 are rewarded, cells below are penalised by their value. No gradient flows
    through B (an indicator).

    masks (B, n, h, w) -> scalar (batch mean)."""
    _check(masks, 4, "masks")
    b = (masks > CONTRAST_THRESHOLD).to(masks.dtype)  # (B, n, h, w)
    per_cell = -0.5 * masks * b + 0.5 * masks * (1 - b)
    return per_cell.mean((2, 3)).sum(1).mean()


def unimodality(weights: torch.Tensor, variant: str = "paper") -> torch.Tensor:
    """003 Eq. 10 (appendix A, Eq. 11): sum_t sum_{i=2}^{n-1} max(0, w_{t,i-1} w_{t,i+1} - w_{t,i}^2), a
    log-concavity hinge that is zero for every log-concave (hence unimodal) sequence of weights.

    weights (B, T, n) attention over n frames at each of T steps -> scalar (batch mean).
    variant "paper": Eq. 10 as printed; "authors": the square root of each hinge, as in the authors' public code
    (a hinge of 0 contributes 0 and no gradient)."""
    _check(weights, 3, "weights")
    if variant not in UNIMODAL_VARIANTS:
        raise ValueError(f"unimodality variant must be one of {UNIMODAL_VARIANTS}, got {variant!r}")
    if weights.shape[2] < 3:
        return weights.new_zeros(())
    hinge = (weights[:, :, :-2] * weights[:, :, 2:] - weights[:, :, 1:-1] ** 2).clamp_min(0)  # (B, T, n-2)
    if variant == "authors":
        positive = hinge > 0
        hinge = torch.where(positive, hinge, torch.ones_like(hinge)).sqrt() * positive  # sqrt'(0) never taken
    return hinge.sum((1, 2)).mean()


def _check(x: torch.Tensor, dims: int, name: str) -> None:
    if x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(x.shape)}")

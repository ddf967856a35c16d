"""The losses of ActX that compare weakly-aligned feature maps (paper 000, section 3.2, Eq. 3 and 4).

For every voxel x_i of the action sample X, two pooled vectors are compared: eta(x_i, X), "the amount of x_i
in X", and eta(x_i, Z), "the amount of x_i in the conjugate Z" (ActX Eq. 2, :func:`actx.ops.eta`). An action
voxel should be absent from Z (their cosine low), a context voxel present (their cosine high):

    L_sim(X, Z)  = sum_i s_i max(0, cos_i - xi) / sum_i s_i        (ActX Eq. 3)
    L_diff(X, Z) = sum_i c_i (1 - cos_i)       / sum_i c_i         (ActX Eq. 4)

with cos_i = cos(eta(x_i, X), eta(x_i, Z)). Both are computed per sample and averaged over the batch; padded
voxels (``x_mask`` / ``z_mask`` False) take no part. The per-voxel cosines are shared by both losses, so
:func:`cross_video_cosine` is public and the ``*_from_cos`` forms let a training objective compute it once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from actx.ops import ETA_CHUNK, eta_cosine


def _check_weights(x: torch.Tensor, w: torch.Tensor) -> None:
    """The voxel weights must be (B, N) like x's rows (x, z and the masks are checked by ops.eta_cosine)."""
    if x.dim() == 3 and w.shape != x.shape[:2]:
        raise ValueError(f"the voxel weights must be (B, N) = {tuple(x.shape[:2])}, got {tuple(w.shape)}")


def cross_video_cosine(x: torch.Tensor, z: torch.Tensor, gamma: float, x_mask: torch.Tensor | None = None,
                       z_mask: torch.Tensor | None = None, chunk: int | None = ETA_CHUNK) -> torch.Tensor:
    """cos(eta(x_i, X), eta(x_i, Z)) for every voxel x_i of X (ActX Eq. 2-4): x (B, N, D), z (B, M, D) ->
    (B, N), computed by :func:`actx.ops.eta_cosine`.

    Padded rows of x give 0 and are never attended to; padded rows of z are never attended to.
    """
    return eta_cosine(x, z, gamma, x_mask, z_mask, chunk)


def weighted_voxel_mean(values: torch.Tensor, weights: torch.Tensor, x_mask: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """sum_i w_i v_i / sum_i w_i per sample (the normalisation of ActX Eq. 3, 4, 6): (B, N), (B, N) -> (B,).

    A sample whose weights are all 0 gives 0 (the denominator is floored at the dtype's smallest normal
    number, so tiny but real weights keep their exact ratio).
    """
    if x_mask is not None:
        weights = weights * x_mask
        values = torch.where(x_mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    total = weights.sum(1)  # (B,)
    return (weights * values).sum(1) / total.clamp_min(torch.finfo(total.dtype).tiny)


def similarity_loss_from_cos(cos: torch.Tensor, s: torch.Tensor, xi: float,
                             x_mask: torch.Tensor | None = None) -> torch.Tensor:
    """ActX Eq. 3 from per-voxel cosines: batch mean of sum_i s_i max(0, cos_i - xi) / sum_i s_i."""
    return weighted_voxel_mean(F.relu(cos - xi), s, x_mask).mean()


def difference_loss_from_cos(cos: torch.Tensor, c: torch.Tensor, x_mask: torch.Tensor | None = None
                             ) -> torch.Tensor:
    """ActX Eq. 4 from per-voxel cosines: batch mean of sum_i c_i (1 - cos_i) / sum_i c_i."""
    return weighted_voxel_mean(1.0 - cos, c, x_mask).mean()


def action_similarity_loss(x: torch.Tensor, z: torch.Tensor, s: torch.Tensor, gamma: float, xi: float,
                           x_mask: torch.Tensor | None = None, z_mask: torch.Tensor | None = None,
                           chunk: int | None = ETA_CHUNK) -> torch.Tensor:
    """L^action_sim (ActX Eq. 3), batch mean: penalise action voxels of X that are also found in Z.

    x: (B, N, D) action-sample voxels, z: (B, M, D) conjugate voxels, s: (B, N) action map S (any non-negative
    scale: Eq. 3 divides by sum_i s_i), gamma: the sharpness of Eq. 2, xi: the margin of sim(u, v) =
    max(0, cos(u, v) - xi). Masks (B, N) / (B, M) are True where a voxel is real.
    """
    _check_weights(x, s)
    return similarity_loss_from_cos(cross_video_cosine(x, z, gamma, x_mask, z_mask, chunk), s, xi, x_mask)


def context_difference_loss(x: torch.Tensor, z: torch.Tensor, c: torch.Tensor, gamma: float,
                            x_mask: torch.Tensor | None = None, z_mask: torch.Tensor | None = None,
                            chunk: int | None = ETA_CHUNK) -> torch.Tensor:
    """L^context_diff (ActX Eq. 4), batch mean: penalise context voxels of X that are missing from Z.

    Same arguments as :func:`action_similarity_loss`, with c: (B, N) the context map C and diff(u, v) =
    1 - cos(u, v).
    """
    _check_weights(x, c)
    return difference_loss_from_cos(cross_video_cosine(x, z, gamma, x_mask, z_mask, chunk), c, x_mask)

"""What several heads share: mask-aware pooling of backbone maps, uniform maps for heads without attention, the
classification loss and the classification-only objective.

- :func:`masked_average`, :func:`spatial_average_sequence`, :func:`uniform_maps`  pooling (f: (B, D, T, H, W))
- :func:`classification_loss`, :func:`classification_objective`                 L_class of ActX Eq. 1
"""

from __future__ import annotations

import torch
import torch.nn as nn

from actx import ops


def masked_average(f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Global average over the real voxels of a (B, D, T, H, W) map: (B, D)."""
    mask = ops.time_mask(f, mask)
    f = ops.zero_padding(f, mask)
    n = mask.sum(1, keepdim=True).to(f.dtype) * f.shape[3] * f.shape[4]  # (B, 1) real voxels
    return f.sum((2, 3, 4)) / n  # (B, D)


def spatial_average_sequence(f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-time-step spatial averages of a (B, D, T, H, W) map: (B, T, D), 0 at padded steps (EEP's input)."""
    mask = ops.time_mask(f, mask)
    return ops.zero_padding(f, mask).mean((3, 4)).transpose(1, 2)  # (B, T, D)


def uniform_maps(f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Uniform "S" (unit sum over real voxels) and "C" (1 on real voxels), both (B, T, H, W), 0 at padding."""
    mask = ops.time_mask(f, mask)
    b, _, t, h, w = f.shape
    m = mask[:, :, None, None].expand(b, t, h, w).to(f.dtype)  # (B, T, H, W)
    return {"S": m / m.sum((1, 2, 3), keepdim=True), "C": m}

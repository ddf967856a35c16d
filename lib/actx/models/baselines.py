"""The I3D baseline of ActX Table 1: global average pooling of the backbone map and a linear classifier.

"I3D refers to the baseline approach, where the I3D feature vectors are averaged over the entire video"
(ActX section 4.1.3). The pooling is mask-aware: padded time steps take no part. It has no attention, so it
returns uniform maps: S is 1 / (number of real voxels) on every real voxel (unit sum, like ActX's S_att) and C
is 1 on every real voxel; grounding metrics then score it as chance (the actor's area fraction).
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


class AvgPoolHead(nn.Module):
    """Global (mask-aware) average pooling and one linear layer: the "I3D" baseline of ActX Table 1.

    forward(f (B, D, T, H, W), mask (B, T)) -> {"logits" (B, C), "pooled" (B, D), "S", "C" uniform (B, T, H,
    W)}.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        pooled = masked_average(f, mask)  # (B, D)
        return {"logits": self.classifier(pooled), "pooled": pooled, **uniform_maps(f, mask)}

    def sequence(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-time-step spatial averages (B, T, D): the input of EEP on top of this baseline."""
        return spatial_average_sequence(f, mask)

"""The I3D baseline of ActX Table 1: global average pooling of the backbone map and a linear classifier.

"I3D refers to the baseline approach, where the I3D feature vectors are averaged over the entire video"
(ActX section 4.1.3). The pooling is mask-aware: padded time steps take no part. It has no attention, so it
returns uniform maps: S is 1 / (number of real voxels) on every real voxel (unit sum, like ActX's S_att) and C
is 1 on every real voxel; grounding metrics then score it as chance (the actor's area fraction).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from actx.models.classify import classification_builder
from actx.models.pooling import masked_average, spatial_average_sequence, uniform_maps

# No open values: the baseline has only its linear classifier.
PARAMS: dict = {}
WHY: dict = {}


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


def build_head(in_channels: int, num_classes: int, params: dict, base=None) -> AvgPoolHead:
    return AvgPoolHead(in_channels, num_classes)


build_objective = classification_builder  # classification only

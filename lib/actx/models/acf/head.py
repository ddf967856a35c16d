"""Action-context factorization (ACF, Wang and Hoai, CVPR 2018 "Pulling actions out of context"), the
"ACF-I3D" baseline of ActX Table 1: the ActX losses' idea on globally pooled vectors with cosine distance
(ActX 4.1.3).

The backbone map is average-pooled (mask-aware) to one vector; two small projections turn it into an action
feature and a context feature; one linear classifier reads both. The training objective
(:func:`actx.models.acf.acf_objective`) pulls the action features of a sample and its conjugate apart
(max(0, cos - xi), the hinge of ActX Eq. 3 on whole vectors) and their context features together (1 - cos, as
in ActX Eq. 4). Pooling removes all locality, so the maps it returns are uniform (see
:func:`actx.models.pooling.uniform_maps`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from actx.models.pooling import masked_average, uniform_maps

# Width of each branch's projection. 256 keeps both branches (2 x 257 D parameters: 0.66 M at D = 1280, 14 %
# of EfficientNet-Lite0; 0.53 M at D = 1024, 4 % of I3D) well below the backbone while leaving room to
# factorize.
ACF_DIM = 256


class ACFHead(nn.Module):
    """Two projections (Linear + ReLU) of the pooled feature, and a linear classifier on [action, context].

    forward(f (B, D, T, H, W), mask (B, T)) -> {"logits" (B, C), "action" (B, dim), "context" (B, dim),
    "S", "C" uniform (B, T, H, W)}. :meth:`embed` gives the two features alone (for conjugate samples).
    """

    def __init__(self, in_channels: int, num_classes: int, dim: int = ACF_DIM):
        super().__init__()
        self.in_channels, self.num_classes, self.dim = in_channels, num_classes, dim
        self.action = nn.Sequential(nn.Linear(in_channels, dim), nn.ReLU())
        self.context = nn.Sequential(nn.Linear(in_channels, dim), nn.ReLU())
        self.classifier = nn.Linear(2 * dim, num_classes)

    def embed(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Action and context features of a map: two (B, dim) tensors."""
        pooled = masked_average(f, mask)  # (B, D)
        return self.action(pooled), self.context(pooled)

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        a, c = self.embed(f, mask)
        logits = self.classifier(torch.cat([a, c], 1))  # (B, C)
        return {"logits": logits, "action": a, "context": c, **uniform_maps(f, mask)}

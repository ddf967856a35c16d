"""Attentional pooling (Girdhar and Ramanan, NIPS 2017), the "Attentional-I3D" baseline of ActX Table 1.

Second-order pooling with a rank-1 class weight W_k = a_k b^T gives, for voxels x_i,

    score_k = (1 / n) sum_i (a_k . x_i) (b . x_i) = mean_i top_down_k(i) * bottom_up(i),

a class-specific top-down map t_k = X a_k times one class-agnostic bottom-up map h = X b ("both the top-down
(category-specific) and the bottom-up (category-agnostic) attention maps are learned for weighting the
predicted action scores", ActX 4.1.3). Both maps are 1x1x1 convolutions of the backbone map (with biases). The
mean runs over real voxels only, so clips of different lengths get scores on the same scale.

Grounding map: "S" is the bottom-up map turned into a distribution, softmax_{t,h,w}(AttNorm(h)). It is
class-agnostic (it does not depend on which class is predicted, which for multi-label sets is not one class),
non-negative with unit sum like ActX's S_att, and normalised exactly as ActX's S_att with beta = 1, so the
mass shares of the two methods are comparable; its argmax (pointing game) is the argmax of h. There is no
context map.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from actx import ops
from actx.models.classify import NEGATIVE_WEIGHT_WHY, classification_builder

# No open values: the rank-1 factorisation (Girdhar and Ramanan's choice, as in ActX's comparison) has none
# besides its weights. The HACS-30 row adds "negative_weight" (actx.experiments.methods).
PARAMS: dict = {}
WHY: dict = {"negative_weight": NEGATIVE_WEIGHT_WHY}


class AttentionalPoolingHead(nn.Module):
    """Rank-1 attentional pooling. forward(f (B, D, T, H, W), mask (B, T)) returns a dict:

    "logits" (B, C); "S" (B, T, H, W) softmax of the normalised bottom-up map (unit sum, 0 at padding);
    "bottom_up" (B, T, H, W) and "top_down" (B, C, T, H, W), the raw maps.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.top_down = nn.Conv3d(in_channels, num_classes, 1)  # a_k for every class k
        self.bottom_up = nn.Conv3d(in_channels, 1, 1)  # b, shared by all classes

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mask = ops.time_mask(f, mask)
        f = ops.zero_padding(f, mask)
        m = mask[:, :, None, None]  # (B, T, 1, 1)
        td = self.top_down(f) * m[:, None]  # (B, C, T, H, W)
        bu = self.bottom_up(f)[:, 0] * m  # (B, T, H, W)
        n = m.sum((1, 2, 3)).to(f.dtype) * f.shape[3] * f.shape[4]  # (B,) real voxels
        logits = torch.einsum("bcthw,bthw->bc", td, bu) / n[:, None]  # (B, C)
        e = ops.attnorm(bu, (1, 2, 3), m).masked_fill(~m, float("-inf"))
        s = e.flatten(1).softmax(1).view_as(e)  # (B, T, H, W)
        return {"logits": logits, "S": s, "bottom_up": bu, "top_down": td}


def build_head(in_channels: int, num_classes: int, params: dict, base=None) -> AttentionalPoolingHead:
    return AttentionalPoolingHead(in_channels, num_classes)


build_objective = classification_builder  # classification only

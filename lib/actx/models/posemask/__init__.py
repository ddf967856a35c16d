"""PoseMask-I3D, a baseline of ActX Table 1 (000 section 4.1.3): "human poses are used to obtain an attentive
action map that focuses on regions of the human body joints ... We convert these keypoint heat maps into binary
masks and use them for weighted pooling of the I3D features", then a linear classifier.

Per feature step, every keypoint (x, y in fractions of the frame, score >= ``min_score``) becomes a Gaussian heat
map on the feature grid, G_k(c) = exp(-|c - p_k|^2 / (2 sigma^2)) with distances in map cells (cell j's centre
at j + 0.5, the keypoint at x * w); the heat map is the maximum over keypoints and people, and the mask is where
it reaches ``threshold``. The map is averaged over the masked voxels of the clip (a mask-weighted average). A
clip whose mask is empty at every real step (the estimator found nobody) is average-pooled: with no pose there
is nothing to weight by, and average pooling is the method this baseline modifies; ``forward`` returns
``"empty"`` (B,) so that such clips can be counted.

Keypoints arrive as fractions of the map (x * w cells), already moved there by the runner with the backbone's
real cell geometry (actx.experiments.inputs.on_map: cell j spans [j, j + 1) and its centre is the pixel the
strides and "SAME" padding centre it on), so a keypoint lands in the cell whose footprint holds it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from actx import ops
from actx.models.classify import classification_builder

# Heat-map width in map cells. The mask lives on the map grid, so its reach is set in cells: sigma = 0.5 cell
# with the threshold below gives a radius of sigma * sqrt(-2 ln threshold) = 0.78 cells, just over the largest
# distance from a point to the centre of its own cell (sqrt(2) / 2 = 0.71): the cell holding a keypoint is always
# in the mask, a neighbour only when the keypoint lies within 0.07-0.28 cells of their shared border. OpenPose's
# heat maps are narrower still (sigma 7 px of a 368 px input), far below one of our 32 px cells.
SIGMA = 0.5
# Mask threshold on the heat map (see SIGMA: together they set the mask's radius, 0.78 cells).
THRESHOLD = 0.3
# A keypoint counts when its score reaches this: mediapipe's own drawing utilities skip landmarks whose
# visibility is below 0.5; the oracle's and the files' scores are 0 or 1.
MIN_SCORE = 0.5
# Names of the per-step keypoint inputs a PoseMask head accepts (actx.experiments.inputs.INPUTS).
KEYPOINT_INPUTS = ("pose_keypoints", "actor_keypoints", "keypoints")

PARAMS = {"sigma": SIGMA, "threshold": THRESHOLD, "min_score": MIN_SCORE}
WHY = {"sigma": "open (the paper converts OpenPose heat maps into masks): 0.5 map cells, so that with the "
                "threshold the mask reaches 0.78 cells, just over a cell's half-diagonal (SIGMA)",
       "threshold": "open: 0.3, with sigma a mask radius of 0.78 cells (THRESHOLD)",
       "min_score": "open: 0.5, mediapipe's own visibility cut for drawing landmarks (MIN_SCORE)"}


def keypoint_heatmaps(keypoints: torch.Tensor, grid: tuple[int, int], sigma: float = SIGMA,
                      min_score: float = MIN_SCORE) -> torch.Tensor:
    """(..., P, K, 3) keypoints (x, y fractions of the frame, score) -> (..., h, w) heat map on the grid: the
    maximum over people and keypoints of exp(-d^2 / (2 sigma^2)), d in map cells; 0 where no keypoint counts.
    A keypoint counts when its score >= min_score and it lies inside the frame."""
    h, w = grid
    x, y, score = keypoints[..., 0] * w, keypoints[..., 1] * h, keypoints[..., 2]  # (..., P, K) in cells
    inside = (keypoints[..., 0] >= 0) & (keypoints[..., 0] <= 1) & (keypoints[..., 1] >= 0) & \
        (keypoints[..., 1] <= 1)
    counts = (score >= min_score) & inside  # (..., P, K)
    cy = torch.arange(h, dtype=keypoints.dtype, device=keypoints.device) + 0.5  # (h,) cell centres
    cx = torch.arange(w, dtype=keypoints.dtype, device=keypoints.device) + 0.5  # (w,)
    d2 = (cy[:, None] - y[..., None, None]) ** 2 + (cx[None, :] - x[..., None, None]) ** 2  # (..., P, K, h, w)
    g = torch.exp(-d2 / (2.0 * sigma ** 2)) * counts[..., None, None].to(keypoints.dtype)
    return g.flatten(-4, -3).amax(-3) if g.shape[-4] * g.shape[-3] else g.new_zeros(g.shape[:-4] + (h, w))


def pose_masks(keypoints: torch.Tensor, grid: tuple[int, int], sigma: float = SIGMA,
               threshold: float = THRESHOLD, min_score: float = MIN_SCORE) -> torch.Tensor:
    """(..., P, K, 3) keypoints -> (..., h, w) bool binary mask: heat map >= threshold."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    return keypoint_heatmaps(keypoints, grid, sigma, min_score) >= threshold


def mask_radius(sigma: float = SIGMA, threshold: float = THRESHOLD) -> float:
    """The mask's reach in map cells: sigma * sqrt(-2 ln threshold)."""
    return sigma * math.sqrt(-2.0 * math.log(threshold))


class PoseMaskHead(nn.Module):
    """Pose-mask weighted pooling and a linear classifier.

    forward(f (B, D, T, h, w), mask (B, T), <one keypoint input> (B, T, P, K, 3)) -> {"logits" (B, C),
    "S" (B, T, h, w) the pooling weights (unit sum over the clip, 0 at padding), "pose_mask" (B, T, h, w) bool,
    "empty" (B,) bool (no mask cell at any real step: average-pooled)}.
    """

    def __init__(self, in_channels: int, num_classes: int, sigma: float = SIGMA, threshold: float = THRESHOLD,
                 min_score: float = MIN_SCORE):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.sigma, self.threshold, self.min_score = float(sigma), float(threshold), float(min_score)
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None, **inputs: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        names = [k for k in inputs if k in KEYPOINT_INPUTS]
        if len(names) != 1 or len(inputs) != 1:
            raise ValueError(f"PoseMaskHead takes exactly one keypoint input of {KEYPOINT_INPUTS}, got "
                             f"{sorted(inputs)}")
        keypoints = inputs[names[0]].to(f.dtype)  # (B, T, P, K, 3)
        b, _, t, h, w = f.shape
        if keypoints.dim() != 5 or tuple(keypoints.shape[:2]) != (b, t) or keypoints.shape[-1] != 3:
            raise ValueError(f"{names[0]} must be (B, T, P, K, 3) with (B, T) = {(b, t)}, got "
                             f"{tuple(keypoints.shape)}")
        mask = ops.time_mask(f, mask)
        real = mask[:, :, None, None, None]  # (B, T, 1, 1, 1)
        if bool(torch.isnan(keypoints).masked_select(real).any()):
            raise ValueError(f"{names[0]} is NaN at a real time step: the pose was estimated only on the action "
                             "window's steps (actx.cues.pose.pose_steps), and this sample reaches outside it")
        pm = pose_masks(torch.nan_to_num(keypoints), (h, w), self.sigma, self.threshold, self.min_score)
        pm = pm & mask[:, :, None, None]  # (B, T, h, w)
        empty = ~pm.flatten(1).any(1)  # (B,)
        weights = torch.where(empty[:, None, None, None], mask[:, :, None, None].expand(b, t, h, w), pm)
        weights = weights.to(f.dtype)
        s = weights / weights.sum((1, 2, 3), keepdim=True)  # (B, T, h, w) unit sum
        pooled = torch.einsum("bdthw,bthw->bd", ops.zero_padding(f, mask), s)  # (B, D)
        return {"logits": self.classifier(pooled), "S": s, "pose_mask": pm, "empty": empty}


def build_head(in_channels: int, num_classes: int, params: dict, base=None) -> PoseMaskHead:
    return PoseMaskHead(in_channels, num_classes, params["sigma"], params["threshold"], params["min_score"])


build_objective = classification_builder  # classification only

"""k-Region-I3D, a baseline of ActX Table 1 (000 section 4.1.3): "the top k object regions predicted by the Region
Proposal Network ... We use ROI-align module to obtain the feature representation for each region and average
pool them into a single feature vector", k = 10 and k = 50, then a linear classifier.

Per feature step, the first k proposals in rank order (actx.cues.proposals: selective search stands in for the
RPN) are ROI-aligned on the step's map (actx.models.roi.roi_align, ROI_SIZE x ROI_SIZE bins), each region's
bins averaged into one vector, and the region vectors averaged over regions and over the clip's real steps.

All of that is linear in the map, so it equals one weighted sum of the map's cells: a region's vector is
sum_c a_r(c) f(c), where a_r(c) is the weight ROI-align gives cell c, and the pooled vector is
sum_{t,c} S(t, c) f(t, c) with S the average of the regions' a_r over regions and steps. We get a_r from
roi_align itself, applied to an identity basis (one channel per cell), and pool the D-channel map with S once:
exactly the same numbers as ROI-aligning the D-channel map region by region (tests/test_kregion.py checks it),
at a fraction of the cost. A clip's proposals are the same in every epoch, so each distinct box's weights are
computed once per process and kept (:func:`cached_region_weights`; at 7 x 7 bins, ROI-aligning 3,200 boxes of a
default-profile batch took 2.2 s on our CPU, looking them up takes milliseconds). S (unit sum over the clip) is also the head's "S" map: where the regions put weight,
scored against the actor masks in the grounding table.

Boxes come in fractions of the map, x * w, y * h cells (the runner moves them from fractions of the frame with the
backbone's real cell geometry: actx.experiments.inputs.on_map).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from actx import ops
from actx.models.classify import classification_builder
from actx.models.roi import roi_align

# ROI-align's output bins per side: Mask R-CNN's box head (Detectron's ROI-align of the RPN's regions, as the
# paper used) pools 7 x 7 bins. Here the bins are averaged at once, so the size only sets how finely a region is
# sampled (7 x 7 bins x 2 x 2 points).
ROI_SIZE = 7
# The paper's two rows (10Region-I3D, 50Region-I3D); the registry sets k per row.
K = 10

PARAMS = {"k": K}
WHY = {"k": "paper: the top k = 10 (10Region-I3D) or 50 (50Region-I3D) regions per frame"}


def region_weights(boxes: torch.Tensor, grid: tuple[int, int], roi_size: int = ROI_SIZE) -> torch.Tensor:
    """(N, 4) xyxy boxes in fractions of the frame -> (N, h, w): the weight roi_align's bin average gives each map
    cell (each row sums to 1 for a box inside the frame; less where the box leaves the map)."""
    h, w = grid
    basis = torch.eye(h * w, dtype=boxes.dtype, device=boxes.device).view(1, h * w, h, w)  # (1, hw, h, w)
    scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes * scale], 1)  # (N, 5) in cells
    a = roi_align(basis, rois, roi_size, spatial_scale=1.0, aligned=True)  # (N, hw, S, S)
    return a.mean((2, 3)).view(-1, h, w)  # (N, h, w)


# Distinct boxes whose weights are kept per process (each a few dozen floats: 21,600 boxes of the default
# benchmark's 432 clips take about 2 MB). Past this many the cache is cleared and starts again.
CACHE_BOXES = 1_000_000
_WEIGHTS: dict[tuple, torch.Tensor] = {}


def cached_region_weights(boxes: torch.Tensor, grid: tuple[int, int], roi_size: int = ROI_SIZE) -> torch.Tensor:
    """:func:`region_weights` of (N, 4) boxes, each distinct box computed once per process (boxes carry no
    gradient: they are inputs). Returns (N, h, w) on the boxes' device and dtype."""
    h, w = grid
    rows = boxes.detach().to("cpu", torch.float32).contiguous()
    keys = [(h, w, roi_size, r.numpy().tobytes()) for r in rows]
    new = {k: i for i, k in enumerate(keys) if k not in _WEIGHTS}
    if new:
        if len(_WEIGHTS) + len(new) > CACHE_BOXES:
            _WEIGHTS.clear()
            new = {k: i for i, k in enumerate(keys)}
        with torch.no_grad():
            a = region_weights(rows[list(new.values())].double(), grid, roi_size).float()  # (M, h, w)
        _WEIGHTS.update(zip(new, a))
    if not keys:
        return boxes.new_zeros((0, h, w))
    return torch.stack([_WEIGHTS[k] for k in keys]).to(boxes.device, boxes.dtype)


class KRegionHead(nn.Module):
    """Average of the top-k regions' ROI-aligned features over regions and time, then a linear classifier.

    forward(f (B, D, T, h, w), mask (B, T), proposals (B, T, N, 5): xyxy fractions and 1 for a real box) ->
    {"logits" (B, C), "S" (B, T, h, w) the pooling weights (unit sum, 0 at padding), "regions" (B, T) the
    number of regions used per step}.
    """

    def __init__(self, in_channels: int, num_classes: int, k: int = K, roi_size: int = ROI_SIZE):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.in_channels, self.num_classes, self.k, self.roi_size = in_channels, num_classes, int(k), roi_size
        self.classifier = nn.Linear(in_channels, num_classes)

    def weights(self, proposals: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, N, 5) proposals -> the pooling map S (B, T, h, w) and regions per step (B, T)."""
        b, t = mask.shape
        top = proposals[:, :, :self.k]  # (B, T, k, 5) the first k in rank order
        valid = (top[..., 4] > 0) & mask[:, :, None]  # (B, T, k)
        regions = valid.sum(2)  # (B, T)
        if bool((regions[mask] == 0).any()):
            bad = sorted({int(i) for i in (mask & (regions == 0)).nonzero()[:, 0]})
            raise ValueError(f"samples {bad} have a real time step without any region proposal")
        a = cached_region_weights(top[..., :4][valid], grid, self.roi_size)  # (R, h, w) over the valid boxes
        per_box = a.new_zeros(valid.shape + tuple(grid))  # (B, T, k, h, w)
        per_box[valid] = a
        per_step = per_box.sum(2) / regions.clamp(min=1)[:, :, None, None]  # (B, T, h, w): mean over regions
        s = per_step / mask.sum(1).to(a.dtype)[:, None, None, None]  # mean over real steps
        return s, regions

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None, proposals: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        b, _, t, h, w = f.shape
        if proposals is None or proposals.dim() != 4 or tuple(proposals.shape[:2]) != (b, t) or \
                proposals.shape[-1] != 5:
            raise ValueError(f"KRegionHead needs proposals (B, T, N, 5) with (B, T) = {(b, t)}, got "
                             f"{None if proposals is None else tuple(proposals.shape)}")
        mask = ops.time_mask(f, mask)
        s, regions = self.weights(proposals.to(f.dtype), mask, (h, w))
        pooled = torch.einsum("bdthw,bthw->bd", ops.zero_padding(f, mask), s)  # (B, D)
        s = s / s.sum((1, 2, 3), keepdim=True)  # unit sum (a region leaving the map loses a little weight)
        return {"logits": self.classifier(pooled), "S": s, "regions": regions}


def build_head(in_channels: int, num_classes: int, params: dict, base=None) -> KRegionHead:
    return KRegionHead(in_channels, num_classes, params["k"])


build_objective = classification_builder  # classification only

"""ROI-align (He et al., Mask R-CNN 2017): a fixed-size feature per box, shared by k-Region-I3D (ActX Table 1)
and ACRN (002 section 3.1: ROI-align to 7 x 7 per actor box). Ours, in plain tensor indexing (torchvision does
not work with the pinned torch here).

For a box (x1, y1, x2, y2) in input pixels, ``spatial_scale`` (1 / the map's stride) takes it onto the map; with
``aligned=True`` half a cell is subtracted, so that map cell j covers the continuous interval [j, j + 1) and its
value sits at its centre j + 0.5 (the pixel-exact convention of Detectron2 and torchvision's ``aligned=True``).
The box is cut into ``output_size`` bins; each bin averages ``sampling_ratio`` x ``sampling_ratio`` regularly
spaced points, each point bilinearly interpolated from its four neighbouring cells. A point more than one cell
outside the map contributes 0; one within a cell of the border takes the border's value (the usual ROI-align
rule), so boxes at the borders and boxes smaller than a cell are well defined. All of this is separable, so it is
computed as two small matrix products per box (one per axis; see :func:`_axis_weights`): a third of the time of
gathering the four neighbours of every point, forward and backward, on ACRN's maps (benchmarks/acrn_speed.py).
"""

from __future__ import annotations

import torch

# Points per bin along each axis. 2 is Mask R-CNN's and Detectron2's default: four samples per bin, enough for
# bins about one cell wide (a 7 x 7 output on a box a few cells wide).
SAMPLING_RATIO = 2


def _axis(start: torch.Tensor, length: torch.Tensor, bins: int, ratio: int) -> torch.Tensor:
    """(K, bins * ratio) sample positions along one axis: start + (i + 0.5) * length / (bins * ratio)."""
    steps = (torch.arange(bins * ratio, device=start.device, dtype=start.dtype) + 0.5) / ratio  # in bins
    return start[:, None] + steps[None, :] * (length / bins)[:, None]


def _corners(pos: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower and upper cell index, the upper cell's weight, and validity, for positions (K, P) on an axis of
    ``size`` cells (cell centres at integer positions after the caller's half-cell shift)."""
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0.0, max=size - 1)
    low = pos.floor().long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    return low, high, pos - low.to(pos.dtype), valid


def roi_align(f: torch.Tensor, boxes: torch.Tensor, output_size: tuple[int, int] | int,
              spatial_scale: float = 1.0, sampling_ratio: int = SAMPLING_RATIO, aligned: bool = True
              ) -> torch.Tensor:
    """ROI-align of ``boxes`` on the maps ``f``.

    f          (B, C, H, W) feature maps
    boxes      (K, 5): (batch index, x1, y1, x2, y2) in input pixels (the frame the map was computed from)
    output_size  (oh, ow) bins (an int for a square)
    spatial_scale  map cells per input pixel (1 / stride, e.g. 1 / 32)
    returns    (K, C, oh, ow)
    """
    if f.dim() != 4 or boxes.dim() != 2 or boxes.shape[1] != 5:
        raise ValueError(f"roi_align takes f (B, C, H, W) and boxes (K, 5), got {tuple(f.shape)} and "
                         f"{tuple(boxes.shape)}")
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be >= 1, got {sampling_ratio}")
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    k, (b, c, h, w) = boxes.shape[0], f.shape
    if k == 0:
        return f.new_zeros((0, c, oh, ow))
    index = boxes[:, 0].long()
    if bool(((index < 0) | (index >= b)).any()):
        raise ValueError(f"box batch indices must lie in [0, {b}), got {index.unique().tolist()}")
    shift = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (boxes[:, i].to(f.dtype) * spatial_scale - shift for i in range(1, 5))
    bw, bh = x2 - x1, y2 - y1
    if not aligned:  # the original ROI-align forces boxes of at least one cell
        bw, bh = bw.clamp(min=1.0), bh.clamp(min=1.0)
    ay = _axis_weights(_axis(y1, bh, oh, sampling_ratio), h, oh, sampling_ratio)  # (K, oh, H)
    ax = _axis_weights(_axis(x1, bw, ow, sampling_ratio), w, ow, sampling_ratio)  # (K, ow, W)
    crops = f[index]  # (K, C, H, W)
    cols = torch.matmul(crops.reshape(k, c * h, w), ax.transpose(1, 2)).view(k, c, h, ow)  # (K, C, H, ow)
    return torch.matmul(ay[:, None], cols).contiguous()  # (K, 1, oh, H) @ (K, C, H, ow) -> (K, C, oh, ow)


def _axis_weights(pos: torch.Tensor, size: int, bins: int, ratio: int) -> torch.Tensor:
    """(K, bins, size): the weight of each of the axis's ``size`` cells in each bin, from the sample positions
    ``pos`` (K, bins * ratio) of :func:`_axis`: every point's two bilinear weights (0 for a point beyond one cell
    outside), averaged over the bin's ``ratio`` points.

    Bilinear interpolation is separable, and so are the validity rule and the bin average (a product of a rule
    per axis, a mean over a grid of points), so the (oh, ow) bins of one box are ay (oh, H) @ map (H, W) @
    ax (ow, W)^T: the same weighted sums as gathering the four neighbours of every point, as two small matrix
    products whose backward pass is two more (no scatter into the map)."""
    low, high, frac, valid = _corners(pos, size)
    keep = valid.to(pos.dtype)
    weights = pos.new_zeros(*pos.shape, size)  # (K, P, size)
    weights.scatter_add_(2, low[..., None], ((1 - frac) * keep)[..., None])
    weights.scatter_add_(2, high[..., None], (frac * keep)[..., None])
    return weights.view(pos.shape[0], bins, ratio, size).mean(2)

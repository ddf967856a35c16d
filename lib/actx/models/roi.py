"""ROI-align (He et al., Mask R-CNN 2017): a fixed-size feature per box, shared by k-Region-I3D (ActX Table 1)
and ACRN (002 section 3.1: ROI-align to 7 x 7 per actor box). Ours, in plain tensor indexing (torchvision does
not work with the pinned torch here).

For a box (x1, y1, x2, y2) in input pixels, ``spatial_scale`` (1 / the map's stride) takes it onto the map; with
``aligned=True`` half a cell is subtracted, so that map cell j covers the continuous interval [j, j + 1) and its
value sits at its centre j + 0.5 (the pixel-exact convention of Detectron2 and torchvision's ``aligned=True``).
The box is cut into ``output_size`` bins; each bin averages ``sampling_ratio`` x ``sampling_ratio`` regularly
spaced points, each point bilinearly interpolated from its four neighbouring cells. A point more than one cell
outside the map contributes 0; one within a cell of the border takes the border's value (the usual ROI-align
rule), so boxes at the borders and boxes smaller than a cell are well defined.
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
    y_lo, y_hi, y_w, y_ok = _corners(_axis(y1, bh, oh, sampling_ratio), h)  # (K, P) each
    x_lo, x_hi, x_w, x_ok = _corners(_axis(x1, bw, ow, sampling_ratio), w)  # (K, Q) each
    maps = f.permute(0, 2, 3, 1)  # (B, H, W, C)
    at = lambda ys, xs: maps[index[:, None, None], ys[:, :, None], xs[:, None, :]]  # noqa: E731  (K, P, Q, C)
    wy, wx = y_w[:, :, None, None], x_w[:, None, :, None]  # (K, P, 1, 1), (K, 1, Q, 1)
    values = ((1 - wy) * (1 - wx) * at(y_lo, x_lo) + (1 - wy) * wx * at(y_lo, x_hi)
              + wy * (1 - wx) * at(y_hi, x_lo) + wy * wx * at(y_hi, x_hi))  # (K, P, Q, C)
    values = values * (y_ok[:, :, None] & x_ok[:, None, :])[..., None].to(values.dtype)
    values = values.view(k, oh, sampling_ratio, ow, sampling_ratio, c).mean((2, 4))  # (K, oh, ow, C)
    return values.permute(0, 3, 1, 2).contiguous()  # (K, C, oh, ow)

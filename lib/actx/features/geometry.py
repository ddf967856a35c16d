"""Where each cell of a feature map sits on the frame: the backbone's real stride and padding, not ``[S j, S (j+1))``.

A convolution with kernel k, stride s, dilation d and ``pad`` pixels of padding before the input puts the centre of
output position j at input position ``s j + (k - 1) d / 2 - pad`` (positions in pixel-index units: pixel i's centre
is at i). Chaining every spatial layer of a backbone gives, per axis, an affine map

    centre(j) = stride * j + offset

TensorFlow's "SAME" padding (EfficientNet-Lite, the I3D port) pads an even total *after* the input first: a stride-2
3x3 convolution on an even size pads 0 before and 1 after, so its output j looks at 2 j + 1, not 2 j + 0.5. Over
the four stride-2 layers of EfficientNet-Lite0 at output stride 16 the offsets add up to 15 px: cell j is centred
on pixel 16 j + 15, half a cell right of (and below) the naive 16 j + 7.5. :func:`map_geometry` derives this by
running the model on the meta device (shapes only, no arithmetic) with hooks on its strided layers.

A cell's footprint (:func:`cell_bounds`) is the set of pixels nearer to its centre than to any other cell's centre
(boundaries half-way between centres; the first and last cells extend to the frame's edges), so that every pixel
belongs to exactly one cell: the partition that grounding (``actx.metrics.mask_to_grid``), the drawn heat maps
(``actx.plots``) and box / keypoint positions on the map use. The effective receptive field (Luo et al. 2016) is
far wider than a cell and, in a trained network, content dependent; what the footprint fixes is its centre.
:func:`probe_cells` checks it: a patch placed inside a cell's footprint changes that cell most. On the network's
:func:`sampling_twin` (the same strides and paddings, every kernel a unit tap at its centre) this holds exactly and
tests the arithmetic; on the trained network the answer depends on the content around the patch (notebook 02).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch
import torch.nn as nn

from actx.backbones.common import MaxPool3dSame, same_pad_amounts

__all__ = ["AxisGeometry", "MapGeometry", "map_geometry", "backbone_geometry", "cell_bounds", "probe_cells",
           "sampling_twin", "to_map_fraction"]


@dataclass(frozen=True)
class AxisGeometry:
    """One axis of a map: cell j is centred on input pixel ``stride * j + offset`` (pixel i's centre at i)."""

    stride: float
    offset: float

    def centre(self, j) -> float:
        return self.stride * j + self.offset

    def scaled(self, factor: float) -> "AxisGeometry":
        """The same geometry in pixels of an image ``factor`` times the backbone input's size (pixel centres map as
        (i + 0.5) * factor - 0.5)."""
        return AxisGeometry(self.stride * factor, (self.offset + 0.5) * factor - 0.5)


@dataclass(frozen=True)
class MapGeometry:
    """(rows, cols) geometry of a backbone's map for one input size (H, W), with the map's size (h, w)."""

    rows: AxisGeometry
    cols: AxisGeometry
    size: tuple[int, int]  # the backbone input (H, W) this geometry was derived for
    cells: tuple[int, int]  # the map (h, w)

    def scaled_to(self, height: int, width: int) -> "MapGeometry":
        """The geometry in pixels of frames (or masks) of (height, width) showing the same image."""
        return MapGeometry(self.rows.scaled(height / self.size[0]), self.cols.scaled(width / self.size[1]),
                           (height, width), self.cells)

    def bounds(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(row bounds, col bounds) of every cell's footprint (:func:`cell_bounds`), in this geometry's pixels."""
        return (cell_bounds(self.rows, self.size[0], self.cells[0]),
                cell_bounds(self.cols, self.size[1], self.cells[1]))


def _spatial(value, n: int = 2) -> tuple[int, ...]:
    """The last ``n`` (spatial) entries of a conv / pool attribute (an int or a tuple)."""
    return tuple(value[-n:]) if isinstance(value, (tuple, list)) else (int(value),) * n


def _layer_step(module: nn.Module, in_hw: Sequence[int]) -> list[tuple[int, float]] | None:
    """(stride, centre shift) per spatial axis of one conv / pool layer on an input of spatial size ``in_hw``; None
    when the layer cannot move the grid (stride 1 with symmetric padding)."""
    k = _spatial(module.kernel_size)
    s = _spatial(module.stride if module.stride is not None else module.kernel_size)
    d = _spatial(getattr(module, "dilation", 1))
    steps = []
    for n, kk, ss, dd, axis in zip(in_hw, k, s, d, range(2)):
        if getattr(module, "same_padding", False):
            pad = same_pad_amounts(n, kk, ss, dd)[0]
        else:
            pad = _spatial(module.padding)[axis] if not isinstance(module.padding, str) else None
            if pad is None:  # padding="same" (stride 1 only in torch): symmetric, the odd pixel after
                pad = ((kk - 1) * dd) // 2
        steps.append((ss, (kk - 1) * dd / 2 - pad))
    if all(ss == 1 and shift == 0 for ss, shift in steps):
        return None
    return steps


_LAYERS = (nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool2d, nn.AvgPool3d, MaxPool3dSame)


def map_geometry(model: nn.Module, size: tuple[int, int]) -> MapGeometry:
    """The (rows, cols) :class:`AxisGeometry` of ``model.forward_features`` for inputs of ``size`` (H, W).

    Runs the model on the meta device (no weights read, no arithmetic) with forward hooks on its convolutions and
    pooling modules, and chains the strided ones in call order. A strided layer on the same input size as one
    already counted (a residual shortcut beside the main path) is a parallel branch and is not counted twice.
    Layers that are not modules (e.g. a functional ``max_pool3d_same``) are invisible to the hooks; the final
    map's stride is checked against the input / map size ratio, so a model that strides outside its modules
    raises ValueError instead of giving a wrong geometry.
    """
    meta = _meta_copy(model)
    seen: dict[tuple, list] = {}
    order: list[list[tuple[int, float]]] = []

    def hook(module, args, _out):
        x = args[0]
        in_hw = tuple(x.shape[-2:])
        step = _layer_step(module, in_hw)
        if step is None:
            return
        key = (in_hw, tuple(st for st, _ in step))
        if any(st > 1 for st, _ in step) and key in seen:
            return  # a parallel strided branch (shortcut) on the same input: the grid moves once
        seen[key] = step
        order.append(step)

    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, _LAYERS)]
    try:
        channels = int(getattr(meta, "in_channels", 3))
        shape = (1, channels, 8, *size) if getattr(meta, "is_3d", False) else (1, channels, *size)
        with torch.no_grad():
            out = meta.forward_features(torch.empty(shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    axes = []
    for axis in range(2):
        stride, offset = 1.0, 0.0
        for step in order:
            s, shift = step[axis]
            offset += stride * shift
            stride *= s
        axes.append(AxisGeometry(stride, offset))
    cells = tuple(int(v) for v in out.shape[-2:])
    for axis, (n, c) in enumerate(zip(size, cells)):
        if math.ceil(n / axes[axis].stride) != c:
            raise ValueError(f"{type(model).__name__}: the strided layers found by map_geometry give stride "
                             f"{axes[axis].stride:g} on axis {axis}, but a {size} input gives a map of {cells}; "
                             "the model strides outside nn.Conv / nn.*Pool modules, whose geometry cannot be read")
    return MapGeometry(axes[0], axes[1], tuple(size), cells)


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device (its own parameters untouched)."""
    return _copy(model).to("meta")


@lru_cache(maxsize=16)
def backbone_geometry(backbone: str, size: tuple[int, int]) -> MapGeometry:
    """:func:`map_geometry` of a backbone named as in ``actx.features`` (cfg.features["backbone"]), built without
    weights, for inputs of ``size`` (H, W)."""
    from actx.backbones import BACKBONES

    if backbone not in BACKBONES:
        raise ValueError(f"backbone_geometry: unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    kwargs = {"pretrained": False} if backbone.startswith("efficientnet") else {}
    with torch.device("meta"):
        model = BACKBONES[backbone](**kwargs)
    return map_geometry(model, tuple(int(v) for v in size))


def cell_bounds(axis: AxisGeometry, size: int, cells: int) -> list[tuple[int, int]]:
    """[start, end) pixel bounds of each cell's footprint along one axis: the pixels nearer to its centre than to
    a neighbour's (a tie goes to the later cell), the first and last cells extended to the edges. ValueError when
    a cell would hold no pixel."""
    cuts = [0] + [math.ceil(axis.centre(j) + axis.stride / 2) for j in range(cells - 1)] + [size]
    cuts = [min(max(c, 0), size) for c in cuts]
    bounds = list(zip(cuts[:-1], cuts[1:]))
    if any(b <= a for a, b in bounds):
        raise ValueError(f"cell_bounds: {cells} cells of stride {axis.stride:g} and offset {axis.offset:g} leave a "
                         f"cell without pixels on an axis of {size} pixels")
    return bounds


def to_map_fraction(frac, axis: AxisGeometry, size: int, cells: int):
    """Positions given as fractions of the frame (0 = left / top edge, 1 = right / bottom edge) -> fractions of
    the map, such that ``fraction * cells`` is the position in map cells with cell j spanning [j, j + 1) and its
    centre at j + 0.5 on the pixel the backbone centres it on. Works on numpy arrays and tensors."""
    pixel = frac * size - 0.5  # pixel-index units (pixel i's centre at i)
    return ((pixel - axis.offset) / axis.stride + 0.5) / cells


@torch.no_grad()
def sampling_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that only *samples*: batch norm folded (``fuse_bn``), every convolution's weights a unit
    tap at its kernel's centre (output channel o reads input channel o mod C_in of its group), zero biases, no input
    normalisation. Cell j of its map is then a positive multiple of the input pixel the strides and paddings put
    under it, and of no other pixel: the test bench of :func:`map_geometry` (a patch changes exactly the cells
    whose analytic centre it covers). Odd kernels only (every EfficientNet and I3D spatial kernel is odd)."""
    from actx.backbones import fuse_bn

    twin = fuse_bn(model) if any(getattr(m, "FUSE_PAIRS", None) for m in model.modules()) else _copy(model)
    if hasattr(twin, "normalize_rgb"):
        twin.normalize_rgb = False
    for m in twin.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            if any(k % 2 == 0 for k in m.kernel_size):
                raise ValueError(f"sampling_twin: {type(m).__name__} has an even kernel {m.kernel_size}")
            w = torch.zeros_like(m.weight)  # (C_out, C_in / groups, *k)
            centre = tuple(k // 2 for k in m.kernel_size)
            per_group = w.shape[1]
            for o in range(w.shape[0]):
                w[(o, o % per_group, *centre)] = 1.0
            m.weight = nn.Parameter(w, requires_grad=False)
            if m.bias is not None:
                m.bias = nn.Parameter(torch.zeros_like(m.bias), requires_grad=False)
    return twin.eval()


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


@torch.no_grad()
def probe_cells(model: nn.Module, size: tuple[int, int], patch: int, step: int | None = None,
                base: torch.Tensor | None = None, seed: int = 0) -> list[tuple[int, int, int]]:
    """Place a random patch of ``patch`` x ``patch`` pixels at known positions on the middle row and record which
    map column responds most: [(patch centre column in pixels, the column whose features changed most relative to
    its own gain, the column whose footprint holds the patch centre)]. A column's gain is its change when the whole
    image is replaced by noise: cells at the border (padding) or on a dilated grid respond less to anything, and
    the normalisation asks which cell *looks* at the patch, not which cell is loudest. ``base`` (1, C, H, W):
    the image the patch is pasted on (default uniform grey). Columns only: rows follow the same rule."""
    geometry = map_geometry(model, size)
    bounds = geometry.bounds()[1]
    gen = torch.Generator().manual_seed(seed)
    channels = int(getattr(model, "in_channels", 3))
    base = torch.full((1, channels, *size), 0.5) if base is None else base
    y0 = model.forward_features(base)  # (1, D, h, w)
    rows = (size[0] // 2 - patch // 2, size[0] // 2 - patch // 2 + patch)

    def change(x: torch.Tensor) -> torch.Tensor:  # (w,) squared feature change on the patch's map row band
        return (model.forward_features(x) - y0).pow(2).sum((0, 1, 2))

    whole = base.clone()
    whole[..., rows[0]:rows[1], :] = torch.rand(channels, patch, size[1], generator=gen)
    gain = change(whole).clamp_min(1e-12)  # (w,)
    out = []
    for c0 in range(0, size[1] - patch + 1, step or max(1, patch // 2)):
        x = base.clone()
        x[..., rows[0]:rows[1], c0:c0 + patch] = torch.rand(channels, patch, patch, generator=gen)
        centre = c0 + (patch - 1) / 2
        owner = next(j for j, (a, b) in enumerate(bounds) if a <= centre < b)
        out.append((int(round(centre)), int((change(x) / gain).argmax()), owner))
    return out

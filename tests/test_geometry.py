"""Tests for actx.features.geometry: where a map cell sits on the frame (strides and TF "SAME" padding), its
footprint, the sampling-twin probe, and the grounding / plotting paths that use them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from actx.backbones import efficientnet_lite0, efficientnet_lite0_os16
from actx.backbones.common import Conv2dSame
from actx.features.geometry import (AxisGeometry, backbone_geometry, cell_bounds, map_geometry, probe_cells,
                                    sampling_twin, to_map_fraction)
from actx.metrics import mask_to_grid


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Chain(nn.Module):
    """Two strided layers written out by hand: SAME 3x3 stride 2, then a torch 3x3 stride 2 with padding 1."""

    in_channels = 1

    def __init__(self):
        super().__init__()
        self.a = Conv2dSame(1, 1, 3, stride=2)
        self.b = nn.Conv2d(1, 1, 3, stride=2, padding=1)

    def forward_features(self, x):
        return self.b(self.a(x))


def test_hand_computed_chain():
    """SAME, k3 s2 on 16 px pads 0 before: output j at 2j + 1. Then k3 s2 pad 1: j at 2j. Chained: 4j + 1."""
    g = map_geometry(Chain(), (16, 16))
    assert g.cols == AxisGeometry(4, 1.0) and g.rows == AxisGeometry(4, 1.0) and g.cells == (4, 4)
    g = map_geometry(Chain(), (15, 15))  # SAME on an odd size pads 1 before: j at 2j; then 2j: 4j
    assert g.cols == AxisGeometry(4, 0.0)


def test_lite0_geometry_is_half_a_cell_off_the_naive_grid():
    """EfficientNet-Lite0 at output stride 16 on 128x176: four stride-2 layers on even sizes, each moves the
    centre by half an input pixel of its own: 0.5 + 1 + 2 + 4 = 7.5 px past the naive 16 j + 7.5."""
    g = backbone_geometry("efficientnet_lite0_os16", (128, 176))
    assert g.cells == (8, 11)
    assert g.rows == g.cols == AxisGeometry(16, 15.0)
    rows, cols = g.bounds()
    assert cols[0] == (0, 23) and cols[1] == (23, 39) and cols[-1] == (167, 176)
    assert sum(b - a for a, b in cols) == 176 and sum(b - a for a, b in rows) == 128  # a partition
    s32 = backbone_geometry("efficientnet_lite0", (128, 176))
    assert s32.cells == (4, 6) and s32.rows == AxisGeometry(32, 31.0)  # the fifth stride-2 layer on an even 8
    assert s32.cols == AxisGeometry(32, 15.0)  # ... but on an odd 11 it pads 2 before and moves nothing


def test_i3d_pools_are_seen():
    g = backbone_geometry("i3d", (256, 352))
    assert g.cells == (8, 11) and g.cols.stride == 32


def test_a_model_that_strides_outside_modules_is_refused():
    class Hidden(nn.Module):
        in_channels = 1

        def forward_features(self, x):
            return nn.functional.avg_pool2d(x, 2)

    with pytest.raises(ValueError, match="strides outside"):
        map_geometry(Hidden(), (8, 8))


@pytest.mark.parametrize("factory,size", [(efficientnet_lite0_os16, (128, 176)), (efficientnet_lite0, (96, 96))])
def test_a_patch_changes_the_cell_whose_footprint_holds_it(factory, size):
    """On the sampling twin (every kernel a centre tap) a patch one cell wide changes exactly the cell whose
    analytic centre it covers: the footprint owner, at every position. The naive grid misses about half."""
    twin = sampling_twin(factory(pretrained=False))
    stride = int(map_geometry(twin, size).cols.stride)
    probe = probe_cells(twin, size, patch=stride, step=2, base=torch.zeros(1, 3, *size))
    assert len(probe) > 20
    assert all(changed == owner for _, changed, owner in probe)
    cells = map_geometry(twin, size).cells[1]
    naive = sum(changed == min(centre // stride, cells - 1) for centre, changed, _ in probe)
    assert naive < 0.75 * len(probe)


def test_cell_bounds_and_scaling():
    axis = AxisGeometry(16, 15.0)
    assert cell_bounds(axis, 176, 11)[:2] == [(0, 23), (23, 39)]
    half = axis.scaled(0.5)  # the same image at 88 px: pixel centres (i + 0.5) / 2 - 0.5
    assert half == AxisGeometry(8, 7.25)
    with pytest.raises(ValueError, match="without pixels"):
        cell_bounds(AxisGeometry(16, 100.0), 64, 4)
    # a frame position on the centre of cell 3 lands on 3.5 map cells
    frac = (axis.centre(3) + 0.5) / 176
    assert to_map_fraction(frac, axis, 176, 11) * 11 == pytest.approx(3.5)


def test_mask_to_grid_uses_the_footprints():
    mask = np.zeros((8, 32, 48), bool)
    mask[:, :, :23] = True  # exactly cell 0's footprint on the os16 columns at 176 px, scaled 48/176? no: bounds
    bounds = ([(0, 16), (16, 32)], [(0, 23), (23, 39), (39, 48)])
    grid = mask_to_grid(mask, (1, 2, 3), 8, bounds=bounds)
    assert grid[0, :, 0].tolist() == [1.0, 1.0] and grid[0, :, 1:].max() == 0.0
    with pytest.raises(ValueError, match="do not fit"):
        mask_to_grid(mask, (1, 2, 2), 8, bounds=bounds)


def test_grounding_cells_follow_the_profile_backbone():
    from actx.config import make_config
    from actx.experiments import map_cells

    cfg = make_config("default")
    g = map_cells(cfg, (128, 176), (8, 11))
    assert g.cols == AxisGeometry(16, 15.0)
    with pytest.raises(ValueError, match="another backbone or size"):
        map_cells(cfg, (128, 176), (4, 6))


def test_heat_map_is_drawn_on_the_cell_centres():
    from actx import plots

    g = backbone_geometry("efficientnet_lite0_os16", (128, 176))
    m = np.zeros((8, 11), np.float32)
    m[2, 3] = 1.0
    up = plots.upsample_map(m, (128, 176), g)
    assert up.shape == (128, 176)
    y, x = np.unravel_index(up.argmax(), up.shape)
    assert (y, x) == (16 * 2 + 15, 16 * 3 + 15)  # the peak on the pixel the backbone centres cell (2, 3) on


def test_inputs_move_onto_the_map_and_absent_ones_stay():
    from actx.experiments.inputs import on_map

    g = backbone_geometry("efficientnet_lite0_os16", (128, 176))
    centre_x = (g.cols.centre(3) + 0.5) / 176  # the frame fraction at the centre of column 3's pixel
    centre_y = (g.rows.centre(2) + 0.5) / 128
    kp = np.array([[[centre_x, centre_y, 1.0], [0.5, 0.5, 0.0]]], np.float32)  # (T, K, 3): one absent point
    moved = on_map("keypoints", kp, g)
    assert moved[0, 0, 0] * 11 == pytest.approx(3.5) and moved[0, 0, 1] * 8 == pytest.approx(2.5)
    np.testing.assert_array_equal(moved[0, 1], kp[0, 1])
    boxes = np.array([[[0.0, 0.0, 0.0, 0.0, 0.0], [centre_x, centre_y, centre_x, centre_y, 1.0]]], np.float32)
    out = on_map("proposals", boxes, g)
    np.testing.assert_array_equal(out[0, 0], 0.0)
    assert out[0, 1, 0] * 11 == pytest.approx(3.5) and out[0, 1, 4] == 1.0

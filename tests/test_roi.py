"""actx.models.roi.roi_align against a direct, point-by-point bilinear computation, on linear maps (where the
answer is known in closed form), at the borders and for boxes smaller than a cell."""

from __future__ import annotations

import math

import pytest
import torch

from actx.models.roi import roi_align


def _bilinear(m: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """One point of the (C, H, W) map by the ROI-align rule, written out: 0 beyond one cell outside, the border
    value within it, else the weighted four neighbours."""
    _, h, w = m.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(m.shape[0], dtype=m.dtype)
    y, x = min(max(y, 0.0), h - 1), min(max(x, 0.0), w - 1)
    y0, x0 = min(int(math.floor(y)), h - 1), min(int(math.floor(x)), w - 1)
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * m[:, y0, x0] + (1 - ly) * lx * m[:, y0, x1] + ly * (1 - lx) * m[:, y1, x0]
            + ly * lx * m[:, y1, x1])


def _reference(f, box, out, scale, ratio):
    b, x1, y1, x2, y2 = box.tolist()
    x1, y1, x2, y2 = (v * scale - 0.5 for v in (x1, y1, x2, y2))
    bh, bw = (y2 - y1) / out, (x2 - x1) / out
    res = torch.zeros(f.shape[1], out, out, dtype=f.dtype)
    for i in range(out):
        for j in range(out):
            pts = [_bilinear(f[int(b)], y1 + i * bh + (a + 0.5) * bh / ratio, x1 + j * bw + (c + 0.5) * bw / ratio)
                   for a in range(ratio) for c in range(ratio)]
            res[:, i, j] = torch.stack(pts).mean(0)
    return res


def test_roi_align_equals_the_direct_computation_everywhere():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    boxes = torch.tensor([[0, 8.0, 8.0, 200.0, 150.0],     # inside
                          [1, -40.0, -20.0, 60.0, 50.0],   # over the top-left border
                          [1, 180.0, 120.0, 260.0, 190.0],  # over the bottom-right border
                          [0, 100.0, 70.0, 110.0, 78.0],   # smaller than a cell (stride 32)
                          [0, -200.0, -200.0, -120.0, -90.0]], dtype=torch.float64)  # entirely outside
    out = roi_align(f, boxes, 3, spatial_scale=1 / 32, sampling_ratio=2)
    assert out.shape == (5, 3, 3, 3)
    for k, box in enumerate(boxes):
        torch.testing.assert_close(out[k], _reference(f, box, 3, 1 / 32, 2))
    assert torch.all(out[4] == 0), "a box more than one cell outside the map gives zeros"


def test_roi_align_is_exact_on_a_linear_map():
    h, w = 6, 9
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    f = (2 * ys + 3 * xs + 1)[None, None]  # (1, 1, H, W): value at cell centre (y, x)
    x1, y1, x2, y2 = 40.0, 30.0, 200.0, 150.0  # inside, stride 32
    out = roi_align(f, torch.tensor([[0, x1, y1, x2, y2]], dtype=torch.float64), (2, 4), 1 / 32, 3)[0, 0]
    for i in range(2):
        for j in range(4):  # a linear function's average over a bin is its value at the bin's centre
            cy = y1 / 32 - 0.5 + (i + 0.5) * (y2 - y1) / 32 / 2
            cx = x1 / 32 - 0.5 + (j + 0.5) * (x2 - x1) / 32 / 4
            assert out[i, j].item() == pytest.approx(2 * cy + 3 * cx + 1)


def test_a_box_smaller_than_a_cell_reads_the_interpolated_value_and_has_gradients():
    f = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4).requires_grad_()
    out = roi_align(f, torch.tensor([[0, 47.0, 47.0, 49.0, 49.0]], dtype=torch.float64), 1, 1 / 32, 2)
    # centre (48, 48) px -> cell coordinates (1.0, 1.0): exactly cell (1, 1), value 5
    assert out.item() == pytest.approx(5.0)
    out.sum().backward()
    assert f.grad.sum().item() == pytest.approx(1.0) and f.grad[0, 0, 1, 1].item() > 0.9  # the weights sum to 1


def test_bad_boxes_are_refused():
    f = torch.zeros(1, 2, 3, 3)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(f, torch.tensor([[1.0, 0, 0, 10, 10]]), 2)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        roi_align(f, torch.zeros(3, 4), 2)
    assert roi_align(f, torch.zeros(0, 5), 2).shape == (0, 2, 2, 2)

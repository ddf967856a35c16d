"""k-Region-I3D (actx.models.kregion): top-k proposals, ROI-aligned with actx.models.roi.roi_align, averaged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import actx.experiments as E
from actx.models.kregion import ROI_SIZE, KRegionHead, region_weights
from actx.models.roi import roi_align

GRID = (4, 6)


def _direct(f_step, boxes):
    """Mean of roi_align's bins for each box (fractions) on one (D, h, w) map: (N, D)."""
    h, w = f_step.shape[1:]
    rois = torch.cat([torch.zeros(len(boxes), 1), boxes * torch.tensor([w, h, w, h])], 1)
    return roi_align(f_step[None], rois, ROI_SIZE, 1.0, aligned=True).mean((2, 3))


def test_region_weights_reproduce_roi_align_on_the_map():
    torch.manual_seed(0)
    f = torch.randn(7, *GRID, dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.4, 0.9], [0.9, 0.9, 1.0, 1.0],
                          [0.5, 0.5, 0.52, 0.53], [0.8, -0.1, 1.1, 0.3]], dtype=torch.float64)
    a = region_weights(boxes, GRID)  # (N, h, w)
    torch.testing.assert_close(torch.einsum("nhw,dhw->nd", a, f), _direct(f, boxes))
    torch.testing.assert_close(a[:4].sum((1, 2)), torch.ones(4, dtype=torch.float64))


def test_cached_weights_equal_the_computed_ones_and_are_computed_once(monkeypatch):
    from actx.models import kregion

    monkeypatch.setattr(kregion, "_WEIGHTS", {})
    boxes = torch.tensor([[0.1, 0.2, 0.4, 0.9], [0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.4, 0.9]])
    first = kregion.cached_region_weights(boxes, GRID)
    torch.testing.assert_close(first, region_weights(boxes, GRID))
    assert len(kregion._WEIGHTS) == 2  # the repeated box once
    monkeypatch.setattr(kregion, "region_weights", lambda *a: (_ for _ in ()).throw(AssertionError("recomputed")))
    torch.testing.assert_close(kregion.cached_region_weights(boxes[[1, 0]], GRID), first[[1, 0]])


def test_head_averages_the_top_k_regions_over_regions_and_real_steps():
    torch.manual_seed(1)
    head = KRegionHead(5, 3, k=2)
    f = torch.randn(2, 5, 3, *GRID)
    props = torch.zeros(2, 3, 4, 5)  # (B, T, N, 5)
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.2, 0.1, 0.9, 0.8], [0.6, 0.6, 1.0, 1.0]])
    props[:, :, :3, :4], props[:, :, :3, 4] = boxes, 1.0
    props[1, 1, 1, 4] = 0.0  # sample 1, step 1: its second box is padding
    mask = torch.tensor([[True, True, False], [True, True, True]])
    out = head(f, mask, proposals=props)
    per_step0 = [_direct(f[0, :, t], boxes[:2]).mean(0) for t in range(2)]  # the first k = 2 boxes
    torch.testing.assert_close(out["logits"][0], head.classifier(torch.stack(per_step0).mean(0)))
    per_step1 = [_direct(f[1, :, 0], boxes[:2]).mean(0), _direct(f[1, :, 1], boxes[:1]).mean(0),
                 _direct(f[1, :, 2], boxes[:2]).mean(0)]
    torch.testing.assert_close(out["logits"][1], head.classifier(torch.stack(per_step1).mean(0)))
    assert out["regions"].tolist() == [[2, 2, 0], [2, 1, 2]]
    torch.testing.assert_close(out["S"].sum((1, 2, 3)), torch.ones(2))


def test_head_refuses_a_real_step_without_proposals():
    head = KRegionHead(5, 3, k=10)
    with pytest.raises(ValueError, match="without any region proposal"):
        head(torch.randn(1, 5, 2, *GRID), None, proposals=torch.zeros(1, 2, 10, 5))


def test_registry_rows_and_paper_numbers():
    assert E.get_method("region10").params == {"k": 10} and E.get_method("region50").params == {"k": 50}
    assert E.get_method("region10").inputs == ("proposals",)
    assert (E.paper_map("ActionThread", "region10", "rgb"), E.paper_map("ActionThread", "region50", "rgb+flow")) \
        == (50.1, 56.3)
    assert E.get_method("region50").make_head(8, 3).k == 50
    assert np.isclose(E.paper_map("Hollywood2", "region50", "rgb"), 55.9)


def test_region_and_pose_rows_train_through_the_runner(tmp_path, bench, monkeypatch):
    """Both methods get their per-step inputs from the runner (providers replaced by fixed ones here: the fake
    benchmark has no videos), train, and store a unit-sum S centred on the actor's cell (0, 0) of the 2 x 3 grid:
    all of PoseMask's weight, most of the region's (ROI-align interpolates bilinearly between cell centres)."""
    from test_experiments import _cfg, _run

    box = np.zeros((8, 50, 5), np.float32)
    box[:, 0] = [0.0, 0.0, 1 / 3, 0.5, 1.0]  # exactly map cell (0, 0) of the 2 x 3 grid
    monkeypatch.setitem(E.INPUTS, "proposals", lambda record, steps, stride: box[:steps])
    kp = np.zeros((8, 1, 1, 3), np.float32)
    kp[:, 0, 0] = [1 / 6, 0.25, 1.0]  # the centre of cell (0, 0)
    monkeypatch.setitem(E.INPUTS, "pose_keypoints", lambda record, steps, stride: kp[:steps])
    cfg = _cfg(tmp_path)
    for method in ("region10", "posemask"):
        result = _run(cfg, bench, method)
        s = result.maps["test"]["S"]  # (N, T, 2, 3)
        np.testing.assert_allclose(s.sum((1, 2, 3)), 1.0, atol=1e-5)
        share = s[:, :, 0, 0].sum(1)  # the weight on the actor's cell
        if method == "posemask":
            np.testing.assert_allclose(share, 1.0, atol=1e-5)
        else:
            assert (share > 0.7).all() and (s.sum(1).reshape(len(s), -1).argmax(1) == 0).all()
        assert result.recipe["inputs"] == list(E.get_method(method).inputs)


from test_experiments import bench  # noqa: E402,F401 (the fake benchmark fixture)

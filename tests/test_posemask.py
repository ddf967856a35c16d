"""PoseMask-I3D (actx.models.posemask): keypoints -> heat maps -> binary masks on the map grid -> weighted pooling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import actx.experiments as E
from actx.models.posemask import (MIN_SCORE, SIGMA, THRESHOLD, PoseMaskHead, keypoint_heatmaps, mask_radius,
                                  pose_masks)

GRID = (4, 6)  # the default profile's map grid


def _kp(points, score=1.0):
    """(1, K, 3) one person's keypoints from (x, y) in map cells on GRID."""
    h, w = GRID
    return torch.tensor([[[x / w, y / h, score] for x, y in points]], dtype=torch.float32)


def test_the_mask_reaches_just_past_half_a_cell_diagonal():
    assert math.isclose(mask_radius(SIGMA, THRESHOLD), SIGMA * math.sqrt(-2 * math.log(THRESHOLD)))
    assert math.sqrt(2) / 2 < mask_radius() < 1.0


def test_a_keypoint_at_a_cell_centre_marks_its_cell_only():
    m = pose_masks(_kp([(2.5, 1.5)]), GRID)  # (h, w)
    assert m.sum() == 1 and m[1, 2]


def test_a_keypoint_at_a_cell_corner_marks_the_four_cells_around_it():
    m = pose_masks(_kp([(3.0, 2.0)]), GRID)
    assert m.sum() == 4 and m[1:3, 2:4].all()


def test_low_scores_and_keypoints_outside_the_frame_do_not_count():
    assert not pose_masks(_kp([(2.5, 1.5)], score=MIN_SCORE - 0.01), GRID).any()
    assert pose_masks(_kp([(2.5, 1.5)], score=MIN_SCORE), GRID).any()
    assert not pose_masks(_kp([(-0.5, 1.5), (6.5, 1.5)]), GRID).any()


def test_heat_map_is_the_maximum_of_gaussians_and_people_without_keypoints_give_zero():
    kp = torch.cat([_kp([(0.5, 0.5)]), _kp([(5.5, 3.5)])])  # two people (P, K, 3)
    heat = keypoint_heatmaps(kp, GRID)
    assert heat[0, 0] == pytest.approx(1.0) and heat[3, 5] == pytest.approx(1.0)
    assert heat[0, 1] == pytest.approx(math.exp(-1 / (2 * SIGMA ** 2)))
    assert keypoint_heatmaps(torch.zeros(0, 17, 3), GRID).shape == GRID


def test_head_pools_over_the_masked_voxels_and_average_pools_a_clip_without_pose():
    torch.manual_seed(0)
    head = PoseMaskHead(5, 3)
    f = torch.randn(2, 5, 3, *GRID)
    kp = torch.zeros(2, 3, 1, 2, 3)  # (B, T, P, K, 3)
    kp[0, 0, 0] = _kp([(2.5, 1.5), (0.5, 0.5)])[0]  # sample 0: two cells at step 0, nothing later
    mask = torch.tensor([[True, True, False], [True, True, True]])
    out = head(f, mask, pose_keypoints=kp)
    expected = (f[0, :, 0, 1, 2] + f[0, :, 0, 0, 0]) / 2
    torch.testing.assert_close(out["logits"][0], head.classifier(expected))
    assert out["empty"].tolist() == [False, True]
    torch.testing.assert_close(out["logits"][1], head.classifier(f[1].mean((1, 2, 3))))
    torch.testing.assert_close(out["S"].sum((1, 2, 3)), torch.ones(2))
    assert (out["S"][0, 2] == 0).all(), "no weight on a padded step"


def test_head_refuses_keypoints_missing_at_a_real_step_and_a_second_input():
    head = PoseMaskHead(5, 3)
    f = torch.randn(1, 5, 2, *GRID)
    kp = torch.zeros(1, 2, 1, 2, 3)
    kp[0, 1] = float("nan")  # step 1 was never estimated
    head(f, torch.tensor([[True, False]]), pose_keypoints=kp)  # a padded step may be NaN
    with pytest.raises(ValueError, match="NaN at a real time step"):
        head(f, None, pose_keypoints=kp)
    with pytest.raises(ValueError, match="exactly one keypoint input"):
        head(f, None, pose_keypoints=kp, actor_keypoints=kp)


def test_registry_rows_and_paper_numbers():
    assert E.get_method("posemask").inputs == ("pose_keypoints",)
    assert E.get_method("posemask_oracle").inputs == ("actor_keypoints",)
    assert E.get_method("posemask").params == {"sigma": SIGMA, "threshold": THRESHOLD, "min_score": MIN_SCORE}
    assert E.paper_map("ActionThread", "posemask", "rgb") == 46.0
    assert E.paper_map("ActionThread", "posemask", "rgb+flow") == 53.2
    assert np.isnan(E.paper_map("ActionThread", "posemask_oracle", "rgb"))

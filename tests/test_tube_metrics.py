"""Frame-AP, tube IoU, video-AP and tube linking on hand-made cases (actx.tube_metrics)."""

import math

import numpy as np
import pandas as pd
import pytest

from actx.metrics import Tube, frame_ap, link_tubes, tube_iou, video_ap


def _gt(rows):
    return pd.DataFrame(rows, columns=["video", "frame", "label", "x1", "y1", "x2", "y2"])


def _det(rows):
    return pd.DataFrame(rows, columns=["video", "frame", "label", "score", "x1", "y1", "x2", "y2"])


def test_frame_ap_perfect_and_ranked():
    gt = _gt([("v", 0, "a", 0, 0, 10, 10), ("v", 1, "a", 0, 0, 10, 10), ("v", 1, "b", 20, 20, 30, 30)])
    det = _det([("v", 0, "a", 0.9, 0, 0, 10, 10), ("v", 1, "a", 0.8, 0, 0, 10, 10),
                ("v", 1, "b", 0.7, 20, 20, 30, 30)])
    assert frame_ap(det, gt)["mAP"] == 1.0
    # a false positive ranked first: precisions 0, 1/2, 2/3 at recalls 0, 1/2, 1; the envelope lifts 1/2 to 2/3
    det2 = pd.concat([det, _det([("v", 0, "a", 0.95, 50, 50, 60, 60)])], ignore_index=True)
    assert frame_ap(det2, gt)["per_class"]["a"] == pytest.approx(2 / 3)
    # ranked last instead: full recall at precision 1 first
    det2.loc[3, "score"] = 0.1
    assert frame_ap(det2, gt)["per_class"]["a"] == 1.0


def test_frame_ap_each_gt_matched_once_and_greedy_to_free_box():
    gt = _gt([("v", 0, "a", 0, 0, 10, 10), ("v", 0, "a", 2, 0, 12, 10)])
    # both detections overlap the first box best; the second still matches the free second box (IoU 0.67)
    det = _det([("v", 0, "a", 0.9, 0, 0, 10, 10), ("v", 0, "a", 0.8, 0, 0, 10, 10)])
    assert frame_ap(det, gt)["mAP"] == 1.0
    # a duplicate of one box with only one gt box: the second is a false positive
    det1 = _det([("v", 0, "a", 0.9, 0, 0, 10, 10), ("v", 0, "a", 0.8, 0, 0, 10, 10)])
    assert frame_ap(det1, gt.iloc[:1])["mAP"] == 1.0  # the FP comes after full recall
    det1.loc[0, "score"] = 0.1
    assert frame_ap(det1, gt.iloc[:1])["mAP"] == 1.0


def test_frame_ap_threshold_other_frame_and_missing_class():
    gt = _gt([("v", 0, "a", 0, 0, 10, 10), ("v", 0, "b", 0, 0, 10, 10)])
    det = _det([("v", 0, "a", 0.9, 5, 0, 15, 10),  # IoU 1/3 < 0.5
                ("v", 1, "b", 0.9, 0, 0, 10, 10)])  # right box, wrong frame
    out = frame_ap(det, gt)
    assert out["per_class"] == {"a": 0.0, "b": 0.0}
    assert frame_ap(det, gt, iou=0.3)["per_class"]["a"] == 1.0
    out = frame_ap(det, gt, classes=["a", "b", "c"])
    assert math.isnan(out["per_class"]["c"]) and out["mAP"] == 0.0
    with pytest.raises(ValueError, match="lacks columns"):
        frame_ap(det.drop(columns="score"), gt)


def test_tube_iou_hand_made():
    box = [0, 0, 10, 10]
    t1 = Tube("v", "a", [0, 1, 2, 3], [box] * 4)
    assert tube_iou(t1, t1) == 1.0
    t2 = Tube("v", "a", [2, 3, 4, 5], [box, [0, 0, 10, 5], box, box])
    # temporal IoU 2 / 6; spatial IoU over frames 2, 3: (1 + 0.5) / 2
    assert tube_iou(t1, t2) == pytest.approx(2 / 6 * 0.75)
    assert tube_iou(t1, Tube("v", "a", [4, 5], [box, box])) == 0.0
    with pytest.raises(ValueError, match="strictly increasing"):
        Tube("v", "a", [1, 1], [box, box])


def test_video_ap_matches_tubes():
    box = [0, 0, 10, 10]
    gt = [Tube("v1", "a", [0, 1, 2], [box] * 3), Tube("v2", "a", [0, 1, 2], [box] * 3)]
    det = [Tube("v1", "a", [0, 1, 2], [box] * 3, 0.9), Tube("v1", "a", [0, 1, 2], [box] * 3, 0.8),
           Tube("v2", "a", [0, 1, 2], [[20, 20, 30, 30]] * 3, 0.7)]
    # ranking: TP, FP (gt already matched), FP -> AP = 1 * 1/2
    assert video_ap(det, gt)["mAP"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="finite score"):
        video_ap([Tube("v1", "a", [0], [box])], gt)


def test_link_tubes_follows_overlap_over_score():
    # frame 0: box A (0.9); frame 1: box A' overlapping (0.5) and a far box B (0.6); frame 2: A'' (0.9)
    det = _det([("v", 0, "a", 0.9, 0, 0, 10, 10),
                ("v", 1, "a", 0.5, 1, 0, 11, 10), ("v", 1, "a", 0.6, 50, 50, 60, 60),
                ("v", 2, "a", 0.9, 2, 0, 12, 10)])
    (tube,) = link_tubes(det)
    np.testing.assert_array_equal(tube.frames, [0, 1, 2])
    np.testing.assert_allclose(tube.boxes[1], [1, 0, 11, 10])
    assert tube.score == pytest.approx((0.9 + 0.5 + 0.9) / 3)
    # without the overlap term the higher-scoring far box wins
    (greedy,) = link_tubes(det, lam=0.0)
    np.testing.assert_allclose(greedy.boxes[1], [50, 50, 60, 60])
    two = link_tubes(det, tubes_per_class=2)
    assert len(two) == 2 and list(two[1].frames) == [1]

"""actx.metrics: AP against scikit-learn, accuracies, grounding metrics on actor masks, AVA frame-mAP."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score

from actx import metrics


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.3
    labels[0] = True
    scores = np.round(rng.random(60) + 0.5 * labels, 1)  # rounding makes many ties
    assert metrics.average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores))


def test_average_precision_hand_value_and_tie_order_independence():
    # ranks: +, -, + -> AP = 1/2 * 1 + 1/2 * 2/3
    assert metrics.average_precision([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx(0.5 + 1 / 3)
    s, y = np.array([0.5, 0.5, 0.5, 0.1]), np.array([1, 0, 0, 1])
    perm = [2, 1, 3, 0]
    assert metrics.average_precision(s, y) == metrics.average_precision(s[perm], y[perm])
    assert metrics.average_precision(torch.tensor(s), torch.tensor(y)) == metrics.average_precision(s, y)


def test_average_precision_rejects_no_positive_and_nan():
    with pytest.raises(ValueError, match="no positive"):
        metrics.average_precision([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.average_precision([np.nan, 0.2], [1, 0])


def test_mean_average_precision_matches_sklearn_and_skips_empty_classes():
    rng = np.random.default_rng(7)
    labels = rng.random((40, 4)) < 0.4
    labels[0] = True
    scores = rng.random((40, 4)) + labels
    ref = average_precision_score(labels, scores, average="macro")
    assert metrics.mean_average_precision(scores, labels) == pytest.approx(ref)
    labels[:, 2] = False
    with pytest.warns(UserWarning, match=r"\[2\]"):
        got = metrics.mean_average_precision(scores, labels)
    keep = [0, 1, 3]
    assert got == pytest.approx(average_precision_score(labels[:, keep], scores[:, keep], average="macro"))
    assert np.isnan(metrics.per_class_average_precision(scores, labels)[2])


def test_accuracies():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7]])
    labels = np.array([0, 1, 1, 2])
    assert metrics.top_k_accuracy(scores, labels, 1) == pytest.approx(0.5)  # sample 2: tie goes to class 0
    assert metrics.top_k_accuracy(scores, labels, 2) == pytest.approx(1.0)
    assert metrics.mean_class_accuracy(scores, labels) == pytest.approx((1 + 0 + 1) / 3)
    onehot = np.eye(3)[labels]
    assert metrics.mean_class_accuracy(scores, onehot) == metrics.mean_class_accuracy(scores, labels)
    multi = np.vstack([onehot, np.zeros(3)])  # a negative sample is left out of top-k
    assert metrics.top_k_accuracy(np.vstack([scores, np.ones(3)]), multi, 1) == pytest.approx(0.5)


def test_mask_to_grid_fractions():
    mask = np.zeros((8, 8, 12))
    mask[:4, :4, :4] = 1  # top-left cell, first half of the frames
    mask[4:, 0, 0] = 1  # 1 pixel of the top-left cell in the second half
    grid = metrics.mask_to_grid(mask, (2, 2, 3), time_stride=4)
    assert grid.shape == (2, 2, 3)
    assert grid[0, 0, 0] == 1.0 and grid[1, 0, 0] == pytest.approx(1 / 16)
    assert grid.sum() == pytest.approx(1 + 1 / 16)
    # A partial last step (T = 6, stride 4) and a stride-defined grid with a partial last cell (10 = 4 + 4 +
    # 2).
    m = np.ones((6, 10, 10))
    m[:, 8:, :] = 0
    g = metrics.mask_to_grid(m, (2, 3, 3), time_stride=4, space_stride=4)
    assert g[:, 2, 0].tolist() == [0.0, 0.0] and g[:, 1, 1].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="frames"):
        metrics.mask_to_grid(m, (3, 3, 3), time_stride=4)


def test_uniform_maps_score_the_actor_area_fraction():
    actor = np.zeros((2, 3, 4, 5))
    actor[0, :, 1:3, 1:4] = 1  # 6 of 20 cells
    actor[1, :, 0, :] = 1  # 5 of 20 cells
    ones = np.ones_like(actor)
    mask = np.array([[True, True, True], [True, True, False]])
    res = metrics.grounding_metrics(ones / 60, ones, actor, mask, per_sample=True)
    assert np.allclose(res["actor_fraction"], [0.3, 0.25])
    assert np.allclose(res["action_in_actor"], res["actor_fraction"])
    assert np.allclose(res["pointing"], res["actor_fraction"])
    assert np.allclose(res["context_on_background"], 1 - res["actor_fraction"])
    mean = metrics.grounding_metrics(ones, ones, actor, mask)
    assert mean["action_in_actor"] == pytest.approx(0.275) and mean["n"] == 2


def test_perfect_and_wrong_maps():
    actor = np.zeros((1, 2, 4, 4))
    actor[0, :, :2, :2] = 0.5  # half-covered cells
    s = actor.copy()
    c = 1 - (actor > 0)
    res = metrics.grounding_metrics(s, c, actor)
    assert res["pointing"] == 1.0 and res["context_on_background"] == 1.0
    assert res["action_in_actor"] == pytest.approx(0.5)  # mass-weighted by coverage
    wrong = metrics.grounding_metrics(c, None, actor)
    assert wrong["pointing"] == 0.0 and wrong["action_in_actor"] == 0.0
    assert np.isnan(wrong["context_on_background"])
    with pytest.raises(ValueError, match="grid"):
        metrics.grounding_metrics(s, c, actor[:, :, :2])


# --- detection: box IoU and AVA frame-mAP ------------------------------------------------------------------


def test_box_iou_values_and_disjoint_boxes():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], dtype=float)
    b = np.array([[1, 1, 3, 3], [2, 0, 4, 2], [5, 5, 6, 6], [0, 0, 2, 2]], dtype=float)
    got = metrics.box_iou(a, b)
    assert got.shape == (2, 4)
    assert got[0, 0] == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 - 1
    assert got[0, 1] == 0.0 and got[0, 2] == 0.0 and got[1, 0] == 0.0  # touching or disjoint: exactly 0
    assert got[0, 3] == 1.0 and got[1, 3] == pytest.approx(0.25)
    assert metrics.box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    assert metrics.box_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0  # two empty boxes: no NaN
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        metrics.box_iou(np.zeros((2, 3)), b)


BOX = (0.1, 0.1, 0.5, 0.5)
OTHER = (0.6, 0.6, 0.9, 0.9)  # disjoint from BOX


def gt_frame(*rows):
    """rows of (video, frame, label, box) -> gt DataFrame."""
    return pd.DataFrame([(v, f, lab, *box) for v, f, lab, box in rows],
                        columns=["video", "frame", "label", "x1", "y1", "x2", "y2"])


def det_frame(*rows):
    """rows of (video, frame, label, score, box) -> detections DataFrame."""
    return pd.DataFrame([(v, f, lab, s, *box) for v, f, lab, s, box in rows],
                        columns=["video", "frame", "label", "score", "x1", "y1", "x2", "y2"])


def test_ava_frame_map_perfect_and_first_ranked_false_positive():
    gt = gt_frame(("v", 902, "stand", BOX), ("v", 903, "stand", BOX), ("v", 903, "sit", OTHER))
    perfect = det_frame(("v", 902, "stand", 0.9, BOX), ("v", 903, "stand", 0.8, BOX),
                        ("v", 903, "sit", 0.7, OTHER))
    res = metrics.ava_frame_map(perfect, gt)
    assert res == {"per_class": {"sit": 1.0, "stand": 1.0}, "mAP": 1.0}
    # a false positive ranked first, then two hits: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; the VOC
    # envelope lifts the first step to 2/3, so AP = 2/3 (the non-interpolated AP: 1/2 * 1/2 + 1/2 * 2/3)
    fp_first = pd.concat([det_frame(("v", 902, "stand", 0.95, OTHER)), perfect], ignore_index=True)
    res = metrics.ava_frame_map(fp_first, gt)
    assert res["per_class"]["stand"] == pytest.approx(2 / 3) and res["per_class"]["sit"] == 1.0
    assert res["mAP"] == pytest.approx((2 / 3 + 1) / 2)


def test_ava_frame_map_excluded_key_frame_is_skipped():
    gt = gt_frame(("v", 902, "stand", BOX), ("v", 905, "stand", BOX))
    det = det_frame(("v", 904, "stand", 0.99, BOX), ("v", 902, "stand", 0.9, BOX))
    # 904 has no ground truth: its detection is a false positive ranked first; 905's box is missed
    assert metrics.ava_frame_map(det, gt)["mAP"] == pytest.approx(0.5 * 0.5)
    assert metrics.ava_frame_map(det, gt, excluded={("v", 904), ("v", 905)})["mAP"] == 1.0
    assert metrics.ava_frame_map(det, gt, excluded=[("v", "0904"), ("v", 905.0)])["mAP"] == 1.0


def test_ava_frame_map_matching_rules():
    near = (0.1, 0.1, 0.5, 0.45)  # IoU 0.875 with BOX
    gt = gt_frame(("v", 1, "a", BOX), ("v", 1, "a", (0.1, 0.3, 0.5, 0.7)))  # second box: IoU 1/3 with BOX
    # both detections overlap BOX most; the second finds it taken and is a false positive although it
    # overlaps the free box by 0.57: TP, FP -> precision 1, 1/2 at recall 1/2 -> AP 1/2
    det = det_frame(("v", 1, "a", 0.9, near), ("v", 1, "a", 0.8, (0.1, 0.19, 0.5, 0.59)))
    overlaps = metrics.box_iou([det.iloc[1, 4:].tolist()], gt.iloc[:, 3:].to_numpy())
    assert overlaps.round(2).tolist() == [[0.63, 0.57]]
    assert metrics.ava_frame_map(det, gt)["mAP"] == pytest.approx(0.5)
    # within a frame the higher score matches first, whatever the row order; an empty box is dropped, not a FP
    swapped = det_frame(("v", 1, "a", 0.8, (0.1, 0.3, 0.5, 0.7)), ("v", 1, "a", 0.9, near),
                        ("v", 1, "a", 0.99, (0.5, 0.5, 0.5, 0.9)))
    assert metrics.ava_frame_map(swapped, gt)["mAP"] == 1.0
    # below the IoU threshold: a miss; a stricter threshold turns the near hit into a false positive
    assert metrics.ava_frame_map(det_frame(("v", 1, "a", 0.9, near)), gt, iou=0.9)["mAP"] == 0.0


def test_ava_frame_map_class_subset_cap_and_ties():
    gt = gt_frame(("v", 1, "a", BOX), ("v", 1, "b", OTHER), ("v", 2, "c", BOX))
    det = det_frame(("v", 1, "a", 0.9, BOX), ("v", 1, "b", 0.2, BOX), ("v", 1, "z", 0.99, BOX))
    res = metrics.ava_frame_map(det, gt, classes=["a", "b", "d"])  # "c" is not evaluated, "d" has no gt
    assert list(res["per_class"]) == ["a", "b", "d"] and math.isnan(res["per_class"]["d"])
    assert res["per_class"]["a"] == 1.0 and res["per_class"]["b"] == 0.0 and res["mAP"] == 0.5
    # only the max_per_frame best detections of a key frame count: the low-scoring hit of "b" is cut
    many = det_frame(("v", 1, "b", 0.1, OTHER), *[("v", 1, "a", 0.5 + k / 100, OTHER) for k in range(3)])
    ab = ["a", "b"]
    assert metrics.ava_frame_map(many, gt, classes=ab)["per_class"]["b"] == 1.0
    assert metrics.ava_frame_map(many, gt, classes=ab, max_per_frame=3)["per_class"]["b"] == 0.0
    # the class subset applies first: detections of classes not evaluated take no place in the cap
    assert metrics.ava_frame_map(many, gt, classes=["b"], max_per_frame=3)["mAP"] == 1.0
    # equal scores keep their row order: FP then TP gives 1/2, TP then FP gives 1
    tie = det_frame(("v", 1, "a", 0.5, OTHER), ("v", 1, "a", 0.5, BOX))
    assert metrics.ava_frame_map(tie, gt, classes=["a"])["mAP"] == 0.5
    assert metrics.ava_frame_map(tie.iloc[::-1], gt, classes=["a"])["mAP"] == 1.0


def test_ava_frame_map_errors():
    gt = gt_frame(("v", 1, "a", BOX))
    with pytest.raises(ValueError, match=r"det lacks columns \['score'\]"):
        metrics.ava_frame_map(gt, gt)
    with pytest.raises(ValueError, match="whole numbers"):
        metrics.ava_frame_map(det_frame(("v", 1.5, "a", 0.9, BOX)), gt)
    with pytest.raises(ValueError, match="has a ground-truth box"):
        metrics.ava_frame_map(det_frame(("v", 1, "a", 0.9, BOX)), gt, excluded={("v", 1)})

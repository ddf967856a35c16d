"""actx.metrics: AP against scikit-learn, accuracies, and grounding metrics on actor masks."""

import numpy as np
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

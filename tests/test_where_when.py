"""Paper 003's model (actx.models.where_when), Sharma et al.'s soft-attention LSTM, the localisation measures
(actx.localisation), per-frame feature extraction (time_pool="middle") and the Moments in Time adapter."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import actx.experiments as E
from actx import localisation as L
from actx.data import load_dataset
from actx.data.records import AnnotationError
from actx.experiments import where_when as WW
from actx.features import middle_frames
from actx.features.extract import extraction_config, store_root
from actx.metrics import box_iou
from actx.models import soft_attention_lstm, where_when as W
from actx.train import TrainSettings, checkpoint
from test_experiments import _cfg, _run, bench  # noqa: F401 (bench is a fixture)


# --- regularisers against hand-computed values ------------------------------------------------------------------
def test_total_variation_by_hand():
    m = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])  # (1, 1, 2, 2)
    # rows: |0.5 - 0| + |0.5 - 1| = 1; columns: |1 - 0| + |0.5 - 0.5| = 1
    assert W.total_variation(m).item() == pytest.approx(2.0)
    two = torch.cat([m, torch.zeros(1, 1, 2, 2)], 1)  # a flat second frame adds nothing; frames are summed
    assert W.total_variation(two).item() == pytest.approx(2.0)
    assert W.total_variation(torch.cat([m, m])).item() == pytest.approx(2.0)  # batch mean


def test_contrast_by_hand():
    m = torch.tensor([[[[0.8, 0.2]]]])  # B = [1, 0]: (-0.5 * 0.8 + 0.5 * 0.2) / 2 cells = -0.15
    assert W.contrast(m).item() == pytest.approx(-0.15)
    assert W.contrast(torch.cat([m, m], 1)).item() == pytest.approx(-0.3)  # summed over frames
    m.requires_grad_(True)
    W.contrast(m).backward()
    assert torch.allclose(m.grad, torch.tensor([[[[-0.25, 0.25]]]]))  # no gradient through B


def test_unimodality_by_hand_and_the_authors_variant():
    uni = torch.tensor([[[0.1, 0.3, 0.6]]])  # log-concave: 0.1 * 0.6 - 0.09 < 0
    assert W.unimodality(uni).item() == 0.0
    bi = torch.tensor([[[0.4, 0.2, 0.4]]])  # 0.16 - 0.04 = 0.12
    assert W.unimodality(bi).item() == pytest.approx(0.12)
    assert W.unimodality(bi, "authors").item() == pytest.approx(math.sqrt(0.12))
    both = torch.tensor([[[0.4, 0.2, 0.4], [0.1, 0.3, 0.6]]], requires_grad=True)  # (1, T=2, n=3)
    W.unimodality(both, "authors").backward()
    assert torch.isfinite(both.grad).all() and torch.all(both.grad[0, 1] == 0)  # a zero hinge: no gradient
    assert W.unimodality(torch.rand(2, 3, 2)).item() == 0.0  # fewer than 3 frames: nothing to compare
    with pytest.raises(ValueError, match="variant"):
        W.unimodality(bi, "sqrt")


# --- the ConvLSTM cell and the head ----------------------------------------------------------------------------
def test_convlstm_cell_shapes_and_gradients():
    torch.manual_seed(0)
    cell = W.ConvLSTMCell(5, 7)
    y = torch.randn(2, 5, 3, 4, requires_grad=True)
    h, c = torch.zeros(2, 7, 3, 4), torch.zeros(2, 7, 3, 4)
    for _ in range(3):
        h, c = cell(y, (h, c))
    assert h.shape == c.shape == (2, 7, 3, 4) and bool((h.abs() < 1).all())
    h.sum().backward()
    assert y.grad.abs().sum() > 0 and cell.gates.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="does not fit"):
        cell(y, (torch.zeros(2, 6, 3, 4), torch.zeros(2, 6, 3, 4)))


def test_sample_steps_spreads_frames_over_the_real_steps():
    mask = torch.tensor([[True] * 10, [True] * 4 + [False] * 6])
    idx = W.sample_steps(mask, 5)
    assert idx.tolist() == [[1, 3, 5, 7, 9], [0, 1, 2, 2, 3]]  # floor((i + 1/2) L / n); padding never chosen


def test_head_outputs_and_the_energy_of_h_cancelling():
    torch.manual_seed(0)
    head = W.WhereWhenHead(16, 3, frames=4, hidden=8, mask_widths=(8, 4), in_dim=8).eval()
    f = torch.randn(2, 16, 6, 3, 4)
    mask = torch.tensor([[True] * 6, [True] * 5 + [False]])
    out = head(f, mask)
    assert out["logits"].shape == (2, 3) and out["S"].shape == (2, 6, 3, 4) and out["w"].shape == (2, 4, 4)
    assert bool((out["S"][1, 5] == 0).all()) and bool(((out["S"][0] > 0) & (out["S"][0] < 1)).all())
    assert torch.allclose(out["w"].sum(-1), torch.ones(2, 4))
    # 003 Eq. 2: Phi_h(H_{t-1}) is the same for every frame, so softmax_i removes it: w_t is equal for all t
    assert torch.allclose(out["w"][:, 0], out["w"][:, 3], atol=1e-6)
    assert head(f, mask, n_frames=6)["w"].shape == (2, 6, 6)
    off = W.WhereWhenHead(16, 3, frames=4, hidden=8, in_dim=8, spatial=False, temporal=False).eval()(f, mask)
    assert bool((off["S"][0] == 1).all()) and torch.equal(off["w"][0], torch.eye(4))


def test_the_objective_has_every_term_and_the_ablations_drop_theirs():
    torch.manual_seed(0)
    batch = {"f": torch.randn(3, 16, 5, 3, 4), "mask": torch.ones(3, 5, dtype=torch.bool),
             "y": torch.eye(3)}
    small = {"hidden": 8, "mask_widths": (8, 4), "in_dim": 8}
    for name, zero in (("where_when", None), ("where_when_no_tv", "tv"), ("where_when_no_contrast", "contrast"),
                       ("where_when_no_unimodal", "unimodal"), ("where_when_no_spatial", "tv")):
        spec = E.get_method(name)
        head = spec.make_head(16, 3, params=small)
        parts = spec.make_objective(small)(head, batch)
        p = spec.resolve(small)
        expected = (parts["class"] + p["tv_weight"] * parts["tv"] + p["contrast_weight"] * parts["contrast"]
                    + p["unimodal_weight"] * parts["unimodal"])
        assert torch.allclose(parts["loss"], expected)
        if zero is None:
            assert parts["tv"] > 0 and parts["contrast"] != 0
        else:
            assert parts[zero] == 0, name
        parts["loss"].backward()
    assert E.get_method("where_when_no_temporal").params["temporal"] is False
    assert E.get_method("where_when").features == {"time_stride": 4, "time_pool": "middle",
                                                   "backbone": "efficientnet_lite0", "frames_per_step": None}


def test_soft_attention_lstm_attends_per_sampled_step():
    torch.manual_seed(0)
    head = soft_attention_lstm.SoftAttentionLSTM(16, 3, frames=3, hidden=8, in_dim=8, att_dim=8).eval()
    out = head(torch.randn(2, 16, 6, 3, 4), torch.ones(2, 6, dtype=torch.bool))
    assert out["att"].shape == (2, 3, 12) and torch.allclose(out["att"].sum(-1), torch.ones(2, 3))
    assert out["S"].shape == (2, 6, 3, 4) and bool((out["S"][:, 0] == 0).all())  # step 0 is not sampled
    assert torch.allclose(out["S"].sum((2, 3)).sum(1), torch.full((2,), 3.0))
    att = torch.full((1, 2, 4), 0.5)  # every cell gets 1 over the steps: no penalty
    assert soft_attention_lstm.attention_penalty(att).item() == 0.0


# --- the method's run: own fit on whole clips, exact resume, run folder ----------------------------------------------
class _Clips(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.f = torch.randn(6, 16, 5, 2, 3, generator=g)

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"f": self.f[i], "y": torch.eye(3)[i % 3], "index": i}


def test_own_fit_uses_the_method_schedule_and_resumes_exactly(tmp_path):
    params = {**W.PARAMS, "hidden": 8, "mask_widths": (8, 4), "in_dim": 8, "epochs": 2, "batch_size": 3}
    settings = TrainSettings(epochs=7, lr=0.5, crop=2, batch_size=5)
    torch.manual_seed(0)
    head = W.build_head(16, 3, params)
    history = W.fit(head, W.build_objective(params, False), _Clips(), settings, tmp_path / "a")
    assert [r["epoch"] for r in history.rows] == [1, 2] and history.rows[0]["lr"] == params["lr"]
    assert {"tv", "contrast", "unimodal"} <= set(history.rows[0])
    torch.manual_seed(0)
    once = W.build_head(16, 3, {**params, "epochs": 1})
    W.fit(once, W.build_objective(params, False), _Clips(), settings, tmp_path / "b")
    again = W.build_head(16, 3, params)
    W.fit(again, W.build_objective(params, False), _Clips(), settings, tmp_path / "b")  # resumes epoch 2
    a, b = checkpoint.load(tmp_path / "a" / "final.pt")["model"], checkpoint.load(tmp_path / "b" / "final.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_method_trained_by_the_sequence_fit_declares_its_schedule():
    # where_when.fit trains with the head's own schedule; the registry row must name the same one, or the run's
    # recipe would record the profile's settings instead of those it trained with
    rows = [m for m in E.METHODS.values() if m.fit is W.fit]
    assert {m.name for m in rows} >= {"where_when", "where_when_s16", "soft_attention_lstm"}
    for m in rows:
        assert m.schedule is m.package.schedule, f"{m.name}: Method(schedule=...) missing"


def test_a_where_when_run_writes_the_run_folder(tmp_path, bench):
    cfg = _cfg(tmp_path)
    small = {"hidden": 8, "mask_widths": (8, 4), "in_dim": 8, "epochs": 2, "batch_size": 4, "frames": 3}
    result = _run(cfg, bench, "where_when", params=small)
    assert {"final.pt", "metrics.csv", "predictions.npz", "metrics.json"} <= {p.name for p in result.path.iterdir()}
    assert result.maps["test"]["S"].shape[1] == result.maps["test"]["mask"].shape[1]
    assert list(result.history["epoch"]) == [1, 2] and "unimodal" in result.history
    assert result.recipe["params"]["epochs"] == 2 and isinstance(E.load_run(result.path).head, W.WhereWhenHead)
    # the recipe records the schedule the run trained with (the method's own), not the profile's
    settings = result.recipe["settings"]
    trained = (settings["epochs"], settings["batch_size"], settings["lr"], settings["crop"])
    assert trained == (2, 4, W.PARAMS["lr"], None)
    assert (settings["lr"], settings["crop"]) != (cfg.train["lr"], cfg.train["crop"])
    assert E.train_settings(cfg, "where_when", params=small).epochs == 2
    assert E.train_settings(cfg, "soft_attention_lstm").epochs == soft_attention_lstm.PARAMS["epochs"]
    # how open the masks are, and each loss term's pull on them
    stats = WW.mask_stats(result, "test")
    cells = result.maps["test"]["S"][result.maps["test"]["mask"]]
    assert stats == {"mean": pytest.approx(cells.mean()), "above_0.5": pytest.approx((cells > 0.5).mean())}
    before = {k: v.clone() for k, v in result.head.state_dict().items()}
    pulls = WW.mask_pulls(cfg, result, bench["records"]["train"], clips=4, store=bench["store"])
    assert all(torch.equal(before[k], v) for k, v in result.head.state_dict().items())  # the run's head untouched
    assert list(pulls.index) == [(s, t) for s in ("initial", "trained")
                                 for t in ("cross-entropy", "1e-05 x TV", "0.0001 x contrast")]
    # contrast (Eq. 9): every cell's gradient is +-1/2 over the cells of a frame, over the batch, times the weight
    h, w = result.maps["test"]["S"].shape[2:]
    assert pulls.loc[("trained", "0.0001 x contrast"), "mean |dL/dM|"] == pytest.approx(1e-4 * 0.5 / (h * w * 4))
    assert (pulls["mean |dL/dM|"] > 0).all()


# --- localisation -----------------------------------------------------------------------------------------------
def test_disjoint_boxes_have_zero_iou_where_the_authors_script_gave_a_positive_one():
    a, b = [0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]  # apart on both axes: both overlaps are -1
    assert L.naive_iou(a, b) > 0  # (-1) * (-1) = 1: the bug
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == 0.0
    assert L.box_hits(np.array(a), np.array([b])) == 0.0
    assert L.box_hits(np.array(a), np.array([[0, 0, 1, 2], [0, 0, 0, 0]])) == pytest.approx(0.5)
    assert L.box_hits(None, np.array([a])) == 0.0


def test_mask_box_takes_the_largest_component():
    m = np.zeros((4, 6))
    m[1:3, 3:5] = 1.0  # a 2 x 2 block
    m[0, 0] = 1.0  # a stray cell
    box = L.mask_box(m, upsample=1)
    np.testing.assert_allclose(box, [3 / 6, 1 / 4, 5 / 6, 3 / 4])
    assert L.mask_box(np.zeros((4, 6))) is None
    acc = L.localisation_accuracy([0.0, 0.06, 0.5], (0.05, 0.3))
    assert acc == {0.05: pytest.approx(2 / 3), 0.3: pytest.approx(1 / 3)}


def _masks_run(masks, windows, step_mask):
    """A where_when RunResult on split "test" with hand-made masks S (N, T, 4, 6); two classes, each clip of
    class "a" with probability 0.9."""
    n = len(masks)
    return E.RunResult("where_when", "rgb", 0, None, ("a", "b"), {"test": {"top1": 1.0}},
                       {"test": np.tile([0.9, 0.1], (n, 1))}, {"test": np.tile([1.0, 0.0], (n, 1))},
                       {"test": [f"c{i}" for i in range(n)]}, {"test": np.array(windows)},
                       {"test": {"S": np.array(masks, np.float32), "mask": np.array(step_mask, bool)}}, 1)


def test_spatial_localisation_boxes_the_largest_component_and_scores_disjoint_boxes_zero(tmp_path, monkeypatch):
    """The mask -> box -> IoU path of WW.spatial_localisation on hand-made masks and actor boxes: the threshold,
    the largest connected component, the window's offset into the clip's steps, padding steps left out, and
    boxes that do not overlap (on one axis, and on both: the authors' script gave that case a positive IoU)."""
    from types import SimpleNamespace

    stride = W.TIME_STRIDE
    top_left = [0.0, 0.0, 2 / 6, 2 / 4]  # the box of cells rows 0-1, cols 0-1 of a 4 x 6 grid
    bottom_right = [4 / 6, 3 / 4, 1.0, 1.0]  # row 3, cols 4-5: apart from top_left on both axes
    top_right = [4 / 6, 0.0, 1.0, 2 / 4]  # rows 0-1, cols 4-5: beside top_left in x, level in y
    steps = {"c0": [[top_left, [0, 0, 0, 0]], [top_left, [0, 0, 0, 0]], [top_left, [0, 0, 0, 0]]],
             # c1's window starts at frame `stride`: its first step is the clip's step 1
             "c1": [[top_left, [0, 0, 0, 0]], [top_left, [0, 0, 0, 0]], [top_left, [0, 0, 0, 0]]]}

    def boxes(rec, total, time_stride):
        assert time_stride == stride and total == -(-rec.extra["frames"] // stride)
        return np.array(steps[rec.id], np.float32)[:total]  # (T, A, 4): an all-zero row is no actor

    monkeypatch.setitem(WW.INPUTS, "actor_boxes", boxes)
    block = np.zeros((4, 6))
    block[0:2, 0:2] = 0.98  # the actor's block (values above 8/9 keep its edges on the cell edges, upsampled)
    block[3, 2] = 0.98  # a stray cell, a component of its own
    faint = np.full((4, 6), 0.4)  # under the threshold everywhere: no box
    far = np.zeros((4, 6))
    far[3, 4:6] = 0.96  # bottom right: disjoint from the actor on both axes
    beside = np.zeros((4, 6))
    beside[0:2, 4:6] = 0.94  # top right: disjoint in x only
    late = np.where(block > 0, 0.92, 0.0)  # the actor's block again, scored lowest
    run = _masks_run([[block, faint, far], [beside, late, block]], [[0, 3 * stride], [stride, 3 * stride]],
                     [[True, True, True], [True, True, False]])  # c1's third step is padding
    records = [SimpleNamespace(id="c0", extra={"frames": 3 * stride}),
               SimpleNamespace(id="c1", extra={"frames": 3 * stride})]
    out = WW.spatial_localisation(_cfg(tmp_path), run, "test", records)
    table = out["per_frame"]
    assert list(zip(table["clip"], table["step"])) == [("c0", 0), ("c0", 1), ("c0", 2), ("c1", 0), ("c1", 1)]
    assert list(table["box"]) == [True, False, True, True, True]
    np.testing.assert_allclose(table["iou"], [1.0, 0.0, 0.0, 0.0, 1.0], atol=1e-6)
    assert (table["iou"][[2, 3]] == 0.0).all()  # exactly 0, where the unclipped product is positive for `far`
    assert L.naive_iou(bottom_right, top_left) > 0 and L.naive_iou(top_right, top_left) <= 0
    # the boxes' areas: the stray cell of `block` is left out (largest component only)
    np.testing.assert_allclose(table["area"], [1 / 6, 0.0, 1 / 12, 1 / 6, 1 / 6], atol=1e-6)
    assert out["accuracy"] == {a: pytest.approx(2 / 5) for a in L.SPATIAL_IOUS}
    # the threshold: at 0.95 only the masks that reach above it (0.98, 0.96) give boxes; above every value, none
    assert list(WW.spatial_localisation(_cfg(tmp_path), run, "test", records, 0.95)["per_frame"]["box"]) == [
        True, False, True, False, False]
    high = WW.spatial_localisation(_cfg(tmp_path), run, "test", records, threshold=0.99)
    assert not high["per_frame"]["box"].any() and high["accuracy"] == {a: 0.0 for a in L.SPATIAL_IOUS}
    # frame mAP: class a has 5 actor boxes; its 4 boxes ranked by 0.9 x confidence (the component's mean value;
    # the one-row `far` has the lowest, its cells all on an edge): block hit, beside miss, late hit, far miss ->
    # precision 1 at recall 1/5, 2/3 at recall 2/5: AP (1 + 2/3) / 5 (class b has no ground truth: not averaged)
    conf = [L.scored_mask_box(m)[1] for m in (block, beside, late, far)]
    assert conf == sorted(conf, reverse=True)
    assert out["mAP"] == {a: pytest.approx((1 + 2 / 3) / 5) for a in L.SPATIAL_IOUS}


def test_scored_box_and_frame_map_by_hand():
    m = np.zeros((4, 6))
    m[1:3, 3:5] = 0.8
    box, confidence = L.scored_mask_box(m, upsample=1)
    np.testing.assert_allclose(box, [3 / 6, 1 / 4, 5 / 6, 3 / 4])
    assert confidence == pytest.approx(0.8)
    assert L.scored_mask_box(np.zeros((4, 6))) == (None, 0.0)
    cols = ["video", "frame", "label", "x1", "y1", "x2", "y2"]
    gt = pd.DataFrame([("v", 0, "a", 0.0, 0.0, 0.5, 0.5), ("v", 1, "a", 0.0, 0.0, 0.5, 0.5)], columns=cols)
    det = pd.DataFrame([("v", 0, "a", 0.9, 0.0, 0.0, 0.5, 0.5),  # a hit
                        ("v", 1, "a", 0.8, 0.5, 0.5, 1.0, 1.0),  # disjoint: a miss at every alpha
                        ("v", 1, "b", 0.7, 0.0, 0.0, 0.5, 0.5)],  # class b has no ground truth: not averaged
                       columns=cols[:3] + ["score"] + cols[3:])
    # class a: precision 1 at recall 1/2, then nothing: VOC AP 0.5
    assert L.frame_map(det, gt, (0.05, 0.3)) == {0.05: pytest.approx(0.5), 0.3: pytest.approx(0.5)}
    # a box of IoU 0.25 with the ground truth is a hit at 0.2, not at 0.3
    det.loc[1, ["x1", "y1", "x2", "y2"]] = [0.0, 0.0, 0.5, 0.125]
    assert L.frame_map(det, gt, (0.2, 0.3)) == {0.2: pytest.approx(1.0), 0.3: pytest.approx(0.5)}


def test_temporal_segments_detection_map_and_frame_scores():
    curve = np.array([0.0, 0.1, 1.0, 0.9, 0.2, 0.8, 0.0])
    assert L.segments(curve) == [(2, 4, pytest.approx(0.95)), (5, 6, pytest.approx(0.8))]
    assert L.segments(np.full(5, 0.2)) == [(0, 5, 1.0)]  # flat (uniform) attention: the whole video
    gt = [("v", "a", 10, 20)]
    assert L.detection_map([("v", "a", 10, 20, 0.9)], gt, (0.5,)) == {0.5: 1.0}
    # a false positive scored above the hit halves the precision at the hit
    assert L.detection_map([("v", "a", 40, 50, 0.95), ("v", "a", 12, 20, 0.5)], gt, (0.5,)) == {0.5: 0.5}
    assert L.detection_map([("v", "a", 0, 10, 0.9)], gt, (0.1,)) == {0.1: 0.0}  # touching: tIoU 0
    fs = L.frame_scores(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool))
    assert fs == {"accuracy": 0.5, "iou": pytest.approx(1 / 3)}


def _result(top1, probs, labels):
    return E.RunResult("m", "rgb", 0, None, ("a", "b", "c", "d", "e", "f"), {"test": {"top1": top1}},
                       {"test": probs}, {"test": labels}, {"test": ["x", "y"]}, {"test": np.zeros((2, 2))},
                       {"test": {"S": np.zeros((2, 3, 2, 2)), "mask": np.ones((2, 3), bool)}}, 1)


def test_table1_has_top5_and_table6_pairs_avg_pooling_with_ours_per_backbone(tmp_path):
    probs = np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05], [0.3, 0.25, 0.2, 0.15, 0.06, 0.04]])
    labels = np.eye(6)[[0, 5]]  # clip 2's label is its 6th most probable class: outside the top-5
    runs = {"where_when": [_result(0.5, probs, labels), _result(0.7, probs, labels)]}
    table = WW.top1_table(runs, splits=("test",))
    assert table.loc["Where and when (ours)", "test top-1"] == "60.0 ± 14.1"
    assert table.loc["Where and when (ours)", "test top-5"] == "50.0 ± 0.0"
    assert table.loc["Where and when (ours)", "test seeds"] == [50.0, 70.0]
    named = WW.top1_table({"ours, other weight": runs["where_when"]}, ("test",), titles={"ours, other weight": "X"})
    assert named.loc["X", "test top-1"] == "60.0 ± 14.1" and named.loc["X", "Paper: HMDB51"] is None
    runs |= {name: [_result(0.4, probs, labels)] for name in ("avgpool_frames", "avgpool_s16", "where_when_s16")}
    t6 = WW.backbone_table(runs)
    assert list(t6.iloc[:, 0]) == ["40.0", "60.0 ± 14.1"] and t6.shape == (2, 2 + len(WW.PAPER_TABLE6))
    uniform = WW.uniform_masks(runs["where_when"][0], "test")
    assert (uniform.maps["test"]["S"] == 1).all() and (runs["where_when"][0].maps["test"]["S"] == 0).all()
    # the rows of each backbone see the same frames; the two backbones differ in their trunk only
    cfg = _cfg(tmp_path)
    roots = {n: store_root(E.method_config(cfg, E.get_method(n)))
             for n in ("where_when", "avgpool_frames", "where_when_s16", "avgpool_s16")}
    assert roots["where_when"] == roots["avgpool_frames"] != roots["where_when_s16"] == roots["avgpool_s16"]
    assert E.get_method("where_when_s16").features == {**W.FEATURES, "backbone": "efficientnet_lite0_s16"}


# --- per-frame features -------------------------------------------------------------------------------------------
def test_middle_frames_and_the_store_hash_of_mean_pooling_is_unchanged(tmp_path):
    assert middle_frames(10, 4).tolist() == [2, 6, 9]  # the last, partial group: clipped to the clip
    assert middle_frames(8, 1).tolist() == list(range(8))
    mean = extraction_config("b", "rgb", (64, 96), 8, "dis", 20.0)
    assert "time_pool" not in mean and extraction_config("b", "rgb", None, 4, "dis", 20.0, None,
                                                         "middle")["time_pool"] == "middle"
    cfg = _cfg(tmp_path)
    assert store_root(cfg) == store_root(cfg.replace(features__time_pool="mean"))
    assert store_root(cfg) != store_root(cfg.replace(features__time_pool="middle"))


# --- Moments in Time ------------------------------------------------------------------------------------------------
def _moments(root, lines):
    root.mkdir(parents=True, exist_ok=True)
    (root / "moments_categories.txt").write_text("aiming,0\napplauding,1\n")
    (root / "trainingSet.csv").write_text("\n".join(lines) + "\n")
    (root / "validationSet.csv").write_text("applauding/x.mp4,applauding,3,0\n")


def test_moments_in_time_reads_its_published_csv(tmp_path):
    root = tmp_path / "mit"
    _moments(root, ["aiming/a1.mp4,aiming,3,1", "applauding/getty-b.mp4,applauding,2,0"])
    train = load_dataset("moments_in_time", root, "train")
    assert train.classes == ("aiming", "applauding") and len(train) == 2
    assert train[0].labels == ("aiming",) and train[0].id == "aiming/a1"
    assert train[0].video == str(root.resolve() / "training" / "aiming" / "a1.mp4")
    assert train[0].extra == {"agreement": 3, "disagreement": 1}
    assert load_dataset("moments_in_time", root, "val")[0].video.endswith("validation/applauding/x.mp4")
    with pytest.raises(ValueError, match="split"):
        load_dataset("moments_in_time", root, "test")


def test_moments_in_time_errors_name_the_line(tmp_path):
    _moments(tmp_path / "a", ["aiming/a1.mp4,aiming,3,1", "running/r.mp4,running,3,0"])
    with pytest.raises(AnnotationError, match="trainingSet.csv:2.*running"):
        load_dataset("moments_in_time", tmp_path / "a", "train")
    _moments(tmp_path / "b", ["aiming/a1.mp4,applauding,3,1"])
    with pytest.raises(AnnotationError, match="not in its label's folder"):
        load_dataset("moments_in_time", tmp_path / "b", "train")
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="moments_categories"):
        load_dataset("moments_in_time", tmp_path / "none", "train")

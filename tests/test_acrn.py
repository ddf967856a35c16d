"""ACRN (paper 002): the heads' stated properties, detection samples and proposals, and a short run through the
registry on fake key frames (no rendering, no extraction: the stored maps are monkeypatched)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

import actx.config
import actx.experiments as E
from actx.data import ClipSet, Record
from actx.data.detection import (LABEL_IOU, AnnotationError, KeyFrame, assign_labels, ground_truth, key_frames,
                                 read_ava_proposals, stand_in_proposals)
from actx.features.keyframes import context_slice, window
from actx.metrics import box_iou
from actx.models import acrn
from actx.models.acrn import DetectionHead, GradScale, KeyFrameSet, TimeFlatten, collate, decode, encode

H, W = 32, 48  # frame size: stride 16 gives a 2 x 3 map
CLASSES = ("a", "b", "c")


@pytest.fixture(scope="module")
def heads():
    torch.manual_seed(0)
    return {r: DetectionHead(3, r, context=2, repeats=0).eval() for r in acrn.RELATIONS}


def _batch(b=2, k=3, context=2):
    torch.manual_seed(1)
    f16 = torch.randn(b, 112, context, H // 16, W // 16)
    f8 = torch.randn(b, 40, context, H // 8, W // 8)
    rois = torch.tensor([[0, 2.0, 2, 20, 30], [1, 10, 4, 40, 30], [1, 0, 0, 48, 32]])[:k]
    return f16, f8, rois


@pytest.mark.parametrize("relation", acrn.RELATIONS)
def test_every_head_gives_per_box_logits_and_offsets(heads, relation):
    f16, f8, rois = _batch()
    out = heads[relation](f16, rois, f8, size=(H, W))
    assert out["logits"].shape == (3, 3) and out["deltas"].shape == (3, 4)
    assert torch.isfinite(out["logits"]).all()


def test_acrn_class_maps_average_to_the_relation_part_of_the_logits(heads):
    head = heads["acrn"]
    f16, f8, rois = _batch()
    out = head(f16, rois, size=(H, W), maps=True)
    cam = out["cam"]  # (K, C, h, w)
    assert cam.shape[:2] == (3, 3)
    # logits = W_a a + W_r mean(rmap) + b, and the CAM's mean over locations is W_r mean(rmap)
    base = head.cls.bias + out["logits"].new_zeros(3, 3)
    relation_part = out["logits"] - base
    flat = head.flatten(f16)
    a = head.classifier_net(acrn.heads.roi_align(flat, rois, 7, 1 / 16)).mean((2, 3))
    actor_part = a @ head.cls.weight[:, :acrn.heads.ACTOR_DIM].T
    torch.testing.assert_close(cam.mean((2, 3)), relation_part - actor_part, atol=1e-4, rtol=1e-4)


def test_relation_stage_3_reads_the_stride_8_maps_and_scale_resizes(heads):
    f16, f8, rois = _batch()
    head = DetectionHead(3, "acrn", context=2, relation_stage=3, relation_scale=0.5, repeats=0).eval()
    assert head(f16, rois, f8, size=(H, W))["logits"].shape == (3, 3)
    with pytest.raises(ValueError, match="f8"):
        head(f16, rois, None, size=(H, W))
    with pytest.raises(ValueError, match="relation must be"):
        DetectionHead(3, "gcn")


def test_batch_norm_stays_frozen_in_training_mode(heads):
    head = DetectionHead(3, "acrn", context=2, repeats=0).train()
    bns = [m for m in head.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert head.cls.training


def test_gradient_multiplier_scales_only_the_backward_pass():
    x = torch.ones(3, requires_grad=True)
    y = GradScale.apply(x, 0.01)
    assert torch.equal(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 0.01))


def test_time_flatten_starts_as_the_mean_over_frames():
    f = torch.randn(2, 5, 4, 3, 3)
    torch.testing.assert_close(TimeFlatten(5, 4)(f), f.mean(2), atol=1e-6, rtol=1e-5)


def test_scaled_unit_gives_unit_rms_per_channel():
    x = torch.randn(2, 9, 3, 3) * 7
    norms = acrn.scaled_unit(x).norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, 3.0))


def test_box_offsets_round_trip():
    p = torch.tensor([[0.0, 0, 10, 20], [5, 5, 8, 9]])
    t = torch.tensor([[1.0, 2, 12, 18], [4, 6, 9, 12]])
    torch.testing.assert_close(decode(p, encode(p, t)), t)
    torch.testing.assert_close(encode(p, p), torch.zeros(2, 4))


def test_schedule_warms_up_then_decays_to_zero():
    total = 100
    f = [acrn.schedule(s, total) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.01) and max(f) == pytest.approx(1.0)
    assert int(np.argmax(f)) == 20 and f[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a <= b for a, b in zip(f[:20], f[1:21])) and all(a >= b for a, b in zip(f[20:], f[21:]))


# --- detection samples -----------------------------------------------------------------------------------------
def test_labels_are_assigned_by_iou_with_the_stated_threshold():
    persons = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    labels = np.array([[1, 0, 0], [0, 0, 0]], np.uint8)  # an actor and a bystander
    props = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 4.9], [21, 0, 30, 10], [50, 50, 60, 60]],
                     np.float32)
    out, targets, matched = assign_labels(props, persons, labels)
    assert LABEL_IOU == 0.5
    assert matched.tolist() == [True, True, False, True, False]  # IoU 1, 0.5, 0.49, 0.9, 0
    assert out[:, 0].tolist() == [1, 1, 0, 0, 0]  # the bystander's box is matched but has no action
    np.testing.assert_array_equal(targets[1], persons[0])
    np.testing.assert_array_equal(targets[4], props[4])


def _keys(n=40):
    return [KeyFrame(f"c{i}", "v.mp4", 5, np.array([[10, 10, 30, 60], [60, 5, 80, 70]], np.float32),
                     np.array([[1, 0, 0], [0, 0, 0]], np.uint8), (100, 120)) for i in range(n)]


def test_stand_in_proposals_are_seeded_jittered_and_scored():
    keys = _keys()
    a, b = stand_in_proposals(keys, seed=3), stand_in_proposals(keys, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(stand_in_proposals(keys, seed=4))
    boxes = a[["x1", "y1", "x2", "y2"]].to_numpy()
    best = box_iou(boxes, keys[0].boxes).max(1)
    true = a["score"].to_numpy() >= 0.7
    assert (best[true] > 0.6).mean() > 0.9  # jittered persons stay close to their box
    assert a["score"][~true].max() < 0.7 and (~true).sum() > 0  # false positives score lower
    assert ((boxes[:, :2] >= 0) & (boxes[:, 2:] <= [120, 100])).all()
    assert stand_in_proposals(keys, false_positives=0.0, miss_rate=0.0).shape[0] == 2 * len(keys)


def test_ava_proposals_are_read_in_pixels_and_errors_name_the_line(tmp_path):
    path = tmp_path / "dets.csv"
    path.write_text("vid1,0902,0.1,0.2,0.5,0.9,,0.95\nvid1,0903,0.0,0.0,1.0,1.0,0.5\n")
    df = read_ava_proposals(path, {"vid1": (100, 200)})
    assert df["frame"].tolist() == [902, 903]
    np.testing.assert_allclose(df.iloc[0][["x1", "y1", "x2", "y2"]].to_numpy(float), [20, 20, 100, 90])
    path.write_text("vid1,0902,0.5,0.2,0.1,0.9,0.95\n")
    with pytest.raises(AnnotationError, match=r"dets.csv:1: box"):
        read_ava_proposals(path)


def _fake_record(root, rid: str, cls: int, split: str) -> Record:
    """A benchmark-like record: 16 frames, an actor doing CLASSES[cls] over frames [4, 12) and a bystander."""
    t = 16
    boxes = np.tile(np.array([[2, 2, 20, 30], [26, 2, 46, 30]], np.float32), (t, 1, 1))
    mask = np.zeros((t, H, W), bool)
    ann = root / f"{rid}.npz"
    np.savez(ann, boxes=boxes, actor_boxes=boxes[:, :1], is_actor=np.array([True, False]),
             person_action=np.array([cls, -1]), action_frames=np.array([4, 12]),
             actor_mask_packed=np.packbits(mask, axis=-1), mask_shape=np.array(mask.shape, np.int32))
    return Record(video=str(root / f"{rid}.mp4"), labels=(CLASSES[cls],), id=rid, split=split,
                  extra={"annotation": str(ann)})


def _fake_records(root):
    out = {}
    for split, n in (("train", 4), ("test", 1), ("test_shifted", 1)):
        out[split] = ClipSet([_fake_record(root, f"{split}{c}{j}", c, split) for c in range(3) for j in range(n)],
                             CLASSES, "fake", root, split)
    return out


def test_key_frames_take_the_action_frames_and_label_actors_only(tmp_path):
    rec = _fake_record(tmp_path, "x", 1, "train")
    (k,) = key_frames([rec], CLASSES, per_clip=1)
    assert k.frame == 8 and k.size == (H, W)
    np.testing.assert_array_equal(k.labels, [[0, 1, 0], [0, 0, 0]])
    assert [kk.frame for kk in key_frames([rec], CLASSES, per_clip=2)] == [6, 10]
    gt = ground_truth([k], CLASSES)
    assert gt["label"].tolist() == ["b"] and gt["video"].tolist() == ["x"]
    with pytest.raises(KeyError, match="no person boxes"):
        key_frames([Record(video="v.mp4", labels=("a",), id="r")], CLASSES)


def test_context_windows_are_centred_and_clipped():
    np.testing.assert_array_equal(window(1, 4, 10), [0, 0, 1, 2])
    stored = window(5, 10, 100)
    for n in (1, 5, 10):
        np.testing.assert_array_equal(stored[context_slice(10, n)], window(5, n, 100))
    with pytest.raises(ValueError):
        context_slice(4, 5)


# --- training, resume and the run folder -----------------------------------------------------------------------
def _fake_maps(keys, context):
    rng = np.random.default_rng(len(keys))
    k = len(keys)
    return {"s16": rng.random((k, context, 112, H // 16, W // 16)).astype(np.float16),
            "s8": rng.random((k, context, 40, H // 8, W // 8)).astype(np.float16)}


def test_fit_resumes_exactly(tmp_path):
    keys = key_frames([_fake_record(tmp_path, f"r{i}", i % 3, "train") for i in range(2)], CLASSES)
    data = KeyFrameSet(keys, _fake_maps(keys, 2), stand_in_proposals(keys), CLASSES, 2, with_gt=True)
    cfg = actx.config.make_config("ci", tmp_path / "data", "cpu", 0, detection_train__batch_size=1, detection_train__epochs=2,
                                  detection_train__eval_every=1)
    settings = E.runner.method_settings(cfg, E.get_method("acrn"), 0)
    objective = acrn.build_objective(acrn.PARAMS, True)

    def make():
        torch.manual_seed(0)
        return DetectionHead(3, "none", context=2, repeats=0)

    straight = make()
    acrn.fit(straight, objective, data, settings, tmp_path / "a", progress=False)

    def killed(model, epoch):  # dies during epoch 2's evaluation: only epoch 1's last.pt remains
        if epoch == 2:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        acrn.fit(make(), objective, data, settings, tmp_path / "b", progress=False, eval_fn=killed)
    assert not (tmp_path / "b" / "final.pt").exists()
    resumed = make()
    acrn.fit(resumed, objective, data, settings, tmp_path / "b", progress=False)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(pd.read_csv(tmp_path / "b" / "metrics.csv")) == 2


def test_acrn_runs_through_the_registry_and_keeps_the_run_folder_contract(tmp_path, monkeypatch):
    import actx.features.keyframes as kf

    monkeypatch.setattr(kf, "ensure_keyframe_maps", lambda cfg, keys, split, context, progress=True:
                        _fake_maps(keys, context))
    cfg = actx.config.make_config("ci", tmp_path / "data", "cpu", 0, detection_train__epochs=1,
                                  detection_train__eval_every=1, detection__context=2)
    records = _fake_records(tmp_path)
    result = E.run(cfg, "acrn_base", records=records, progress=False, params={"context": 2})
    files = {p.name for p in result.path.iterdir()}
    assert {"final.pt", "last.pt", "metrics.csv", "metrics.json", "predictions.npz"} <= files
    info = json.loads((result.path / "metrics.json").read_text())
    assert info["recipe"]["sections"] == {"detection.per_clip": 1, "detection.context": 2}
    assert info["recipe"]["settings"]["optimizer"] == "sgd"
    assert set(result.metrics) == {"val", "test", "test_shifted"}
    assert 0.0 <= result.metrics["test"]["mAP"] <= 1.0
    extra = result.extra["test"]
    assert extra["boxes"].shape == (len(result.probs["test"]), 4) and len(extra["gt_boxes"]) == 3
    assert "val_mAP" in result.history.columns
    # loaded, not retrained; the score is reproduced from the saved predictions
    again = E.run(cfg, "acrn_base", records=records, progress=False, params={"context": 2})
    assert again.metrics == result.metrics
    saved = {k: v for k, v in again.extra["test"].items()}
    saved.update(probs=again.probs["test"], labels=again.labels["test"], ids=np.array(again.ids["test"]))
    assert acrn.score(saved, CLASSES)["mAP"] == pytest.approx(result.metrics["test"]["mAP"])
    again = E.run(cfg.replace(detection__dense_every=3), "acrn_base", records=records, progress=False,
                  params={"context": 2})  # a setting outside the recipe: loaded
    with pytest.raises(E.RunMismatch, match="detection"):
        E.run(cfg.replace(detection__per_clip=2), "acrn_base", records=records, progress=False,
              params={"context": 2})


def test_classification_recipes_do_not_carry_detection_sections(tmp_path):
    cfg = actx.config.make_config("ci", tmp_path / "data", "cpu", 0)
    assert "sections" not in E.recipe_for(cfg, "avgpool", "rgb", 0, "thread")
    assert E.recipe_for(cfg, "acrn", "rgb", 0, "thread")["settings"]["lr"] == cfg.detection_train["lr"]


def test_collate_offsets_the_boxes_by_key_frame(tmp_path):
    keys = key_frames([_fake_record(tmp_path, f"r{i}", i % 3, "train") for i in range(2)], CLASSES)
    data = KeyFrameSet(keys, _fake_maps(keys, 2), stand_in_proposals(keys, false_positives=0, miss_rate=0),
                       CLASSES, 1)
    batch = collate([data[0], data[1]])
    assert batch["f16"].shape == (2, 112, 1, 2, 3) and batch["size"] == (H, W)
    assert batch["rois"][:, 0].tolist() == [0, 0, 1, 1]


def test_heat_shares_count_each_pixel_once_in_region_order():
    from actx.models.acrn.analysis import box_mask, heat_shares

    cam = np.full((4, 6), -1.0)  # the minimum is the zero of the heat
    cam[0, 0], cam[3, 5] = 3.0, 1.0
    obj = box_mask(np.array([[0, 0, 1, 1]]), (4, 6))
    actor = box_mask(np.array([[0, 0, 3, 3], [np.nan] * 4]), (4, 6))
    out = heat_shares(cam, {"object": obj, "actor": actor})
    assert math.isnan(heat_shares(np.ones((2, 2)), {"object": obj[:2, :2]})["object"])
    assert out["object"] == pytest.approx(2 / 3) and out["actor"] == 0.0 and out["background"] == pytest.approx(1 / 3)
    assert out["object_area"] == pytest.approx(1 / 24) and out["actor_area"] == pytest.approx(8 / 24)


def test_ground_truth_tubes_follow_each_person(tmp_path):
    from actx.data.detection import ground_truth_tubes

    keys = key_frames([_fake_record(tmp_path, "x", 2, "test")], CLASSES, every=3)
    assert [k.frame for k in keys] == [4, 7, 10]
    (tube,) = ground_truth_tubes(keys, CLASSES)
    assert tube.label == "c" and tube.frames.tolist() == [4, 7, 10] and tube.video == "x"


def test_a_users_proposal_file_replaces_the_stand_in(tmp_path):
    keys = key_frames([_fake_record(tmp_path, "x", 0, "test")], CLASSES)  # frame 8 of a 32 x 48 frame
    path = tmp_path / "props.csv"
    path.write_text("x,8,0.0,0.0,0.5,1.0,0.9\nx,9,0.0,0.0,0.5,1.0,0.9\nother,8,0.1,0.1,0.2,0.2,0.5\n")
    rows = acrn.user_proposals(str(path), keys)
    assert rows[["video", "frame"]].values.tolist() == [["x", 8]]
    np.testing.assert_allclose(rows[["x1", "y1", "x2", "y2"]].to_numpy(float)[0], [0, 0, 24, 32])


def test_jhmdb_key_frames_take_frames_with_a_puppet_box():
    boxes = np.full((10, 4), np.nan, np.float32)
    boxes[2:8] = [5, 5, 20, 30]
    rec = Record(video="v.avi", labels=("b",), id="clip", extra={"boxes": boxes, "size": (240, 320)})
    keys = key_frames([rec], CLASSES, per_clip=2)
    assert [k.frame for k in keys] == [3, 6] and keys[0].size == (240, 320)
    np.testing.assert_array_equal(keys[0].labels, [[0, 1, 0]])
    assert [k.frame for k in key_frames([rec], CLASSES, every=2)] == [2, 4, 6]


def test_the_learning_rate_changes_only_when_another_is_clearly_better():
    import pandas as pd

    from actx.models.acrn.tuning import choose_lr, per_seed

    def table(scores):  # {lr: [(method, seed, val)]}
        return pd.DataFrame([dict(lr=lr, method=m, seed=s, val_mAP=v) for lr, rows in scores.items()
                             for m, s, v in rows], columns=["lr", "method", "seed", "val_mAP"])

    # per seed, the mean over the methods
    t = table({1e-3: [("a", 0, 40.0), ("b", 0, 50.0), ("a", 1, 42.0), ("b", 1, 52.0), ("a", 2, 41.0),
                      ("b", 2, 51.0)],
               3e-3: [("a", 0, 44.0), ("b", 0, 54.0), ("a", 1, 40.0), ("b", 1, 50.0), ("a", 2, 46.0),
                      ("b", 2, 54.0)]})
    assert per_seed(t)[1e-3].tolist() == [45.0, 47.0, 46.0]
    # 3e-3 is better by 2 points on average, but its seeds spread 2.6: not clear, the current value stays
    assert choose_lr(t, 1e-3) == 1e-3
    clear = table({1e-3: [("a", s, 40.0 + s) for s in range(3)], 3e-3: [("a", s, 50.0 + s) for s in range(3)]})
    assert choose_lr(clear, 1e-3) == 3e-3
    assert choose_lr(clear, 3e-3) == 3e-3  # the current value is the best: it stays
    with pytest.raises(ValueError, match="no runs at the current learning rate"):
        choose_lr(clear, 1e-2)


def test_seed_means_show_the_spread_only_with_several_seeds():
    from actx.models.acrn.analysis import seed_mean

    assert seed_mean([30.0, 32.0, 34.0]) == "32.0 ± 2.0"
    assert seed_mean([41.25]) == "41.2"

"""Per-clip cues (actx.cues): keypoint sources behind one interface, selective-search proposals, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

import actx.experiments as E
from actx import cues
from actx.data import Record
from actx.cues import pose as pose_module


def _annotated(tmp_path, frames=16, h=64, w=96):
    """A record whose annotation has an actor (person 0) and a bystander, keypoints in pixels."""
    kp = np.zeros((frames, 2, 15, 3), np.float32)
    kp[..., 0], kp[..., 1], kp[..., 2] = 48.0, 32.0, 1.0
    kp[:, 1, :, 0] = 10.0
    mask = np.zeros((frames, h, w), bool)
    ann = tmp_path / "a.npz"
    np.savez(ann, keypoints=kp, is_actor=np.array([True, False]), mask_shape=np.array(mask.shape, np.int32),
             actor_mask_packed=np.packbits(mask, axis=-1))
    return Record(video=str(tmp_path / "a.mp4"), labels=("x",), id="a", split="test",
                  extra={"annotation": str(ann), "frames": frames, "action_frames": (8, 16)})


def test_oracle_keypoints_are_the_actors_in_fractions_of_the_frame(tmp_path):
    rec = _annotated(tmp_path)
    kp = cues.OracleKeypoints()(rec, [0, 5])  # (F, A, K, 3)
    assert kp.shape == (2, 1, 15, 3)
    np.testing.assert_allclose(kp[..., :2], np.broadcast_to([0.5, 0.5], kp[..., :2].shape))
    assert cues.OracleKeypoints(actors_only=False)(rec, [0]).shape == (1, 2, 15, 3)
    steps = E.INPUTS["actor_keypoints"](rec, 2, 8)  # the registry's per-step input
    assert steps.shape == (2, 1, 15, 3) and not np.isnan(steps).any()


def test_step_keypoints_are_nan_outside_the_action_window(tmp_path):
    rec = _annotated(tmp_path)  # action frames [8, 16): step 1 of 2
    out = pose_module.step_keypoints(cues.OracleKeypoints(), rec, 2, 8)
    assert np.isnan(out[0]).all() and not np.isnan(out[1]).any()
    np.testing.assert_array_equal(cues.key_frames([0, 1, 5], 8, 20), [4, 12, 19])


def test_jhmdb_joints_become_fractions_with_score_one():
    joints = np.zeros((3, 15, 2), np.float32)
    joints[:, :, 0], joints[:, :, 1] = 160.0, 60.0
    rec = Record(video="v.avi", labels=("run",), id="v", extra={"keypoints": joints})
    kp = cues.JHMDBKeypoints()(rec, [0, 2])
    assert kp.shape == (2, 1, 15, 3)
    np.testing.assert_allclose(kp[0, 0, 0], [0.5, 0.25, 1.0])
    with pytest.raises(ValueError, match="asked for frame 3"):
        cues.JHMDBKeypoints()(rec, [3])


def test_coco_keypoints_map_file_names_to_clip_frames(tmp_path):
    kp = [50.0, 25.0, 2] + [0.0, 0.0, 0] * 16  # nose visible, the rest not labelled
    data = {"images": [{"id": 1, "file_name": "clips/v/00001.jpg", "width": 100, "height": 50},
                       {"id": 2, "file_name": "clips/v/00002.jpg", "width": 100, "height": 50}],
            "annotations": [{"id": 7, "image_id": 1, "keypoints": kp}]}
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(data))
    source = cues.CocoKeypoints(path, first_frame=1)
    rec = Record(video="v.mp4", labels=(), id="v")
    out = source(rec, [0, 1])  # frame 1 is listed without anybody
    assert out.shape == (2, 1, 17, 3)
    np.testing.assert_allclose(out[0, 0, 0], [0.5, 0.5, 1.0])
    assert out[0, 0, 1:, 2].sum() == 0 and not out[1].any()
    with pytest.raises(KeyError, match="no image for clip 'v' frame 5"):
        source(rec, [5])
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a COCO keypoint file"):
        cues.CocoKeypoints(path)


def test_selective_search_is_reproducible_and_in_the_frame():
    rng = np.random.default_rng(0)
    image = np.zeros((64, 96, 3), np.uint8)
    image[10:40, 20:50] = (200, 30, 30)
    image[30:60, 60:90] = (30, 30, 200)
    image = np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)
    a, b = cues.selective_search(image), cues.selective_search(image)
    np.testing.assert_array_equal(a, b)
    assert 1 <= len(a) <= cues.MAX_PROPOSALS
    assert (a[:, 0] >= 0).all() and (a[:, 2] <= 96).all() and (a[:, 1] >= 0).all() and (a[:, 3] <= 64).all()
    assert (a[:, 2] > a[:, 0]).all() and (a[:, 3] > a[:, 1]).all()


def test_cache_computes_once_and_then_loads(tmp_path):
    rec = Record(video=str(tmp_path / "v" / "c.mp4"), labels=(), id="c")
    path = cues.cue_path(rec, "toy", {"a": 1})
    assert path.parent.parent == tmp_path / "v" and path.name == "c.npz"
    assert cues.cue_path(rec, "toy", {"a": 2}) != path
    calls = []
    compute = lambda: calls.append(1) or {"x": np.arange(3)}  # noqa: E731
    first = cues.load_or_compute(path, compute)
    again = cues.load_or_compute(path, compute)
    assert len(calls) == 1 and np.array_equal(first["x"], again["x"])
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]


def test_mediapipe_finds_nobody_in_a_blank_frame():
    out = cues.MediapipePose(cache=False).estimate(np.full((1, 64, 96, 3), 127, np.uint8))
    assert out.shape == (1, 1, len(cues.MEDIAPIPE_KEYPOINTS), 3) and not out.any()


def test_pose_on_actor_needs_a_majority_of_counted_keypoints_in_an_actor_box():
    box = np.array([[[0.0, 0.0, 0.5, 1.0]]])  # (F=1, A=1, 4)
    kp = np.zeros((1, 1, 4, 3))
    kp[0, 0, :, 2] = [1, 1, 1, 0.1]  # three counted keypoints
    kp[0, 0, :, 0] = [0.2, 0.3, 0.9, 0.1]  # two of the three inside
    found, on = cues.pose_on_actor(kp, box)
    assert found.tolist() == [True] and on.tolist() == [True]
    kp[0, 0, 1, 0] = 0.8  # now one of three
    assert cues.pose_on_actor(kp, box)[1].tolist() == [False]
    assert cues.pose_on_actor(np.zeros((1, 1, 4, 3)), box) == (np.array([False]), np.array([False]))

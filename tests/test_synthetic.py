"""The embedded synthetic benchmark: determinism, ground-truth consistency, split bias, loader, resumability."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from actx.data import load_dataset
from actx.data.synthetic import (CLASSES, KEYPOINTS, SCENES, SPLITS, cooccurrence, load_annotation, make_knobs,
                                 plan, render_benchmark, render_sample, split_pairs)
from actx.data.synthetic.actions import IDLE_AMPLITUDE, action_motions
from actx.data.synthetic.dataset import Spec, make_layout, sample_paths
from actx.data.synthetic.layout import thread_layout
from actx.data.synthetic.scenes import make_background
from actx.data.synthetic.skeleton import KP, two_link_ik

# A benchmark small enough to render in about a second: 15 samples of 16 frames at 32x48.
TINY = dict(height=32, width=48, thread_frames=16, fps=8, train_per_class=1, test_per_class=0,
            shifted_per_class=0, negatives_per_scene=0, stills=2, untrimmed=1, untrimmed_frames=48)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return render_benchmark(tmp_path_factory.mktemp("bench") / "synthetic", workers=0, progress=False, **TINY)


def _spec(cls, split="train", scene=None, k=None):
    return Spec(k if k is not None else cls, f"{split}_{CLASSES[cls]}_000", split, "thread", cls,
                scene or SCENES[cls])


# --- the plan: split bias ----------------------------------------------------------------------------------------

def test_train_and_test_cooccurrence_follow_scene_bias():
    knobs = make_knobs(train_per_class=40, test_per_class=40, shifted_per_class=36, scene_bias=0.75)
    specs = plan(knobs)
    for split in ("train", "test"):
        m = cooccurrence(split_pairs(specs, split))
        diag = np.diag(m) / m.sum(1)
        assert np.allclose(diag, 0.75, atol=0.03), (split, diag)
        off = m.copy()
        np.fill_diagonal(off, 0)
        assert (off > 0).sum(1).min() >= 4, "the off-scene samples must spread over several other scenes"


def test_test_shifted_scene_is_independent_of_the_action():
    knobs = make_knobs(shifted_per_class=36)
    m = cooccurrence(split_pairs(plan(knobs), "test_shifted"))
    assert (m == 3).all(), m  # each class sees every scene equally often
    assert np.isclose(np.trace(m) / m.sum(), 1 / 12)


def test_scene_bias_zero_and_one():
    for bias, expected in ((1.0, 1.0), (0.0, 0.0)):
        m = cooccurrence(split_pairs(plan(make_knobs(train_per_class=10, scene_bias=bias)), "train"))
        assert np.trace(m) / m.sum() == expected


def test_plan_ids_are_unique_and_splits_complete():
    specs = plan(make_knobs(**TINY))
    assert len({s.id for s in specs}) == len(specs) == 12 + 2 + 1
    assert [s.k for s in specs] == list(range(len(specs)))


# --- rendering: determinism and ground truth -------------------------------------------------------------------

def test_same_seed_same_arrays_other_seed_other_arrays():
    knobs = make_knobs(**TINY)
    f1, a1, _ = render_sample(_spec(4), knobs)
    f2, a2, _ = render_sample(_spec(4), knobs)
    assert np.array_equal(f1, f2)
    for key in a1:
        assert np.array_equal(a1[key], a2[key], equal_nan=a1[key].dtype.kind == "f"), key
    f3, _, _ = render_sample(_spec(4), make_knobs(**dict(TINY, seed=1)))
    assert not np.array_equal(f1, f3)


def test_frames_and_annotation_shapes():
    knobs = make_knobs(**TINY)
    frames, ann, layout = render_sample(_spec(9), knobs)  # handshake: two actors
    T, H, W = 16, 32, 48
    P = len(layout.persons)
    assert frames.shape == (T, H, W, 3) and frames.dtype == np.uint8
    assert ann["actor_boxes"].shape == (T, 2, 4)
    assert ann["actor_mask"].shape == (T, H, W) and ann["actor_mask"].dtype == bool
    assert ann["keypoints"].shape == (T, P, len(KEYPOINTS), 3)
    assert ann["is_actor"].tolist() == [True, True] + [False] * (P - 2)
    assert P >= 3, "threads have at least one bystander by default"


@pytest.mark.parametrize("cls", range(len(CLASSES)), ids=CLASSES)
def test_ground_truth_is_consistent(cls):
    knobs = make_knobs(**dict(TINY, height=64, width=96, thread_frames=24))
    frames, ann, layout = render_sample(_spec(cls), knobs)
    T = len(frames)
    s, e = ann["action_frames"]
    assert 0 < s < e < T and s >= 0.15 * T - 1 and T - e >= 0.15 * T - 1
    boxes, mask, kp = ann["actor_boxes"], ann["actor_mask"], ann["keypoints"]
    assert mask[s:e].any(axis=(1, 2)).all(), "the actors are visible during the action"
    for t in range(T):
        ys, xs = np.nonzero(mask[t])
        inside = np.zeros(len(xs), bool)
        for a, box in enumerate(boxes[t]):
            if np.isfinite(box).all():
                x1, y1, x2, y2 = box
                inside |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)  # x2, y2 exclusive
                pts = kp[t, a]
                vis = pts[:, 2] > 0
                assert (pts[vis, 0] >= x1 - 1).all() and (pts[vis, 0] <= x2 + 1).all()
                assert (pts[vis, 1] >= y1 - 1).all() and (pts[vis, 1] <= y2 + 1).all()
        assert inside.all(), f"frame {t}: {np.count_nonzero(~inside)} mask pixels outside the actor boxes"


@pytest.mark.parametrize("cls", range(len(CLASSES)), ids=CLASSES)
def test_pre_and_post_segments_hold_no_action_motion(cls):
    knobs = make_knobs(**dict(TINY, thread_frames=48, fps=16))
    rng = np.random.default_rng([0, cls])
    layout = thread_layout(rng, knobs, cls, SCENES[cls])
    s, e, c, actors = layout.segments[0]
    assert c == cls
    for a in actors:
        p = layout.persons[a]
        rel = p.kp - p.kp[:, KP["pelvis"]][:, None]  # (T, K, 2) pose without the body's displacement
        dev = np.abs(rel - rel[0]).max(axis=(1, 2)) / p.body.height  # (T,) largest change, in body heights
        idle_bound = 6 * IDLE_AMPLITUDE  # a few joints' sways add up along a limb
        assert dev[:s].max() < idle_bound, f"pre-action segment moves by {dev[:s].max():.2f} heights"
        post = np.abs(rel[e:] - rel[0]).max(axis=(1, 2)) / p.body.height
        assert post.max() < idle_bound, f"post-action segment moves by {post.max():.2f} heights"
        assert dev[s:e].max() > 0.2, f"{CLASSES[cls]}: the action moves the body by less than 0.2 heights"


def test_every_program_returns_to_rest_and_mirrors():
    rng = np.random.default_rng(0)
    for name in CLASSES:
        motions, gap = action_motions(name, 30, 15.0, 1.0, 1.0, rng)
        assert len(motions) == (2 if gap > 0 else 1)
        for m in motions:
            for joint, d in m.angles.items():
                assert d.shape == (30,)
                # smooth ramps: the first and last frames move only a little of the way
                assert max(abs(d[0]), abs(d[-1])) <= 0.15 * np.abs(d).max() + 0.02, (name, joint, d[0], d[-1])
            mm = m.mirrored()
            assert np.allclose(mm.dx, -m.dx)
            if "l_shoulder" in m.angles:
                assert np.allclose(mm.angles["r_shoulder"], -m.angles["l_shoulder"])


def test_two_link_ik_reaches_reachable_targets():
    rng = np.random.default_rng(0)
    target = rng.uniform(-0.25, 0.25, (200, 2))
    d = np.linalg.norm(target, axis=1)
    target = target[(d > 0.03) & (d < 0.31)]
    for bend in (1.0, -1.0):
        up, rel = two_link_ik(target, 0.17, 0.16, bend)
        unit = lambda a: np.stack([np.sin(a), np.cos(a)], -1)  # noqa: E731
        tip = 0.17 * unit(up) + 0.16 * unit(up + rel)
        assert np.abs(tip - target).max() < 1e-6


def test_scenes_load_offline_vary_and_stay_recognisable():
    feats, labels = [], []
    for k, scene in enumerate(SCENES):
        for seed in range(3):
            bg = make_background(scene, 32, 48, seed)
            hist = np.histogramdd(bg.reshape(-1, 3) // 64, bins=(4, 4, 4), range=((0, 4),) * 3)[0].ravel()
            feats.append(hist / hist.sum())
            labels.append(k)
        assert not np.array_equal(make_background(scene, 32, 48, 0), make_background(scene, 32, 48, 1))
        assert np.array_equal(make_background(scene, 32, 48, 5), make_background(scene, 32, 48, 5))
    X, y = np.array(feats), np.array(labels)
    dist = np.abs(X[:, None] - X[None]).sum(-1)
    np.fill_diagonal(dist, np.inf)
    accuracy = (y[dist.argmin(1)] == y).mean()
    assert accuracy >= 0.8, f"scene types should be recognisable from colour alone; 1-NN accuracy {accuracy:.2f}"


def test_negatives_stills_and_untrimmed_layouts():
    knobs = make_knobs(**TINY)
    neg = make_layout(Spec(0, "neg", "negatives", "negative", None, "gym"), knobs)
    assert neg.segments == [] and neg.actors == [] and len(neg.persons) >= 1
    still = make_layout(Spec(1, "still", "stills", "still", None, None), knobs)
    assert still.frames == 1 and 1 <= len(still.segments) <= 3
    unt = make_layout(Spec(2, "u", "untrimmed", "untrimmed", None, None), knobs)
    starts = [s for s, _, _, _ in unt.segments]
    ends = [e for _, e, _, _ in unt.segments]
    assert unt.frames == 48 and starts == sorted(starts)
    assert all(e <= s2 for e, s2 in zip(ends, starts[1:])), "instances must not overlap in time"


# --- on disk: serial vs parallel, loader, resume, errors ------------------------------------------------------

def _files(root: Path, suffix: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob(f"*{suffix}"))}


def test_serial_and_parallel_runs_write_identical_annotations(tiny_root, tmp_path):
    parallel = render_benchmark(tmp_path / "par", workers=2, progress=False, **TINY)
    serial = _files(tiny_root, ".npz")
    assert len(serial) == 15
    assert serial == _files(parallel, ".npz")
    assert (tiny_root / "manifest.csv").read_bytes() == (parallel / "manifest.csv").read_bytes()


def test_loader_fields(tiny_root):
    from actx.video import read_image, read_video

    train = load_dataset("synthetic", tiny_root, "train")
    assert train.classes == CLASSES and len(train) == 12
    r = train[0]
    assert Path(r.video).is_absolute() and r.video.endswith(".mp4") and Path(r.video).exists()
    assert r.labels == (CLASSES[0],) and r.thread == r.id and r.split == "train"
    s, e = r.extra["action_frames"]
    assert r.start == pytest.approx(s / 8) and r.end == pytest.approx(e / 8)
    assert {"scene", "frames", "fps", "annotation", "height", "width"} <= set(r.extra)
    video = read_video(r.video)
    assert video.shape == (16, 32, 48, 3)
    ann = load_annotation(r)
    assert ann["actor_mask"].shape == (16, 32, 48) and ann["actor_boxes"].shape[:2] == (16, 1)
    assert tuple(ann["action_frames"]) == (s, e)

    stills = load_dataset("synthetic", tiny_root, "stills")
    assert len(stills) == 2 and stills[0].video.endswith(".png")
    assert read_image(stills[0].video).shape == (32, 48, 3)
    persons = stills[0].extra["persons"]
    acting = {a for p in persons for a in p["actions"]}
    assert acting == set(stills[0].labels) and all(len(p["box"]) == 4 for p in persons)

    untrimmed = load_dataset("synthetic", tiny_root, "untrimmed")
    segs = untrimmed[0].extra["segments"]
    assert len(segs) >= 1 and {c for _, _, c in segs} == set(untrimmed[0].labels)
    assert untrimmed[0].extra["frames"] == 48

    for split in SPLITS:
        ds = load_dataset("synthetic", tiny_root, split)
        assert all(rec.split == split for rec in ds)
    assert len(load_dataset("synthetic", tiny_root, "negatives")) == 0
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("synthetic", tiny_root, "val")


def test_loader_refuses_an_unrendered_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="ensure_benchmark"):
        load_dataset("synthetic", tmp_path, "train")


def test_resume_renders_only_missing_samples(tmp_path):
    root = render_benchmark(tmp_path / "b", workers=0, progress=False, **TINY)
    spec = plan(make_knobs(**TINY))[3]
    video, annotation = sample_paths(root, spec)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.npz") if p != annotation}
    old = annotation.read_bytes()
    video.unlink()
    annotation.unlink()
    render_benchmark(root, workers=0, progress=False, **TINY)
    assert video.exists() and annotation.read_bytes() == old
    assert {p: p.stat().st_mtime_ns for p in before} == before, "complete samples must not be rendered again"
    assert json.loads((root / "meta.json").read_text())["last_run"]["rendered"] == 1


def test_other_knobs_in_a_rendered_folder_raise(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="noise"):
        render_benchmark(tiny_root, workers=0, progress=False, **dict(TINY, noise=9.0))
    (tmp_path / "stuff.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        render_benchmark(tmp_path, workers=0, progress=False, **TINY)


def test_knob_errors_are_actionable():
    with pytest.raises(ValueError, match="unknown benchmark knob"):
        make_knobs(colour=1)
    with pytest.raises(ValueError, match="even"):
        make_knobs(height=33)
    with pytest.raises(ValueError, match="scene_bias"):
        make_knobs(scene_bias=1.5)


def test_ensure_benchmark_uses_the_profile_cache(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from actx.data.synthetic import dataset, ensure_benchmark

    monkeypatch.setattr(dataset.os, "cpu_count", lambda: 1)  # serial: no process pool start-up in a unit test
    cfg = SimpleNamespace(cache=tmp_path / "cache" / "ci", data=dict(TINY))  # the two fields it reads of a Config
    root = ensure_benchmark(cfg)
    assert root == (tmp_path / "cache" / "ci" / "synthetic").resolve()
    assert (root / "meta.json").exists() and os.listdir(root / "train")
    assert ensure_benchmark(cfg) == root  # the second call finds it


def test_object_boxes_follow_the_actors_hand_and_ball():
    from actx.data.synthetic import make_knobs, plan, render_sample
    from actx.data.synthetic.objects import layout_object_boxes

    knobs = make_knobs(height=64, width=96, thread_frames=32, fps=8, train_per_class=1, test_per_class=1,
                       shifted_per_class=1, negatives_per_scene=0, stills=0, untrimmed=0)
    specs = {s.cls: s for s in plan(knobs) if s.split == "train"}
    for cls, held in ((1, True), (4, False)):  # drink: a cup in hand all thread long; wave: no object
        _, ann, layout = render_sample(specs[cls], knobs)
        boxes = layout_object_boxes(layout)
        if not held:
            assert np.isnan(boxes).all()
            continue
        assert np.isfinite(boxes).all()
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        actor = ann["actor_boxes"][:, 0]
        assert ((centre >= actor[:, :2] - 1) & (centre <= actor[:, 2:] + 1)).all()

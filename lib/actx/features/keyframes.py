"""Stride-8 and stride-16 maps of the frames around key frames, cached on disk: the fixed part of ACRN's trunk.

ACRN (002 section 3.1) splits its trunk at a stride-16 stage (S3D-G ``Mixed_4f``); ours is EfficientNet-Lite0
split after stage 5 (112 channels, stride 16). The part below the split is not trained (our stand-in for the
paper's Kinetics-pretrained trunk, kept fixed to fit a CPU), so its maps are computed once per key frame and
stored (load-or-compute):

    maps = ensure_keyframe_maps(cfg, keys, "train", context=10)
    maps["s16"]   (K, N, 112, H/16, W/16) float16, memory-mapped: N frames centred on each key frame
    maps["s8"]    (K, N, 40, H/8, W/8) float16: stage 3, the earlier layer of the relation ablation (002 Table 1c)

The N frames of key frame f are f - N // 2 ... f + (N - 1) // 2, clipped to the video (edge frames repeat). A
shorter context n is the centred slice :func:`context_slice` of the stored window, so one cache serves 002
Table 1b. Files: ``cfg.cache / "keyframes" / <split>-<hash>/{s16,s8}.npy`` and ``done.json`` (written last); the
hash covers the data, the key frames, the context and the backbone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from actx.config import config_hash
from actx.files import atomic_write, exclusive_lock

# The stages whose outputs are stored: stage 3 (stride 8) and stage 5 (stride 16, the trunk's split).
STAGES = {"s8": 3, "s16": 5}
CACHE = "keyframes"
VERSION = 1  # bump when what is stored changes
FRAMES_PER_BATCH = 16  # frames per backbone call (batch 8 is as fast as 16 on 2 cores: PLATFORM.md)


def window(frame: int, context: int, length: int) -> np.ndarray:
    """(context,) frame indices centred on ``frame``, clipped to [0, length)."""
    return np.clip(frame - context // 2 + np.arange(context), 0, length - 1)


def context_slice(stored: int, context: int) -> slice:
    """The slice of a stored window of ``stored`` frames that is the centred window of ``context`` frames."""
    if not 1 <= context <= stored:
        raise ValueError(f"context {context} must lie in [1, {stored}] (the stored window)")
    start = stored // 2 - context // 2
    return slice(start, start + context)


# Backbones whose stages 1-5 are EfficientNet-Lite0's, unchanged: the output-stride-16 variant only dilates stages
# 6-7, which ACRN's trunk split never runs, so both give the same stride-8 / stride-16 maps (and one cache).
TRUNKS = ("efficientnet_lite0", "efficientnet_lite0_os16")


def cache_dir(cfg: Any, split: str, keys: Sequence[Any], context: int) -> Path:
    ident = {"version": VERSION, "data": cfg.stage_hash("data") if cfg.dataset["name"] == "synthetic"
             else str(cfg.dataset["root"]), "dataset": cfg.dataset["name"], "context": context,
             "backbone": _trunk(cfg), "keys": config_hash({"k": [list(k.key) for k in keys]})}
    return Path(cfg.cache) / CACHE / f"{split}-{config_hash(ident)}"


def _trunk(cfg: Any) -> str:
    if cfg.features["backbone"] not in TRUNKS:
        raise ValueError(f"ACRN's trunk split is implemented for {TRUNKS} (stage 5, stride 16); "
                         f"cfg.features['backbone'] is {cfg.features['backbone']!r}")
    return "efficientnet_lite0"


def _backbone(cfg: Any, device: str):
    _trunk(cfg)
    from actx.backbones import fuse_bn
    from actx.backbones.efficientnet import efficientnet_lite0

    return fuse_bn(efficientnet_lite0()).to(device).to(memory_format=torch.channels_last).eval()


def _frames(key: Any) -> np.ndarray:
    """(T, H, W, 3) uint8: the key frame's video, or its window (AVA: ``key.seconds``)."""
    from actx.video import read_video

    if key.seconds is None:
        return read_video(key.video)
    return read_video(key.video, start=key.seconds[0], end=key.seconds[1])


def ensure_keyframe_maps(cfg: Any, keys: Sequence[Any], split: str, context: int, progress: bool = True
                         ) -> dict[str, np.ndarray]:
    """The stored maps of ``keys`` (actx.data.detection.KeyFrame), computing those missing; memory-mapped."""
    if len(keys) == 0:
        raise ValueError(f"no key frames for split {split!r}: nothing to compute maps of")
    out = cache_dir(cfg, split, keys, context)
    if not (out / "done.json").exists():
        with exclusive_lock(out.parent / f".{out.name}.lock"):  # another process computing them: wait, then load
            if not (out / "done.json").exists():
                _compute(cfg, keys, context, out, progress)
    return {name: np.load(out / f"{name}.npy", mmap_mode="r") for name in STAGES}


@torch.inference_mode()
def _compute(cfg: Any, keys: Sequence[Any], context: int, out: Path, progress: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    device = cfg.device
    model = _backbone(cfg, device)
    by_video: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        by_video.setdefault((k.video, k.seconds), []).append(i)
    arrays: dict[str, np.ndarray] = {}
    tmp = {name: out / f".{name}.tmp.npy" for name in STAGES}
    bar = tqdm(total=len(keys), desc=f"stride-16 maps {out.name}", unit="key frame", disable=not progress)
    for video, idx in by_video.items():
        frames = _frames(keys[idx[0]])
        wins = np.stack([window(keys[i].frame, context, len(frames)) for i in idx])  # (k, N)
        wanted = np.unique(wins)
        maps: dict[str, list[torch.Tensor]] = {name: [] for name in STAGES}
        for lo in range(0, len(wanted), FRAMES_PER_BATCH):
            x = torch.from_numpy(np.ascontiguousarray(frames[wanted[lo: lo + FRAMES_PER_BATCH]])).to(device)
            x = (x.permute(0, 3, 1, 2).float() / 255.0).contiguous(memory_format=torch.channels_last)
            got = model.forward_strides(x, tuple(STAGES.values()))
            for name, stage in STAGES.items():
                maps[name].append(got[stage].float().cpu())
        where = {int(f): j for j, f in enumerate(wanted)}
        for name in STAGES:
            m = torch.cat(maps[name]).numpy().astype(np.float16)  # (F, C, h, w)
            if name not in arrays:
                arrays[name] = np.lib.format.open_memmap(tmp[name], mode="w+", dtype=np.float16,
                                                         shape=(len(keys), context, *m.shape[1:]))
            for i, w in zip(idx, wins):
                arrays[name][i] = m[[where[int(f)] for f in w]]
        bar.update(len(idx))
    bar.close()
    for name, a in arrays.items():
        a.flush()
        del a
        tmp[name].replace(out / f"{name}.npy")
    atomic_write(out / "done.json", lambda p: p.write_text(json.dumps({"keys": len(keys), "context": context})))

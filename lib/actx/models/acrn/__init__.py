"""ACRN, the actor-centric relation network (paper 002), and its Base-Model and alternatives (Table 1a).

- :mod:`.heads`  :class:`DetectionHead`: Base-Model (section 3.1), Resize+Concat, Santoro et al.'s relation
  network and ACRN (section 3.2, Fig. 3b, Eq. 1-2); box offsets encode / decode
- :mod:`.data`   :class:`KeyFrameSet`: key frames with stored stride-8/16 maps, proposals and labels by IoU
- :mod:`.train`  its own ``fit`` (warm-up + cosine, frozen batch norm), ``evaluate`` (per-proposal scores) and
  ``score`` (frame-AP)

The registry rows (actx.experiments.METHODS: acrn_base, acrn_concat, acrn_santoro, acrn) use the runner's
method-level hooks: ``samples`` builds the key-frame sets from the configured records (cfg.detection), ``fit``
trains, ``evaluate`` writes per-proposal predictions and ``score`` computes frame-AP into metrics.json.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch.nn as nn

from .data import KeyFrameSet, collate
from .heads import RELATIONS, DetectionHead, GradScale, TimeFlatten, decode, encode, scaled_unit
from .train import detection_loss, detections, evaluate, fit, gt_table, schedule, score

PARAMS: dict[str, Any] = {
    "relation": "acrn",
    "context": 10,
    "relation_stage": 5,
    "relation_scale": 1.0,
    "grad_mult": 0.01,
    "roi": 7,
    "box_weight": 1.0,
    "repeats": 0,
}
WHY = {
    "relation": "002 Table 1a: none (Base-Model), concat (Resize+Concat), santoro (Santoro et al.), acrn",
    "context": "002 Table 1b: frames around the key frame (the paper's best is 20; ours is 10, so that the "
               "dense key frames of video-AP store 10 frames each on a 2-core CPU; 1, 5 and 20 are the ablation, "
               "from the stored 20-frame window)",
    "relation_stage": "002 Table 1c: the relation input layer; 5 = stride 16 (Mixed_4f's analogue), 3 = stride 8",
    "relation_scale": "002 Table 1c: the relation input map resized by 0.5 or 1.0",
    "grad_mult": "002 section 4.1: gradients from the relation branch into the feature map x 0.01",
    "roi": "002 section 3.1: ROI-align to 7 x 7 per actor box",
    "repeats": "ours: stage 6's residual blocks kept in the classification network and f_phi (0-3). 3 is the "
               "whole stage (the paper's whole Mixed_5b-5c); 0 keeps stage 6's first block and stage 7, 40 % of "
               "the cost, so that a 2-core CPU trains the chapter's runs (the full profile: pass 3)",
    "box_weight": "open: the weight of the box regression loss; 1, the Faster R-CNN default (not tuned)",
}


def build_head(in_channels: int, num_classes: int, params: dict, base: nn.Module | None = None) -> DetectionHead:
    if in_channels != 112:
        raise ValueError(f"ACRN reads EfficientNet-Lite0 stage-5 maps (112 channels), got {in_channels}")
    return DetectionHead(num_classes, relation=params["relation"], context=int(params["context"]),
                         roi=int(params["roi"]), relation_stage=int(params["relation_stage"]),
                         relation_scale=float(params["relation_scale"]), grad_mult=float(params["grad_mult"]),
                         repeats=int(params["repeats"]))


def build_objective(params: dict, multi_label: bool, inputs: Sequence[str] = ()):
    """Multi-label sigmoid cross-entropy per proposal plus box regression (ACRN is multi-label whatever the data
    set: 002 section 3.1's "linear classifier" over AVA's multi-label actions)."""
    weight = float(params["box_weight"])

    def objective(head: nn.Module, batch: dict) -> dict:
        out = head(batch["f16"], batch["rois"], batch.get("f8"), size=batch["size"])
        return detection_loss(out, batch, weight)

    return objective


# The paper's numbers (frame-AP / video-AP in percent, J-HMDB 3 splits; AVA v2.1 frame-AP), 002 Tables 1, 3-4.
PAPER_TABLE_1A = {"acrn_base": 75.2, "acrn_concat": 74.8, "acrn_santoro": 75.1, "acrn": 77.6}
PAPER_TABLE_1B = {1: (52.6, 54.0), 5: (66.1, 69.8), 10: (70.6, 74.9), 20: (75.2, 77.6)}  # frames: (Base, ACRN)
# Table 1c by (our stage, scale): stage 5 (stride 16) ~ Mixed_4f, stage 3 (stride 8) ~ Mixed_3b (both stride 8 /
# 16 in space in S3D-G).
PAPER_TABLE_1C = {(5, 0.5): 77.1, (5, 1.0): 77.6, (3, 0.5): 76.2, (3, 1.0): 76.4}
PAPER_JHMDB = {"acrn_base": (75.2, 78.8), "acrn": (77.9, 80.1)}  # (frame-AP, video-AP)
PAPER_AVA = {"acrn_base": 15.5, "acrn": 17.4}


# Real sets the chapters run on, as cfg.dataset overrides (root: DATA_ROOT/<name>). J-HMDB: split 1 (002 averages
# its 3 splits; run the notebook with the others by changing train_split / eval_splits). AVA v2.1: train / val.
DATASETS = {
    "jhmdb": dict(train_split="train1", eval_splits=("test1",), multi_label=False),
    "ava": dict(train_split="train", eval_splits=("val",), multi_label=True),
}


def detection_config(cfg: Any, dataset: str = "synthetic") -> Any:
    """``cfg`` for the detection chapters: the embedded benchmark reported on ``test`` and ``test_shifted``
    (its scenes' context shifted against the actions: does relation reasoning lean on the scene more than the
    Base-Model does?), or a real set from DATASETS under DATA_ROOT/<name>."""
    if dataset == "synthetic":
        return cfg.replace(dataset__eval_splits=("test", "test_shifted"))
    if dataset not in DATASETS:
        raise ValueError(f"DATASET must be 'synthetic' or one of {sorted(DATASETS)}, got {dataset!r}")
    over = {f"dataset__{k}": v for k, v in DATASETS[dataset].items()}
    return cfg.replace(dataset__name=dataset, dataset__root=str(cfg.data_root / dataset), **over)


def user_proposals(path: str, keys: Sequence[Any]):
    """A detector's boxes from an AVA-format CSV (actx.data.detection.read_ava_proposals) for ``keys``: rows
    named (video id, timestamp) for AVA records, else (clip id, frame), in pixels of each key frame."""
    from actx.data.detection import read_ava_proposals

    def name(k):  # how the file names a key frame
        extra = getattr(k.record, "extra", {}) or {}
        return (str(extra["video_id"]), int(extra["timestamp"])) if "timestamp" in extra else (k.clip, k.frame)

    import numpy as np

    rows = read_ava_proposals(path)  # normalised boxes; the file may hold other splits' key frames too
    where = {name(k): k for k in keys}
    rows = rows[[(v, f) in where for v, f in zip(rows["video"], rows["frame"])]].reset_index(drop=True)
    found = [where[(v, f)] for v, f in zip(rows["video"], rows["frame"])]
    scale = np.array([[k.size[1], k.size[0], k.size[1], k.size[0]] for k in found], np.float32).reshape(-1, 4)
    rows[["x1", "y1", "x2", "y2"]] = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float32) * scale
    rows["video"] = [k.clip for k in found]
    rows["frame"] = [k.frame for k in found]
    return rows


_KEYS: dict = {}  # key frames per (records, per_clip, classes), read once per process: every run of a chapter
# builds the same train / val / test key frames, and reading their annotations cost a second per run.


def _key_frames(records: Sequence[Any], classes: tuple, per_clip: int) -> list:
    from actx.data.detection import key_frames

    name = (tuple((r.id, str(r.video), tuple(r.labels)) for r in records), classes, per_clip)
    if name not in _KEYS:
        if len(_KEYS) >= 16:
            _KEYS.clear()
        _KEYS[name] = key_frames(records, classes, per_clip)
    return _KEYS[name]


def samples(cfg: Any, records: Sequence[Any], split: str, params: dict, seed: int, progress: bool = True,
            training: bool = False) -> KeyFrameSet:
    """The key-frame set of ``records`` (one split): cfg.detection's key frames per clip and stored window,
    maps load-or-compute (actx.features.keyframes), the stand-in proposals (seeded by the split name, not the
    run's seed, so that every method sees the same boxes). Training uses the proposals only, as 002 trains on
    its RPN's proposals (adding the ground-truth boxes would double the cost of a CPU epoch); ``training`` is
    kept for the runner's signature."""
    import zlib

    from actx.data.detection import stand_in_proposals
    from actx.features.keyframes import ensure_keyframe_maps

    det = cfg.detection
    classes = tuple(records.classes)
    keys = _key_frames(records, classes, int(det["per_clip"]))
    maps = ensure_keyframe_maps(cfg, keys, split, int(det["context"]), progress=progress)
    proposals = (stand_in_proposals(keys, seed=zlib.crc32(split.encode())) if det["proposals"] is None
                 else user_proposals(det["proposals"], keys))
    return KeyFrameSet(keys, maps, proposals, classes, int(params["context"]), with_gt=False,
                       need_s8=int(params["relation_stage"]) == 3)


__all__ = ["user_proposals", "PAPER_AVA", "PAPER_JHMDB", "PAPER_TABLE_1A", "PAPER_TABLE_1B", "PAPER_TABLE_1C", "DATASETS", "PARAMS", "WHY", "detection_config", "RELATIONS", "DetectionHead", "GradScale", "KeyFrameSet", "TimeFlatten",
           "build_head", "build_objective", "collate", "decode", "detection_loss", "detections", "encode",
           "evaluate", "fit", "gt_table", "samples", "scaled_unit", "schedule", "score"]

"""Key-frame samples for ACRN training and evaluation: stored maps, proposals, labels by IoU.

A sample is one key frame: its stride-16 (and stride-8) maps over the N frames around it
(actx.features.keyframes), its actor proposals (actx.data.detection.stand_in_proposals, or a user's), and each
proposal's labels and regression target from the ground-truth persons (assign_labels, LABEL_IOU). For training,
the ground-truth person boxes are added to the proposals (the usual Faster R-CNN practice, so that every person
is seen with an exact box).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from actx.data.detection import KeyFrame, assign_labels, ground_truth
from actx.features.keyframes import context_slice


class KeyFrameSet(Dataset):
    """Key frames with maps and proposals.

    keys       [KeyFrame]; maps {"s16": (K, Nmax, 112, h, w), "s8": (K, Nmax, 40, 2h, 2w)} (stored windows)
    proposals  DataFrame video, frame, score, x1, y1, x2, y2 (pixels) for these key frames
    context    frames N taken (the centred slice of the stored window)
    with_gt    add the ground-truth person boxes to the proposals (training)
    need_s8    load the stride-8 maps too (a relation module reading stage 3)
    """

    def __init__(self, keys: Sequence[KeyFrame], maps: dict, proposals: pd.DataFrame, classes: Sequence[str],
                 context: int, with_gt: bool = False, need_s8: bool = False):
        self.keys, self.maps, self.classes = list(keys), maps, tuple(classes)
        if len(self.keys) == 0:
            raise ValueError("no key frames")
        self.window = context_slice(maps["s16"].shape[1], context)
        self.need_s8 = need_s8
        sizes = {k.size for k in self.keys}
        if len(sizes) != 1:
            raise ValueError(f"key frames of one set must share a frame size, got {sorted(sizes)}")
        self.size = sizes.pop()
        self.in_channels = int(maps["s16"].shape[2])
        groups = {key: g for key, g in proposals.groupby(["video", "frame"], sort=False)}
        self.items = []
        for k in self.keys:
            g = groups.get(k.key)
            boxes = (g[["x1", "y1", "x2", "y2"]].to_numpy(np.float32) if g is not None
                     else np.zeros((0, 4), np.float32))
            scores = g["score"].to_numpy(np.float32) if g is not None else np.zeros(0, np.float32)
            if with_gt:
                boxes = np.concatenate([boxes, k.boxes.astype(np.float32)])
                scores = np.concatenate([scores, np.ones(len(k.boxes), np.float32)])
            labels, targets, matched = assign_labels(boxes, k.boxes, k.labels)
            self.items.append({"boxes": boxes, "scores": scores, "labels": labels, "targets": targets,
                               "matched": matched})
        self.ids = [f"{k.clip}:{k.frame}" for k in self.keys]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict[str, Any]:
        it = self.items[i]
        out = {"f16": torch.from_numpy(np.asarray(self.maps["s16"][i, self.window], np.float32)).transpose(0, 1),
               **{k: torch.from_numpy(np.asarray(v)) for k, v in it.items()}, "index": i, "size": self.size}
        if self.need_s8:
            out["f8"] = torch.from_numpy(np.asarray(self.maps["s8"][i, self.window], np.float32)).transpose(0, 1)
        return out  # f16 (C, N, h, w)

    def ground_truth(self) -> pd.DataFrame:
        return ground_truth(self.keys, self.classes)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Key frames -> f16 (B, C, N, h, w) [f8], rois (K, 5) with the key frame's batch index, per-box arrays
    concatenated (K, ...), "index" (B,) and "size" (H, W)."""
    out: dict[str, Any] = {"f16": torch.stack([s["f16"] for s in samples])}
    if "f8" in samples[0]:
        out["f8"] = torch.stack([s["f8"] for s in samples])
    b = torch.cat([torch.full((len(s["boxes"]), 1), float(i)) for i, s in enumerate(samples)])
    out["rois"] = torch.cat([b, torch.cat([s["boxes"] for s in samples]).float()], 1)
    for k in ("scores", "labels", "targets", "matched"):
        out[k] = torch.cat([s[k] for s in samples])
    out["index"] = torch.tensor([s["index"] for s in samples])
    out["size"] = samples[0]["size"]  # (H, W) of the frames, shared by the set
    return out

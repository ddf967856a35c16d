"""Frame-AP, video-AP, tube IoU and tube linking: the detection metrics of the ACRN paper (002 section 4.1).

Re-exported from :mod:`actx.metrics`. Tables use the columns of :mod:`actx.detection_metrics`: detections
``video, frame, label, score, x1, y1, x2, y2``; ground truth the same without ``score``. Boxes are xyxy in any
consistent unit (pixels here). The VOC AP of a ranking is :func:`actx.detection_metrics.voc_average_precision`
(all-point: the area under the precision envelope), shared with ``ava_frame_map``.

Rules of :func:`frame_ap` (002: "frame-AP with an IoU threshold of 0.5", the J-HMDB convention of Gkioxari and
Malik 2015 and the ACT detector's evaluation, restated):

1. Per class, all detections of that class are ranked by score, descending (stable: ties keep ``det``'s order).
2. Greedy matching down the ranking: a detection is compared with the ground-truth boxes of its key frame
   (same video and frame, same class) that are *not yet matched*, and takes the one it overlaps most; it is a
   true positive when that IoU >= ``iou`` (each ground truth is matched at most once), else a false positive.
   This differs from the AVA evaluator's rule (argmax over all boxes, matched or not): see ava_frame_map.
3. AP per class by VOC all-point interpolation; a class with ground truth but no detection has AP 0; a class
   without ground truth has AP NaN and is left out of the mean.

Tubes (:class:`Tube`) are per-frame boxes of one actor and class over a range of frames of one video.
:func:`tube_iou` is the temporal IoU of the two frame ranges times the mean spatial IoU over the frames both
tubes have a box on (the J-HMDB / UCF101-24 spatio-temporal overlap). :func:`video_ap` applies rules 1-3 to
tubes, with tube IoU in place of box IoU and the video in place of the key frame.

:func:`link_tubes` turns per-frame detections into tubes with the dynamic-programming (Viterbi) linking of
Gkioxari and Malik (2015, "Finding action tubes"), the linking the video-AP literature on J-HMDB uses; 002
cites the AVA paper (its ref. [13]) for its linking, whose text is not in our papers folder: that it is this
same algorithm is our reading, not a fact we could check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

from .detection_metrics import (BOX_COLUMNS, DET_COLUMNS, FRAME_IOU, GT_COLUMNS, box_iou, checked_table,
                                voc_average_precision)

# The weight of the overlap term in the linking score (Gkioxari and Malik 2015, Eq. 3: lambda = 1, the score and
# the IoU of consecutive boxes count alike).
LINK_LAMBDA = 1.0
# Tubes linked per video and class: J-HMDB clips hold one action instance, so one tube per class is the usual
# setting; a user with multi-actor videos raises it.
LINK_TUBES_PER_CLASS = 1
# A video tube overlaps its ground truth enough at the same 0.5 as a frame box (002 section 4.1).
VIDEO_IOU = FRAME_IOU


@dataclass
class Tube:
    """One action tube: ``boxes`` (T, 4) xyxy on ``frames`` (T,) strictly increasing frame numbers of ``video``,
    labelled ``label``; ``score`` for a detected tube (None for ground truth)."""

    video: str
    label: Hashable
    frames: np.ndarray
    boxes: np.ndarray
    score: float | None = None

    def __post_init__(self):
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes) or len(self.frames) == 0:
            raise ValueError(f"Tube of video {self.video!r}: frames ({len(self.frames)}) and boxes "
                             f"({len(self.boxes)}) must be equally many and not empty")
        if np.any(np.diff(self.frames) <= 0):
            raise ValueError(f"Tube of video {self.video!r}: frames must be strictly increasing")

    @property
    def span(self) -> tuple[int, int]:
        """First and last frame (inclusive)."""
        return int(self.frames[0]), int(self.frames[-1])


def _labels(gt_labels, classes) -> list:
    if classes is not None:
        return list(classes)
    unique = list(dict.fromkeys(gt_labels))
    try:
        return sorted(unique)
    except TypeError:
        return unique


def _greedy_ap(scores: np.ndarray, groups: list, overlaps: list, n_gt: int, iou: float) -> float:
    """Rules 1-3 for one class: ``overlaps[i]`` (G_i,) overlaps of detection i with the ground truths of its
    group ``groups[i]`` (a key into a dict of matched flags)."""
    if n_gt == 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    taken: dict = {}
    hits = np.zeros(len(order), dtype=bool)
    for rank, i in enumerate(order):
        ov = overlaps[i]
        if ov is None or len(ov) == 0:
            continue
        free = ~taken.setdefault(groups[i], np.zeros(len(ov), dtype=bool))
        if not free.any():
            continue
        j = int(np.argmax(np.where(free, ov, -1.0)))
        if ov[j] >= iou:
            hits[rank] = True
            taken[groups[i]][j] = True
    return voc_average_precision(hits, n_gt)


def _summary(per_class: dict, fn: str) -> dict:
    aps = [v for v in per_class.values() if not math.isnan(v)]
    if not aps:
        raise ValueError(f"{fn}: no class has ground truth; check that gt's labels match det's and classes")
    return {"per_class": per_class, "mAP": float(np.mean(aps))}


def frame_ap(det: pd.DataFrame, gt: pd.DataFrame, iou: float = FRAME_IOU,
             classes: Sequence[Hashable] | None = None) -> dict:
    """Frame-AP (rules 1-3 of the module docstring): VOC all-point AP per class over key frames.

    det  DataFrame ``video, frame, label, score, x1, y1, x2, y2``; gt the same without ``score``
    iou  the overlap a true positive needs (0.5, 002 section 4.1)
    classes  the evaluated classes (default: the labels in ``gt``); rows of other labels are ignored
    Returns ``{"per_class": {label: AP}, "mAP": float}`` (AP as fractions; NaN for a class without gt).
    """
    if not 0 < iou <= 1:
        raise ValueError(f"frame_ap: iou must lie in (0, 1], got {iou!r}")
    det = checked_table(det, DET_COLUMNS, "det", "frame_ap")
    gt = checked_table(gt, GT_COLUMNS, "gt", "frame_ap")
    per_class = {}
    for c in _labels(gt["label"], classes):
        g, d = gt[gt["label"] == c], det[det["label"] == c]
        boxes = {k: v[list(BOX_COLUMNS)].to_numpy() for k, v in g.groupby(["video", "frame"], sort=False)}
        keys = list(zip(d["video"], d["frame"]))
        db = d[list(BOX_COLUMNS)].to_numpy()
        overlaps = [box_iou(db[i:i + 1], boxes[k])[0] if k in boxes else None for i, k in enumerate(keys)]
        per_class[c] = _greedy_ap(d["score"].to_numpy(), keys, overlaps, len(g), iou)
    return _summary(per_class, "frame_ap")


def tube_iou(t1: Tube, t2: Tube) -> float:
    """Spatio-temporal overlap: temporal IoU of the frame ranges [first, last] (inclusive) times the mean box
    IoU over the frames both tubes have a box on. 0 when the ranges do not overlap or no frame is shared."""
    (a0, a1), (b0, b1) = t1.span, t2.span
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    t_iou = inter / (max(a1, b1) - min(a0, b0) + 1)
    common, i1, i2 = np.intersect1d(t1.frames, t2.frames, return_indices=True)
    if len(common) == 0:
        return 0.0
    spatial = np.diag(box_iou(t1.boxes[i1], t2.boxes[i2]))  # (F,) IoU frame by frame
    return float(t_iou * spatial.mean())


def video_ap(det_tubes: Sequence[Tube], gt_tubes: Sequence[Tube], iou: float = VIDEO_IOU,
             classes: Sequence[Hashable] | None = None) -> dict:
    """Video-AP: rules 1-3 on tubes. A detected tube is compared with the not yet matched ground-truth tubes of
    its video and class and takes the one of highest :func:`tube_iou`; a true positive when that is >= ``iou``.
    Returns ``{"per_class": {label: AP}, "mAP": float}``."""
    if not 0 < iou <= 1:
        raise ValueError(f"video_ap: iou must lie in (0, 1], got {iou!r}")
    for t in det_tubes:
        if t.score is None or not math.isfinite(t.score):
            raise ValueError(f"video_ap: detected tube of video {t.video!r}, label {t.label!r} has no finite score")
    per_class = {}
    for c in _labels([t.label for t in gt_tubes], classes):
        g = [t for t in gt_tubes if t.label == c]
        d = [t for t in det_tubes if t.label == c]
        by_video: dict[str, list[Tube]] = {}
        for t in g:
            by_video.setdefault(str(t.video), []).append(t)
        overlaps = [np.array([tube_iou(t, u) for u in by_video.get(str(t.video), [])]) for t in d]
        scores = np.array([t.score for t in d], dtype=np.float64)
        per_class[c] = _greedy_ap(scores, [str(t.video) for t in d], overlaps, len(g), iou)
    return _summary(per_class, "video_ap")


def link_tubes(frame_detections: pd.DataFrame, classes: Sequence[Hashable] | None = None,
               lam: float = LINK_LAMBDA, tubes_per_class: int = LINK_TUBES_PER_CLASS) -> list[Tube]:
    """Link per-frame detections into tubes (Gkioxari and Malik 2015, Eq. 3), per video and class.

    frame_detections  DataFrame ``video, frame, label, score, x1, y1, x2, y2``: per frame, the candidate boxes
        with their score for ``label`` (one row per box and label)
    Per video and class, over the video's frames that have candidates, in frame order: choose one box per frame
    maximising sum_t score(d_t) + lam * sum_t IoU(d_t, d_{t+1}) (Viterbi); the tube's score is the mean of its
    boxes' scores. Its boxes are removed and the next tube is linked, up to ``tubes_per_class`` tubes.
    Returns the tubes (Tube with score).
    """
    det = checked_table(frame_detections, DET_COLUMNS, "frame_detections", "link_tubes")
    det["frame"] = det["frame"].astype(np.int64)
    wanted = None if classes is None else set(classes)
    tubes = []
    for (video, label), g in det.groupby(["video", "label"], sort=True):
        if wanted is not None and label not in wanted:
            continue
        frames = {int(f): (x[list(BOX_COLUMNS)].to_numpy(), x["score"].to_numpy())
                  for f, x in g.groupby("frame", sort=True)}
        for _ in range(tubes_per_class):
            order = sorted(f for f, (b, _s) in frames.items() if len(b))
            if not order:
                break
            path = _viterbi([frames[f] for f in order], lam)
            boxes = np.stack([frames[f][0][k] for f, k in zip(order, path)])
            scores = np.array([frames[f][1][k] for f, k in zip(order, path)])
            tubes.append(Tube(str(video), label, np.array(order), boxes, float(scores.mean())))
            for f, k in zip(order, path):
                b, s = frames[f]
                frames[f] = (np.delete(b, k, 0), np.delete(s, k))
    return tubes


def _viterbi(steps: list[tuple[np.ndarray, np.ndarray]], lam: float) -> list[int]:
    """The index of the chosen box in every step, maximising the sum of scores plus lam * consecutive IoUs."""
    value = steps[0][1].astype(np.float64)  # (K_0,) best path value ending at each box
    back = []
    for (pb, _ps), (b, s) in zip(steps[:-1], steps[1:]):
        total = value[:, None] + lam * box_iou(pb, b)  # (K_prev, K)
        back.append(total.argmax(0))
        value = total.max(0) + s
    path = [int(value.argmax())]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return path[::-1]

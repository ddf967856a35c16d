"""Weakly supervised localisation from attention (paper 003 section 4.2): boxes from spatial masks, segments
from temporal attention, and the measures both are scored with.

Spatial (003 4.2.1): the mask is upsampled to the frame (bilinear, MASK_UPSAMPLE), thresholded at
MASK_THRESHOLD (the paper's 0.5), and the tightest box around its largest connected component (the paper takes
the box of the whole thresholded map; one component keeps a stray cell from inflating the box) is the
prediction; a frame counts as localised at IoU alpha when the box overlaps a ground-truth actor box with IoU >=
alpha (:func:`actx.metrics.box_iou`: disjoint boxes give exactly 0; the authors' script multiplied the two axis
overlaps without clipping them, so two negative overlaps gave a positive "IoU"; :func:`naive_iou` keeps that
bug for the test that shows it). Two measures: the localisation accuracy (share of frames localised at alpha,
:func:`localisation_accuracy`) and the frame-level detection mAP the paper's Table 3 caption names
(:func:`frame_map`: each frame's box scored for every class by class probability x box confidence).

Temporal (003 4.2.2): the attention over a video's frames is min-max normalised and thresholded at
ATTENTION_THRESHOLD (the paper's 0.5); each run of frames above it is a segment. Scored by the standard
temporal-detection mAP (per class, greedy matching by score at tIoU thresholds, each ground truth matched once)
and by the per-frame measure :func:`frame_scores` (frame accuracy and frame IoU of the thresholded attention
against the annotated action frames), our reading of the authors' frame-level comparison.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from actx.detection_metrics import box_iou

MASK_THRESHOLD = 0.5  # 003 section 4.2.1
MASK_UPSAMPLE = 8  # grid cells -> 8 x 8 sub-cells before thresholding: a smooth box edge on a 4 x 6 map
ATTENTION_THRESHOLD = 0.5  # 003 section 4.2.2
SPATIAL_IOUS = (0.05, 0.1, 0.2, 0.3)  # 003 Table 3
TEMPORAL_IOUS = (0.1, 0.2, 0.3, 0.4, 0.5)  # 003 Table 4


def naive_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """The buggy IoU: the overlaps in x and y multiplied without clipping at 0 (two disjoint axes give a
    positive product). For tests only; use actx.metrics.box_iou."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def _largest_component(binary: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(binary)  # 4-connectivity
    if count == 0:
        return binary
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def mask_box(mask: np.ndarray, threshold: float = MASK_THRESHOLD, upsample: int = MASK_UPSAMPLE
             ) -> np.ndarray | None:
    """The box of a (h, w) mask in fractions of the frame, (x1, y1, x2, y2), or None when no cell passes the
    threshold."""
    return scored_mask_box(mask, threshold, upsample)[0]


def scored_mask_box(mask: np.ndarray, threshold: float = MASK_THRESHOLD, upsample: int = MASK_UPSAMPLE
                    ) -> tuple[np.ndarray | None, float]:
    """:func:`mask_box` and its confidence, the mean upsampled mask value over the boxed component (the
    score of a frame's box in :func:`frame_map`; 0.0 with no box)."""
    import torch
    import torch.nn.functional as F

    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 2:
        raise ValueError(f"mask_box takes one (h, w) mask, got shape {mask.shape}")
    h, w = mask.shape
    up = F.interpolate(torch.from_numpy(mask)[None, None], size=(h * upsample, w * upsample), mode="bilinear",
                       align_corners=False)[0, 0].numpy()  # (h u, w u)
    comp = _largest_component(up > threshold)
    if not comp.any():
        return None, 0.0
    ys, xs = np.nonzero(comp)
    box = np.array([xs.min() / up.shape[1], ys.min() / up.shape[0], (xs.max() + 1) / up.shape[1],
                    (ys.max() + 1) / up.shape[0]])
    return box, float(up[comp].mean())


def box_hits(pred: np.ndarray | None, gt: np.ndarray) -> float:
    """Best IoU of a predicted box with any ground-truth box of the frame (gt (A, 4); all-zero rows ignored);
    0 for no prediction."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    gt = gt[(gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])]
    if pred is None or len(gt) == 0:
        return 0.0
    return float(box_iou(np.asarray(pred)[None], gt).max())


def localisation_accuracy(ious: Iterable[float], alphas: Sequence[float] = SPATIAL_IOUS) -> dict[float, float]:
    """Share of frames whose best IoU is >= alpha, per alpha."""
    ious = np.asarray(list(ious), dtype=np.float64)
    if ious.size == 0:
        raise ValueError("localisation_accuracy: no frames")
    return {a: float((ious >= a).mean()) for a in alphas}


def frame_map(det: pd.DataFrame, gt: pd.DataFrame, alphas: Sequence[float] = SPATIAL_IOUS
              ) -> dict[float, float]:
    """Frame-level detection mAP at each IoU alpha (003 Table 3 reports "mAP at IoU alpha"; UCF101-24's frame-mAP):
    det ``video, frame, label, score, x1, y1, x2, y2`` (one mask box per frame, scored for every class), gt the
    same without ``score`` (every actor box of the frame, labelled with the clip's action). Per class, detections
    ranked by score over all frames, each ground-truth box matched once at IoU >= alpha, Pascal VOC AP
    (actx.metrics.ava_frame_map with every detection kept); the mean over the classes with ground truth."""
    from actx.detection_metrics import ava_frame_map

    return {a: float(ava_frame_map(det, gt, iou=a, max_per_frame=None)["mAP"]) for a in alphas}


# --- temporal ------------------------------------------------------------------------------------------------
def normalise(curve: np.ndarray) -> np.ndarray:
    """Min-max normalised attention (003 4.2.2: "the normalized temporal attention"); a flat curve gives ones
    (every frame equally important: the whole video is one segment)."""
    curve = np.asarray(curve, dtype=np.float64)
    span = curve.max() - curve.min()
    return np.ones_like(curve) if span <= 1e-12 * max(1.0, abs(curve.max())) else (curve - curve.min()) / span


def segments(curve: np.ndarray, threshold: float = ATTENTION_THRESHOLD) -> list[tuple[int, int, float]]:
    """Runs of the normalised curve at or above ``threshold``: [(start, end, mean normalised value)], end
    exclusive, in the curve's own units (steps)."""
    norm = normalise(curve)
    on = np.concatenate([[False], norm >= threshold, [False]])
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return [(int(s), int(e), float(norm[s:e].mean())) for s, e in zip(edges[::2], edges[1::2])]


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def detection_ap(det: Sequence[tuple], gt: Sequence[tuple], tiou: float) -> float:
    """AP of one class: det [(video, start, end, score)], gt [(video, start, end)]; greedy by score, each ground
    truth matched at most once, AP as the mean precision at each true positive over all ground truths (the
    THUMOS evaluator's non-interpolated AP). NaN when the class has no ground truth."""
    if not gt:
        return float("nan")
    used = [False] * len(gt)
    tp = []
    for video, s, e, _ in sorted(det, key=lambda d: -d[3]):
        best, j_best = tiou, -1
        for j, (v, gs, ge) in enumerate(gt):
            if v == video and not used[j]:
                o = temporal_iou((s, e), (gs, ge))
                if o >= best:
                    best, j_best = o, j
        tp.append(j_best >= 0)
        if j_best >= 0:
            used[j_best] = True
    tp = np.array(tp, dtype=bool)
    if tp.size == 0:
        return 0.0
    precision = np.cumsum(tp) / np.arange(1, tp.size + 1)
    return float(precision[tp].sum() / len(gt))


def detection_map(det: Sequence[tuple], gt: Sequence[tuple], tious: Sequence[float] = TEMPORAL_IOUS
                  ) -> dict[float, float]:
    """Temporal detection mAP per tIoU: det [(video, label, start, end, score)], gt [(video, label, start, end)];
    the mean over the classes that have ground truth."""
    labels = sorted({g[1] for g in gt})
    out = {}
    for t in tious:
        aps = [detection_ap([(d[0], d[2], d[3], d[4]) for d in det if d[1] == c],
                            [(g[0], g[2], g[3]) for g in gt if g[1] == c], t) for c in labels]
        out[t] = float(np.mean(aps)) if aps else float("nan")
    return out


def frame_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Per-frame agreement of a predicted action indicator with the annotated action frames (both (F,) bool):
    accuracy (share of frames labelled right) and IoU (action frames in both / in either)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"frame_scores: prediction {pred.shape} and truth {truth.shape} differ")
    union = (pred | truth).sum()
    return {"accuracy": float((pred == truth).mean()), "iou": float((pred & truth).sum() / union) if union else 1.0}

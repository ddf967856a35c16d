"""Evaluation: average precision, class accuracies, and grounding metrics on attention maps.

Recognition (the papers' metrics): :func:`average_precision` and :func:`mean_average_precision` (ActionThread,
Hollywood2, VOC; ActX Tables 1-2), :func:`mean_class_accuracy` (HACS-30, ActX Table 3), :func:`top_k_accuracy`
(top-1 / top-5, paper 003).

Grounding (what the papers could not compute, as their data sets have no actor masks): :func:`mask_to_grid`
puts a pixel-level actor mask on the feature-map grid, :func:`grounding_metrics` scores the maps S and C
against it.

Detection (ACRN, paper 002), from :mod:`actx.detection_metrics`: :func:`box_iou` and :func:`ava_frame_map`
(frame-mAP under the official AVA evaluator's rules, excluded key frames skipped); from :mod:`actx.tube_metrics`:
:func:`frame_ap` (J-HMDB frame-AP), :func:`tube_iou`, :func:`video_ap` and :func:`link_tubes` (video-AP).

Inputs may be numpy arrays or torch tensors; results are python floats or numpy arrays.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

from .detection_metrics import AVA_MAX_DETECTIONS_PER_FRAME, ava_frame_map, box_iou, voc_average_precision
from .tube_metrics import Tube, frame_ap, link_tubes, tube_iou, video_ap

__all__ = [
    "AVA_MAX_DETECTIONS_PER_FRAME", "Tube", "average_precision", "frame_ap", "link_tubes", "tube_iou", "video_ap", "ava_frame_map", "box_iou", "grounding_metrics",
    "mask_to_grid", "mean_average_precision", "mean_class_accuracy", "per_class_average_precision",
    "top_k_accuracy", "voc_average_precision",
]


def _np(x, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _binary(labels, shape: tuple[int, ...]) -> np.ndarray:
    y = _np(labels)
    if y.shape != shape:
        raise ValueError(f"labels have shape {y.shape}, scores {shape}: they must match")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be binary (0/1 or bool)")
    return y.astype(bool)


def average_precision(scores, labels) -> float:
    """Non-interpolated average precision of one class: sum over ranks of precision x recall increment.

    scores (N,), labels (N,) binary. This is scikit-learn's ``average_precision_score``:
    AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, high to low. Tied scores form one
    threshold (their positives and negatives enter together), so the result does not depend on the order of
    tied samples. Raises ValueError when there is no positive (recall, hence AP, is undefined) or a score is
    not finite.
    """
    s = _np(scores)
    if s.ndim != 1:
        raise ValueError(f"average_precision takes 1-d scores, got shape {s.shape}")
    y = _binary(labels, s.shape)
    if not np.isfinite(s).all():
        raise ValueError("average_precision: scores contain NaN or inf")
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("average_precision: no positive label, AP is undefined")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each block of tied scores
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_average_precision(scores, labels) -> np.ndarray:
    """AP of every class: scores (N, C), labels (N, C) binary -> (C,), NaN for a class without positives."""
    s = _np(scores)
    if s.ndim != 2:
        raise ValueError(f"expected scores (N, C), got shape {s.shape}")
    y = _binary(labels, s.shape)
    return np.array([average_precision(s[:, c], y[:, c]) if y[:, c].any() else math.nan
                     for c in range(s.shape[1])])


def mean_average_precision(scores, labels) -> float:
    """Mean over classes of :func:`average_precision`: scores (N, C), labels (N, C) binary multi-hot.

    Rule for a class without any positive in ``labels``: its AP is undefined, so it is left out of the mean,
    with a warning naming it (a small evaluation split can miss a class). Raises ValueError when no class has
    one.
    """
    ap = per_class_average_precision(scores, labels)
    missing = np.flatnonzero(np.isnan(ap))
    if missing.size == ap.size:
        raise ValueError("mean_average_precision: no class has a positive label")
    if missing.size:
        warnings.warn(f"mean_average_precision: classes {missing.tolist()} have no positive label and are "
                      "left out of the mean", stacklevel=2)
    return float(np.nanmean(ap))


def _label_sets(labels, n: int, c: int) -> np.ndarray:
    """(N,) class indices or (N, C) multi-hot -> (N, C) bool."""
    y = _np(labels)
    if y.shape == (n,):
        if not (np.isin(y, np.arange(c))).all():
            raise ValueError(f"class indices must lie in [0, {c}), got {np.unique(y)[:10]}")
        out = np.zeros((n, c), dtype=bool)
        out[np.arange(n), y.astype(int)] = True
        return out
    return _binary(y, (n, c))


def _ranking(s: np.ndarray) -> np.ndarray:
    """Classes by descending score per row; ties go to the lower class index (a stable sort)."""
    return np.argsort(-s, axis=1, kind="mergesort")


def top_k_accuracy(scores, labels, k: int = 1) -> float:
    """Share of samples with a true class among the k highest scores. scores (N, C); labels (N,) or (N, C).

    Ties in the scores go to the lower class index. Samples without any label (negatives) are left out.
    """
    s = _np(scores)
    if s.ndim != 2:
        raise ValueError(f"expected scores (N, C), got shape {s.shape}")
    y = _label_sets(labels, *s.shape)
    keep = y.any(1)
    if not keep.any():
        raise ValueError("top_k_accuracy: no sample has a label")
    top = _ranking(s[keep])[:, :k]
    return float(np.take_along_axis(y[keep], top, 1).any(1).mean())


def mean_class_accuracy(scores, labels) -> float:
    """Per-class accuracy (recall of the top-1 prediction), averaged over the classes present (ActX Table 3).

    scores (N, C); labels (N,) class indices or (N, C) one-hot (exactly one label per sample). Ties go to the
    lower class index. Classes without any sample are left out of the mean.
    """
    s = _np(scores)
    if s.ndim != 2:
        raise ValueError(f"expected scores (N, C), got shape {s.shape}")
    y = _label_sets(labels, *s.shape)
    if not (y.sum(1) == 1).all():
        raise ValueError("mean_class_accuracy needs exactly one label per sample")
    true, pred = y.argmax(1), _ranking(s)[:, 0]
    return float(np.mean([np.mean(pred[true == c] == c) for c in np.unique(true)]))


def _cell_bounds(size: int, cells: int, stride: int | None) -> list[tuple[int, int]]:
    if stride is None:  # even split, as adaptive average pooling does: cells may overlap by one pixel
        return [(math.floor(i * size / cells), math.ceil((i + 1) * size / cells)) for i in range(cells)]
    return [(i * stride, min((i + 1) * stride, size)) for i in range(cells)]


def mask_to_grid(actor_mask, grid: Sequence[int], time_stride: int, space_stride: int | None = None,
                 bounds: tuple[Sequence[tuple[int, int]], Sequence[tuple[int, int]]] | None = None) -> np.ndarray:
    """The fraction of each map cell covered by the actor: (T, H, W) binary mask -> (T', h, w) in [0, 1].

    Map step t' covers frames [t' * time_stride, (t' + 1) * time_stride) (clipped at T; the backbone's
    temporal stride, 8 for I3D). In space, ``space_stride=None`` splits H and W evenly into h and w cells
    (cell i covers pixels [floor(i H / h), ceil((i + 1) H / h)), like adaptive average pooling); an integer
    gives cells of that many pixels from the top-left corner (a backbone's stride with 'same' padding; the
    last cell may be partial). ``bounds`` = (row bounds, col bounds), each cell's [start, end) pixels, overrides
    both: the footprints a backbone's real padding gives (``actx.features.geometry``: ``MapGeometry.bounds()``,
    what grounding uses). Raises ValueError when a map step or cell would cover no pixel.
    """
    m = _np(actor_mask)
    if m.ndim != 3:
        raise ValueError(f"actor_mask must be (T, H, W), got shape {m.shape}")
    t_out, h_out, w_out = (int(g) for g in grid)
    T, H, W = m.shape
    if (t_out - 1) * time_stride >= T:
        raise ValueError(f"a map of {t_out} steps at stride {time_stride} needs more than "
                         f"{(t_out - 1) * time_stride} frames; the actor mask has {T}")
    steps = np.stack([m[t * time_stride:(t + 1) * time_stride].mean(0) for t in range(t_out)])  # (T', H, W)
    if bounds is not None:
        rows, cols = [tuple(map(int, b)) for b in bounds[0]], [tuple(map(int, b)) for b in bounds[1]]
        if len(rows) != h_out or len(cols) != w_out or max(b for _, b in rows + [(0, 0)]) > H \
                or max(b for _, b in cols + [(0, 0)]) > W:
            raise ValueError(f"bounds for {len(rows)}x{len(cols)} cells do not fit the grid {(h_out, w_out)} "
                             f"of a {H}x{W} mask")
    else:
        rows, cols = _cell_bounds(H, h_out, space_stride), _cell_bounds(W, w_out, space_stride)
    if any(b <= a for a, b in rows + cols):
        raise ValueError(f"grid {(h_out, w_out)} with space_stride {space_stride} leaves a cell without "
                         f"pixels in a {H}x{W} mask")
    integral = np.pad(steps.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))  # (T', H+1, W+1)
    out = np.empty((t_out, h_out, w_out))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            area = integral[:, r1, c1] - integral[:, r0, c1] - integral[:, r1, c0] + integral[:, r0, c0]
            out[:, i, j] = area / ((r1 - r0) * (c1 - c0))
    return out


def grounding_metrics(S, C, actor_mask, mask=None, per_sample: bool = False) -> dict:
    """Score action and context maps against actor masks on the map grid.

    S, C: (B, T, h, w) non-negative maps (C may be None for methods without a context map); actor_mask:
    (B, T, h, w) cell coverage in [0, 1] (see :func:`mask_to_grid`); mask: (B, T) True where a step is real.
    Per sample, over its real steps:

    - "action_in_actor": sum S a / sum S, the share of S's mass inside the actor (mass-weighted by
      the coverage a);
    - "pointing": per frame with actor pixels, 1 when the argmax cell of S contains actor pixels (a > 0); tied
      maxima count by the share of tied cells that hit, so a uniform map scores the share of cells the actor
      touches; averaged over those frames;
    - "context_on_background": sum C (1 - a) / sum C, the share of C's mass on the background (NaN if C is
      None);
    - "actor_fraction": mean a, the actor's area fraction: what a uniform S scores for "action_in_actor" (and
      1 - it for "context_on_background"), the chance level.

    Returns the means over samples (NaN entries, e.g. no frame with an actor, are left out) and "n", the
    number of samples; with per_sample=True, the (B,) arrays instead.
    """
    s = _np(S)
    if s.ndim != 4:
        raise ValueError(f"S must be (B, T, h, w), got shape {s.shape}")
    a = _np(actor_mask)
    if a.shape != s.shape:
        raise ValueError(f"actor_mask {a.shape} must be on the map grid {s.shape} (use mask_to_grid)")
    if (a < 0).any() or (a > 1).any() or (s < 0).any():
        raise ValueError("grounding_metrics: S must be non-negative and actor_mask coverage in [0, 1]")
    c = None if C is None else _np(C)
    if c is not None and c.shape != s.shape:
        raise ValueError(f"C {c.shape} must have S's shape {s.shape}")
    b, t = s.shape[:2]
    m = np.ones((b, t), dtype=bool) if mask is None else _np(mask, bool)
    if m.shape != (b, t):
        raise ValueError(f"mask must be (B, T) = {(b, t)}, got {m.shape}")
    res = {k: np.full(b, np.nan) for k in ("action_in_actor", "pointing", "context_on_background",
                                          "actor_fraction")}
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(b):
            si, ai = s[i, m[i]], a[i, m[i]]  # (T_real, h, w)
            res["action_in_actor"][i] = (si * ai).sum() / si.sum()
            res["actor_fraction"][i] = ai.mean()
            if c is not None:
                ci = c[i, m[i]]
                res["context_on_background"][i] = (ci * (1 - ai)).sum() / ci.sum()
            frames = ai.reshape(len(ai), -1).max(1) > 0
            if frames.any():
                sf, af = si[frames].reshape(frames.sum(), -1), ai[frames].reshape(frames.sum(), -1)
                tied = sf == sf.max(1, keepdims=True)
                res["pointing"][i] = ((tied & (af > 0)).sum(1) / tied.sum(1)).mean()
    if per_sample:
        return res
    out = {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for k, v in res.items()}
    out["n"] = b
    return out

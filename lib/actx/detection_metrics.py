"""Detection metrics on key frames: box IoU and frame-mAP under the official AVA evaluator's rules.

Re-exported from :mod:`actx.metrics` (``actx.metrics.box_iou``, ``actx.metrics.ava_frame_map``).

Detections and ground truth are DataFrames with one row per (box, label): columns ``video, frame, label, x1,
y1, x2, y2`` and, for detections, ``score``. A key frame is the pair (video, frame); for AVA the frame is the
timestamp in whole seconds. Boxes are (x1, y1, x2, y2) in any consistent unit (AVA: normalised to [0, 1]).

The rules of :func:`ava_frame_map` are those of the ActivityNet AVA v2.1 evaluator (``get_ava_performance.py``
with its ``ava/`` helpers, the TensorFlow Object Detection API's Pascal VOC evaluation, as of its
excluded-timestamps version; in 2020 it dropped that file and ignores detections on key frames the ground
truth does not list), restated here:

1. Only the evaluated classes count: rows (detections and ground truth) with another label are dropped, before
   anything else (the evaluator's label-map "class whitelist"; AVA v2.1 evaluates 60 of its 80 classes).
2. At most :data:`AVA_MAX_DETECTIONS_PER_FRAME` detections per key frame, the highest-scoring ones.
3. Key frames listed as excluded are skipped entirely, for detections and ground truth alike.
4. A detection with an empty box (x2 <= x1 or y2 <= y1) is dropped (neither true nor false positive).
5. Per key frame and class, detections are taken in descending score; each is compared with the
   ground-truth box it overlaps most (the first on ties); it is a true positive when that IoU >= ``iou`` and
   that box is not yet matched, else a false positive (even if another box it overlaps enough is still free).
   Detections on key frames without ground truth are false positives.
6. Per class, all detections are ranked by score; precision and recall along the ranking give the Pascal VOC
   (2010 onwards) AP: the area under the precision envelope (precision made non-increasing from the right),
   summed over the recall steps. A class with ground truth but no detection has AP 0; a class without ground
   truth has AP NaN and is left out of the mean.

Ties: detections with equal scores keep their order in ``det`` (a stable sort, so results are deterministic).
The official evaluator orders equal scores by numpy's default, unstable sort; where tied detections differ in
outcome the two can differ, with distinct scores they agree.
"""

from __future__ import annotations

import math
from typing import Any, Collection, Hashable, Iterable, Sequence

import numpy as np

# The official evaluator reads detections with capacity 50: only the 50 highest-scoring boxes of each key
# frame are kept (get_ava_performance.py, read_csv(..., capacity=50)); extra boxes are not penalised.
AVA_MAX_DETECTIONS_PER_FRAME = 50
# The overlap a detection needs with a ground-truth box to be a true positive: the AVA and VOC standard.
FRAME_IOU = 0.5

BOX_COLUMNS = ("x1", "y1", "x2", "y2")
GT_COLUMNS = ("video", "frame", "label") + BOX_COLUMNS
DET_COLUMNS = GT_COLUMNS + ("score",)


def box_iou(a, b) -> np.ndarray:
    """Intersection over union of every pair of boxes: a (N, 4), b (M, 4) as (x1, y1, x2, y2) -> (N, M).

    Areas are (x2 - x1) * (y2 - y1), without the "+1 pixel" of the old VOC devkit (as the AVA evaluator, whose
    boxes are normalised). Disjoint or touching boxes give exactly 0; so does a pair of empty boxes.
    """
    a, b = _boxes(a, "a"), _boxes(b, "b")
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    inter = np.clip(hi - lo, 0, None).prod(-1)  # (N, M)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)  # (N,)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)  # (M,)
    union = area_a[:, None] + area_b[None, :] - inter  # (N, M)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _boxes(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 4:
        raise ValueError(f"box_iou: {name} must be (N, 4) boxes (x1, y1, x2, y2), got shape {x.shape}")
    return x


def ava_frame_map(det, gt, iou: float = FRAME_IOU, excluded: Iterable[tuple[Any, Any]] | None = None,
                  classes: Sequence[Hashable] | None = None,
                  max_per_frame: int | None = AVA_MAX_DETECTIONS_PER_FRAME) -> dict:
    """Frame-mAP under the official AVA evaluator's rules (see the module docstring, rules 1-6).

    det: DataFrame ``video, frame, label, score, x1, y1, x2, y2``; gt: the same without ``score``.
    iou: the matching threshold (0.5 in AVA). excluded: (video, frame) key frames to skip, e.g. the
    ``.excluded`` of ``load_dataset("ava", ...)``. classes: the evaluated classes (the label map's); rows of
    other labels are dropped; by default every label in ``gt``. max_per_frame: detections kept per key frame
    (None: all).

    Returns ``{"per_class": {label: AP}, "mAP": float}``, per_class in ``classes`` order with NaN for a class
    without ground truth; mAP is the mean over the others. Raises ValueError naming the problem for missing
    columns, non-integral frames, non-finite values, or when no evaluated class has ground truth.
    """
    if not 0 < iou <= 1:
        raise ValueError(f"ava_frame_map: iou must lie in (0, 1], got {iou!r}")
    if max_per_frame is not None and max_per_frame < 1:
        raise ValueError(f"ava_frame_map: max_per_frame must be >= 1 or None, got {max_per_frame!r}")
    det, gt = _table(det, DET_COLUMNS, "det"), _table(gt, GT_COLUMNS, "gt")
    if classes is None:
        classes = _sorted_labels(gt["label"])
    wanted = set(classes)
    det = det[det["label"].isin(wanted)]  # rule 1 comes first, as the whitelist does when reading the files
    gt = gt[gt["label"].isin(wanted)]
    if max_per_frame is not None:  # rule 2
        det = det.sort_values("score", ascending=False, kind="mergesort")
        det = det[det.groupby(["video", "frame"], sort=False).cumcount() < max_per_frame].sort_index()
    skip = _keys(excluded)
    if skip:  # rule 3
        det = det[[k not in skip for k in zip(det["video"], det["frame"])]]
        gt = gt[[k not in skip for k in zip(gt["video"], gt["frame"])]]
    det = det[(det["x2"] > det["x1"]) & (det["y2"] > det["y1"])]  # rule 4
    per_class = {c: _class_ap(det[det["label"] == c], gt[gt["label"] == c], iou) for c in classes}
    aps = [v for v in per_class.values() if not math.isnan(v)]
    if not aps:
        raise ValueError(f"ava_frame_map: none of the {len(per_class)} evaluated classes has a ground-truth "
                         "box (after exclusions); check that gt's labels match det's and classes")
    return {"per_class": per_class, "mAP": float(np.mean(aps))}


def checked_table(df, columns: Sequence[str], name: str, fn: str):
    """A copy of ``df`` with ``columns`` only, boxes and scores as finite floats (a ValueError naming ``fn``,
    the table and the row otherwise) and video as str. Shared by the frame and tube metrics."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{fn}: {name} lacks columns {missing}; it needs {list(columns)}")
    out = df.loc[:, list(columns)].reset_index(drop=True)
    numeric = [c for c in columns if c in BOX_COLUMNS or c == "score"]
    values = out[numeric].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(1))[0])
        raise ValueError(f"{fn}: {name} row {row} has a NaN or infinite box or score")
    out[numeric] = values
    out["video"] = out["video"].astype(str)
    return out


def _table(df, columns: Sequence[str], name: str):
    """:func:`checked_table`, with frames as whole numbers (AVA key frames are whole seconds) made int."""
    out = checked_table(df, columns, name, "ava_frame_map")
    frames = out["frame"].to_numpy(dtype=np.float64)
    if not (np.isfinite(frames) & (frames == np.round(frames))).all():
        raise ValueError(f"ava_frame_map: {name} frames must be whole numbers (AVA key frames are whole "
                         "seconds)")
    out["frame"] = frames.astype(np.int64)
    return out


def _keys(excluded: Iterable[tuple[Any, Any]] | None) -> Collection[tuple[str, int]]:
    if excluded is None:
        return frozenset()
    keys = set()
    for k in excluded:
        if not (isinstance(k, tuple) and len(k) == 2):
            raise ValueError(f"ava_frame_map: excluded must hold (video, frame) pairs, got {k!r}")
        keys.add((str(k[0]), int(k[1])))
    return keys


def _sorted_labels(labels) -> list:
    unique = list(dict.fromkeys(labels))
    try:
        return sorted(unique)
    except TypeError:  # labels of mixed types: keep their order of appearance
        return unique


def _class_ap(det, gt, iou: float) -> float:
    """Rules 5 and 6 for one class: match per key frame, rank everything, Pascal VOC AP (NaN without gt)."""
    if len(gt) == 0:
        return math.nan
    gt_boxes = {key: g[list(BOX_COLUMNS)].to_numpy() for key, g in gt.groupby(["video", "frame"], sort=False)}
    det = det.sort_values("score", ascending=False, kind="mergesort")  # within a frame: descending score
    scores, rows, hits = [], [], []
    for key, d in det.groupby(["video", "frame"], sort=False):
        boxes = gt_boxes.get(key)
        tp = np.zeros(len(d), dtype=bool)
        if boxes is not None:
            overlap = box_iou(d[list(BOX_COLUMNS)].to_numpy(), boxes)  # (detections, gt boxes)
            best = overlap.argmax(1)
            taken = np.zeros(len(boxes), dtype=bool)
            for i, j in enumerate(best):
                if overlap[i, j] >= iou and not taken[j]:
                    tp[i] = taken[j] = True
        scores.append(d["score"].to_numpy())
        rows.append(d.index.to_numpy())
        hits.append(tp)
    if not scores:
        return 0.0
    order = np.lexsort((np.concatenate(rows), -np.concatenate(scores)))  # by score, ties by row in det
    return voc_average_precision(np.concatenate(hits)[order], len(gt))


def voc_average_precision(ranked_hits, n_gt: int) -> float:
    """Pascal VOC (2010+) AP of a ranking: ranked_hits (K,) bool, True where the k-th detection is a true
    positive; n_gt ground-truth boxes. The area under the precision envelope over the recall steps; 0 for
    K = 0."""
    tp = np.asarray(ranked_hits, dtype=bool)
    if n_gt < max(1, int(tp.sum())):
        raise ValueError(f"voc_average_precision: {int(tp.sum())} true positives but n_gt = {n_gt}")
    if tp.size == 0:
        return 0.0
    hits = np.cumsum(tp)
    precision = np.r_[0.0, hits / np.arange(1, tp.size + 1), 0.0]
    recall = np.r_[0.0, hits / n_gt, 1.0]
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * envelope[steps]))

"""Detection samples for ACRN (002 sections 3-4): key frames with every person's box and action labels, actor
proposals, and label assignment by IoU.

    keys = key_frames(records, classes, per_clip=2)     # [KeyFrame]: clip, frame, boxes (P, 4), labels (P, C)
    gt = ground_truth(keys, classes)                    # the gt table of actx.metrics.frame_ap
    props = stand_in_proposals(keys, seed=0)            # the RPN stand-in: jittered gt boxes, misses, false pos.
    props = read_ava_proposals("dets.csv", sizes)       # or a user's detector output (AVA's CSV format)
    labels, targets, matched = assign_labels(props_boxes, key.boxes, key.labels)

A key frame's persons come from the data set's own annotation: the embedded benchmark's per-frame boxes of every
person with ``is_actor`` / ``person_action`` (actx.data.synthetic.load_annotation; no format change was needed:
the labels hold on the action's frames ``action_frames``, bystanders and frames outside it have none), J-HMDB's
puppet-mask boxes (one actor, the clip's class, every frame), AVA's per-key-frame persons (``extra["persons"]``,
boxes normalised to [0, 1]). Boxes are xyxy pixels of the frame the features are computed from.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .records import AnnotationError

# A proposal takes the labels of the ground-truth person it overlaps most when that IoU is at least this: the
# Faster R-CNN / AVA-baseline foreground threshold (002 follows the AVA baseline [13] for the classifier).
LABEL_IOU = 0.5

# --- the RPN stand-in (002 uses a ResNet-50 RPN trained on key frames; we have none) -------------------------
# Each person box is moved and resized by Gaussian noise of this std, as a fraction of its width / height: a
# detector's typical localisation error (most stand-in boxes keep IoU > 0.7 with their person).
JITTER = 0.05
# Probability that a person is missed (no proposal at all): a recall around 95 %, as AVA's published person
# detections (about 93.9 % recall at IoU 0.5).
MISS_RATE = 0.05
# Mean number of false-positive boxes per key frame (Poisson): person-sized boxes at random places.
FALSE_POSITIVES = 0.5
# Detector scores: true persons draw from U(0.7, 1.0), false positives from U(0.2, 0.7), so that scores rank
# the real persons mostly, but not always, first.
TRUE_SCORES = (0.7, 1.0)
FALSE_SCORES = (0.2, 0.7)


@dataclass
class KeyFrame:
    """One key frame: ``clip`` (record id), ``video`` (path), ``frame`` (index into the decoded video),
    ``boxes`` (P, 4) float32 xyxy pixels of every person, ``labels`` (P, C) uint8 multi-hot (all zero for a
    bystander), ``size`` (H, W) of the frame, the source ``record``, and ``seconds`` (start, end) when only a
    window of the video is decoded (AVA's 3-second clip around a key frame; ``frame`` then counts in it)."""

    clip: str
    video: str
    frame: int
    boxes: np.ndarray
    labels: np.ndarray
    size: tuple[int, int]
    record: Any = None
    seconds: tuple[float, float] | None = None  # decode only this window of the video (AVA); frame counts in it
    persons: np.ndarray | None = None  # (P,) person ids, stable across the key frames of a clip (tubes)

    @property
    def key(self) -> tuple[str, int]:
        return self.clip, self.frame


def _even(lo: int, hi: int, n: int) -> list[int]:
    """n frames spread evenly over [lo, hi): the centres of n equal parts."""
    if hi <= lo:
        return []
    return sorted({int(lo + (k + 0.5) * (hi - lo) / n) for k in range(n)})


def key_frames(records: Sequence[Any], classes: Sequence[str], per_clip: int = 1, every: int | None = None
               ) -> list[KeyFrame]:
    """``per_clip`` key frames of every record (evenly over the action's frames), with their persons; with
    ``every``, every ``every``-th frame of the action instead (dense key frames for tubes and video-AP).

    The embedded benchmark (records with ``extra["annotation"]``): frames inside ``action_frames``; persons are
    all people in the frame (boxes NaN outside it are dropped); actors carry their action. J-HMDB (records with
    ``extra["boxes"]`` (T, 4)): frames with a box, one person with the clip's label. AVA (records with
    ``extra["persons"]``): the record's key frame (the middle frame of its 3-second window).
    """
    index = {c: i for i, c in enumerate(classes)}
    out: list[KeyFrame] = []
    for r in records:
        extra = getattr(r, "extra", {})
        if "annotation" in extra:
            out += _synthetic(r, index, per_clip, every)
        elif "boxes" in extra:
            out += _jhmdb(r, index, per_clip, every)
        elif "persons" in extra:
            out.append(_ava(r, index))
        else:
            raise KeyError(f"record {r.id!r} ({r.video}) has no person boxes (extra 'annotation', 'boxes' or "
                           "'persons'): detection needs the benchmark, J-HMDB or AVA records")
    return out


def _multi_hot(names: Sequence[Sequence[str]], index: Mapping[str, int], where: str) -> np.ndarray:
    out = np.zeros((len(names), len(index)), np.uint8)
    for p, labels in enumerate(names):
        for name in labels:
            if name not in index:
                raise ValueError(f"{where}: label {name!r} is not one of the classes")
            out[p, index[name]] = 1
    return out


def _pick(lo: int, hi: int, per_clip: int, every: int | None) -> list[int]:
    return list(range(lo, hi, every)) if every else _even(lo, hi, per_clip)


def _synthetic(r, index, per_clip: int, every: int | None) -> list[KeyFrame]:
    from .synthetic import load_annotation

    ann = load_annotation(r)
    classes = list(index)  # person_action indexes the set's class order (the benchmark's CLASSES)
    t, h, w = ann["actor_mask"].shape
    start, end = (int(v) for v in ann["action_frames"])
    out = []
    for f in _pick(start, end, per_clip, every):
        boxes = ann["boxes"][f]  # (P, 4), NaN for a person outside the frame
        keep = np.isfinite(boxes).all(1)
        names = [(classes[a],) if actor and a >= 0 else ()
                 for a, actor in zip(ann["person_action"], ann["is_actor"])]
        labels = _multi_hot(names, index, f"{r.extra['annotation']}")
        out.append(KeyFrame(r.id, r.video, f, boxes[keep].astype(np.float32), labels[keep], (h, w), r,
                            persons=np.flatnonzero(keep)))
    return out


def _jhmdb(r, index, per_clip: int, every: int | None) -> list[KeyFrame]:
    boxes = np.asarray(r.extra["boxes"], np.float32)  # (T, 4)
    valid = np.flatnonzero(np.isfinite(boxes).all(1))
    if len(valid) == 0:
        raise AnnotationError(r.video, "no frame with a puppet-mask box")
    size = r.extra.get("size") or _probe_size(r.video)
    picks = [valid[i] for i in _pick(0, len(valid), per_clip, every)]
    labels = _multi_hot([r.labels], index, r.video)
    return [KeyFrame(r.id, r.video, int(f), boxes[f][None], labels, tuple(size), r, persons=np.zeros(1, int))
            for f in picks]


def _probe_size(video: str) -> tuple[int, int]:
    from actx.video import probe_video

    info = probe_video(video)
    return int(info.height), int(info.width)


def _ava(r, index) -> KeyFrame:
    """The key frame at the middle of the record's window [start, end) (timestamp -/+ AVA_CONTEXT_S)."""
    from actx.video import probe_video

    info = probe_video(r.video)
    h, w = int(info.height), int(info.width)
    persons = r.extra["persons"]
    boxes = np.array([p["box"] for p in persons], np.float32).reshape(-1, 4) * np.array([w, h, w, h], np.float32)
    labels = _multi_hot([p["actions"] for p in persons], index, r.video)
    middle = int(round((r.end - r.start) / 2 * float(info.fps)))
    return KeyFrame(r.id, r.video, middle, boxes, labels, (h, w), r, seconds=(r.start, r.end))


def ground_truth_tubes(keys: Sequence[KeyFrame], classes: Sequence[str]) -> list:
    """Per clip, person and label: the person's boxes on the key frames where it carries that label, as a
    ground-truth :class:`actx.metrics.Tube` (the tubes of video-AP on these frames)."""
    from actx.metrics import Tube

    parts: dict[tuple, list] = {}
    for k in keys:
        if k.persons is None:
            raise ValueError(f"key frame {k.key} has no person ids: tubes need them")
        for p, c in zip(*np.nonzero(k.labels)):
            parts.setdefault((k.clip, int(k.persons[p]), classes[c]), []).append((k.frame, k.boxes[p]))
    return [Tube(clip, label, [f for f, _ in v], [b for _, b in v]) for (clip, _, label), v in parts.items()]


def ground_truth(keys: Sequence[KeyFrame], classes: Sequence[str]) -> pd.DataFrame:
    """The frame-AP ground truth: one row per (person, label), columns video (clip id), frame, label, x1..y2."""
    rows = [(k.clip, k.frame, classes[c], *k.boxes[p]) for k in keys for p, c in zip(*np.nonzero(k.labels))]
    return pd.DataFrame(rows, columns=["video", "frame", "label", "x1", "y1", "x2", "y2"])


def stand_in_proposals(keys: Sequence[KeyFrame], seed: int = 0, jitter: float = JITTER,
                       miss_rate: float = MISS_RATE, false_positives: float = FALSE_POSITIVES) -> pd.DataFrame:
    """Actor proposals made from the ground-truth person boxes (our stand-in for 002's ResNet-50 RPN).

    Per key frame, from ``np.random.default_rng([seed, k])`` (k = the key frame's position): each person is
    missed with probability ``miss_rate``, else proposed with its box jittered (Gaussian, std ``jitter`` of its
    width / height on each side), clipped to the frame, scored from U(TRUE_SCORES); Poisson(``false_positives``)
    extra boxes the size of a random person of the frame (or a third of the frame) at random places score
    U(FALSE_SCORES). Returns a DataFrame video, frame, score, x1, y1, x2, y2 (pixels), sorted by key frame.
    """
    rows = []
    for k, key in enumerate(keys):
        rng = np.random.default_rng([seed, k])
        h, w = key.size
        for box in key.boxes:
            if rng.random() < miss_rate:
                continue
            bw, bh = box[2] - box[0], box[3] - box[1]
            moved = box + rng.normal(0.0, jitter, 4) * np.array([bw, bh, bw, bh])
            rows.append((key.clip, key.frame, rng.uniform(*TRUE_SCORES), *_clip(moved, h, w)))
        for _ in range(rng.poisson(false_positives)):
            if len(key.boxes):
                ref = key.boxes[rng.integers(len(key.boxes))]
                bw, bh = ref[2] - ref[0], ref[3] - ref[1]
            else:
                bw, bh = w / 3, h / 3
            x, y = rng.uniform(0, max(w - bw, 1)), rng.uniform(0, max(h - bh, 1))
            rows.append((key.clip, key.frame, rng.uniform(*FALSE_SCORES), *_clip(np.array([x, y, x + bw, y + bh]),
                                                                                  h, w)))
    return pd.DataFrame(rows, columns=["video", "frame", "score", "x1", "y1", "x2", "y2"])


def _clip(box: np.ndarray, h: int, w: int) -> np.ndarray:
    x1, x2 = np.clip(sorted((box[0], box[2])), 0, w)
    y1, y2 = np.clip(sorted((box[1], box[3])), 0, h)
    return np.array([x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)], np.float32)


def read_ava_proposals(path: str | Path, sizes: Mapping[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    """A user's person detections in AVA's published per-frame CSV format.

    Rows ``video_id, timestamp, x1, y1, x2, y2[, action_id], score``: boxes normalised to [0, 1] (AVA's person
    box files and the detection CSVs of its evaluator; an empty or -1 action id marks a person box). With
    ``sizes`` {video_id: (H, W)} the boxes are turned into pixels. Returns a DataFrame video, frame (the
    timestamp), score, x1, y1, x2, y2. Raises AnnotationError naming the file and line of a malformed row.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: proposal file missing")
    rows = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) not in (7, 8):
                raise AnnotationError(path, f"expected 7 or 8 fields (video_id, timestamp, x1, y1, x2, y2, "
                                            f"[action_id,] score), got {len(row)}", line)
            try:
                t = float(row[1])
                box = np.array([float(v) for v in row[2:6]], np.float32)
                score = float(row[-1])
            except ValueError as exc:
                raise AnnotationError(path, f"not a number ({exc})", line) from exc
            if t != round(t) or not np.isfinite(box).all() or not np.isfinite(score):
                raise AnnotationError(path, "timestamp must be whole seconds and box / score finite", line)
            if (box < -0.01).any() or (box > 1.01).any() or box[2] <= box[0] or box[3] <= box[1]:
                raise AnnotationError(path, f"box {box.tolist()} is not a normalised xyxy box", line)
            video = row[0].strip()
            if sizes is not None:
                if video not in sizes:
                    raise AnnotationError(path, f"video {video!r} has no frame size in sizes", line)
                h, w = sizes[video]
                box = box * np.array([w, h, w, h], np.float32)
            rows.append((video, int(t), score, *box))
    return pd.DataFrame(rows, columns=["video", "frame", "score", "x1", "y1", "x2", "y2"])


def assign_labels(proposals: np.ndarray, boxes: np.ndarray, labels: np.ndarray, iou: float = LABEL_IOU
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of proposals by IoU with the persons of their key frame.

    proposals (K, 4), boxes (P, 4) xyxy, labels (P, C) -> (labels (K, C) uint8, targets (K, 4) the matched
    person's box (the proposal itself when unmatched), matched (K,) bool). A proposal whose best-overlapping
    person has IoU >= ``iou`` takes that person's labels (none for a bystander) and box; otherwise it is
    background (no labels). Several proposals may match the same person.
    """
    from actx.metrics import box_iou

    k = len(proposals)
    out = np.zeros((k, labels.shape[1]), np.uint8)
    targets = np.asarray(proposals, np.float32).copy()
    if k == 0 or len(boxes) == 0:
        return out, targets, np.zeros(k, bool)
    overlap = box_iou(proposals, boxes)  # (K, P)
    best = overlap.argmax(1)
    matched = overlap[np.arange(k), best] >= iou
    out[matched] = labels[best[matched]]
    targets[matched] = boxes[best[matched]]
    return out, targets, matched

"""Extra per-sample inputs a method can declare (``Method.inputs``), beside the feature map: per-time-step arrays
read from a record's annotation, aligned with the stored map's steps, which the runner adds to every sample and
the training loop crops in time together with "f".

    INPUTS["actor_boxes"](record, steps, time_stride) -> (T, A, 4) float32
    INPUTS["keypoints"](record, steps, time_stride)   -> (T, P, K, 3) float32
    INPUTS["actor_keypoints"](record, steps, time_stride)  -> (T, A, K, 3) the acting people's keypoints only
    INPUTS["pose_keypoints"](record, steps, time_stride)   -> (T, 1, 33, 3) estimated pose (mediapipe, cached)
    INPUTS["proposals"](record, steps, time_stride)        -> (T, 50, 5) region proposals (selective search)

Every array is taken at the middle frame of each feature step (frames [t * stride, (t + 1) * stride)), with
coordinates divided by the frame's width and height. :func:`on_map` then moves them onto the map: fractions of the
map such that x * w, y * h are positions in cells with cell j spanning [j, j + 1) centred where the backbone's
strides and "SAME" padding centre it (actx.features.geometry; the runner passes the profile's geometry, so a
keypoint lands in the cell whose footprint holds it, not half a cell off). A person outside the frame (NaN in the annotation) has an all-zero box. The embedded
benchmark's annotation files hold them (actx.data.synthetic.load_annotation); a real set's records must carry
an ``extra["annotation"]`` in the same format, or the input raises naming the record.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from actx.features import step_frames

Provider = Callable[[Any, int, int], np.ndarray]


def _annotation(record: Any) -> dict[str, np.ndarray]:
    from actx.data.synthetic import load_annotation

    if "annotation" not in getattr(record, "extra", {}):
        raise KeyError(f"record {record.id!r} ({record.video}) has no per-frame annotation (extra['annotation']): "
                       "the inputs actor_boxes / keypoints come from the embedded benchmark's annotation files; "
                       "give a real set's records such a file or use a method without these inputs")
    return load_annotation(record)


def actor_boxes(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, A, 4) xyxy boxes of the acting people at each step, in fractions of the frame (0 outside it)."""
    ann = _annotation(record)
    _, h, w = ann["actor_mask"].shape
    boxes = ann["actor_boxes"][step_frames(steps, time_stride, len(ann["actor_mask"]))]  # (T, A, 4) pixels
    return np.nan_to_num(boxes / np.array([w, h, w, h], np.float32), nan=0.0).astype(np.float32)


def keypoints(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, P, K, 3) keypoints (x, y as fractions of the frame, visible 0/1) of every person, actors first."""
    ann = _annotation(record)
    _, h, w = ann["actor_mask"].shape
    kp = ann["keypoints"][step_frames(steps, time_stride, len(ann["actor_mask"]))].astype(np.float32)
    kp[..., 0] /= w
    kp[..., 1] /= h
    return np.nan_to_num(kp, nan=0.0)


def actor_keypoints(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, A, K, 3) the acting people's keypoints (the oracle pose of PoseMask-I3D: actx.cues.OracleKeypoints),
    x, y as fractions of the frame, score 1 inside the frame."""
    from actx.cues import OracleKeypoints

    _annotation(record)  # a clear error for a record without annotation
    return OracleKeypoints(actors_only=True)(record, step_frames(steps, time_stride, int(record.extra["frames"])))


_POSE = None  # one mediapipe model per process, made on first use


def pose_keypoints(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, 1, 33, 3) mediapipe's estimated pose at each action-window step's key frame (cached per clip:
    actx.cues.pose); NaN at the steps outside the action window, which are never estimated."""
    global _POSE
    from actx.cues.pose import MediapipePose, step_keypoints

    if _POSE is None:
        _POSE = MediapipePose()
    return step_keypoints(_POSE, record, steps, time_stride)


def proposals(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, 50, 5) selective-search boxes (xyxy fractions, then 1 for a real box) in rank order, from the clip's
    key frame (cached per clip: actx.cues.proposals)."""
    from actx.cues.proposals import proposal_steps

    return proposal_steps(record, steps, time_stride)


INPUTS: dict[str, Provider] = {"actor_boxes": actor_boxes, "keypoints": keypoints,
                               "actor_keypoints": actor_keypoints, "pose_keypoints": pose_keypoints,
                               "proposals": proposals}


# How each input holds positions: "box" (x1, y1, x2, y2[, ...]; all-zero = no box) or "point" (x, y, score;
# score 0 or NaN = no point), in fractions of the frame.
POSITIONS = {"actor_boxes": "box", "keypoints": "point", "actor_keypoints": "point", "pose_keypoints": "point",
             "proposals": "box"}


def on_map(name: str, array: np.ndarray, geometry: Any) -> np.ndarray:
    """Input ``name``'s positions moved from fractions of the frame to fractions of the map of ``geometry``
    (an actx.features.geometry.MapGeometry, e.g. actx.experiments.map_cells(cfg, frame size)); absent boxes and
    points stay as they are (all zero / NaN). An input not listed in POSITIONS holds no positions and is returned
    as it is (e.g. a method's own per-step scores)."""
    from actx.features.geometry import to_map_fraction

    kind = POSITIONS.get(name)
    if kind is None:
        return array
    out = np.array(array, np.float32, copy=True)
    (H, W), (h, w) = geometry.size, geometry.cells
    cols = lambda v: to_map_fraction(v, geometry.cols, W, w)  # noqa: E731
    rows = lambda v: to_map_fraction(v, geometry.rows, H, h)  # noqa: E731
    if kind == "box":
        present = np.any(out[..., :4] != 0, axis=-1)  # (...,)
        for k, move in ((0, cols), (1, rows), (2, cols), (3, rows)):
            out[..., k] = np.where(present, move(out[..., k]), out[..., k])
    else:
        present = np.nan_to_num(out[..., 2]) > 0
        out[..., 0] = np.where(present, cols(out[..., 0]), out[..., 0])
        out[..., 1] = np.where(present, rows(out[..., 1]), out[..., 1])
    return out


def check_inputs(names: tuple[str, ...]) -> None:
    unknown = sorted(set(names) - set(INPUTS))
    if unknown:
        raise KeyError(f"unknown inputs {unknown}; actx.experiments.inputs.INPUTS has {sorted(INPUTS)}")

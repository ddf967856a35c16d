"""Pose keypoints for PoseMask-I3D (ActX 000 section 4.1.3), from three kinds of source behind one interface.

A :class:`KeypointSource` is called as ``source(record, frames) -> (F, P, K, 3)`` float32: for each asked frame,
P people with K keypoints as (x, y, score), x and y in fractions of the frame's width and height, score in [0, 1]
(0: absent). P and K depend on the source; PoseMask uses only positions and scores, so any skeleton works.

- :class:`MediapipePose`   estimated pose on the video: mediapipe 0.10.14's legacy Pose solution, model
                           complexity 1 (its model ships inside the wheel and runs offline), one person per frame,
                           33 landmarks; cached per clip (actx.cues.cache)
- :class:`OracleKeypoints` the benchmark's ground-truth keypoints of the acting people (an oracle in the spirit of
                           J-HMDB's puppet joints, which annotate the actor only)
- :class:`JHMDBKeypoints`  J-HMDB's ``joint_positions.mat`` (read by actx.data's jhmdb adapter, 15 joints)
- :class:`CocoKeypoints`   COCO-format keypoint JSON from any pose estimator (dataset format: "images" and
                           "annotations"; 17 keypoints)

The paper ran OpenPose's Convolutional Pose Machine on every frame. We estimate the pose at the **key frame of
every feature step** (its middle frame, as every per-step input of actx.experiments.inputs), and only for the
steps of the clip's action window, the only steps the runner's samples read: on the default benchmark that is
2,195 frames (5.1 of 8 steps per clip) instead of 3,456, and about 30 ms each on a quiet 2-core CPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from .cache import cue_path, load_or_compute

# mediapipe Pose's 33 landmarks, in its order.
MEDIAPIPE_KEYPOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index")
# COCO's 17 keypoints, in its order.
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
# mediapipe Pose's model complexity: 1 (its default) is the only one whose model ships in the 0.10.14 wheel;
# 0 and 2 try to download theirs and fail offline (PLATFORM.md).
MODEL_COMPLEXITY = 1


class KeypointSource(Protocol):
    """``source(record, frames) -> (F, P, K, 3)`` float32 (x, y fractions of the frame, score in [0, 1])."""

    name: str

    def __call__(self, record: Any, frames: Sequence[int]) -> np.ndarray: ...


def key_frames(steps: Sequence[int], time_stride: int, n_frames: int) -> np.ndarray:
    """(len(steps),) the key frame of each feature step: its middle frame, clipped to the video."""
    from actx.features import step_frames

    return step_frames(np.asarray(steps, np.int64), time_stride, n_frames)


def pose_steps(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """The feature steps whose key frames get a pose: those of the record's action window."""
    from actx.conjugates import action_window
    from actx.features import frames_to_steps

    s, e = frames_to_steps(*action_window(record, time_stride), time_stride, steps)
    return np.arange(s, e)


def _n_frames(record: Any) -> int:
    n = record.extra.get("frames")
    if n is None:
        raise KeyError(f"record {record.id!r} ({record.video}) has no extra['frames'] (its frame count)")
    return int(n)


# --- estimated: mediapipe -------------------------------------------------------------------------------------
class MediapipePose:
    """Estimated pose: mediapipe's Pose solution on each asked frame on its own (``static_image_mode``: no tracking
    between key frames 8 frames apart, so a frame's result does not depend on which frames came before it).

    Returns (F, 1, 33, 3): the landmarks' x, y (fractions; they may fall outside [0, 1]) and visibility as the
    score; all zeros for a frame where it finds nobody. Results are cached per clip (``cache=True``): a clip's
    file holds its frames, keypoints and the seconds the estimate took.
    """

    name = "mediapipe"

    def __init__(self, model_complexity: int = MODEL_COMPLEXITY, cache: bool = True):
        self.model_complexity, self.cache, self._pose = int(model_complexity), bool(cache), None

    @property
    def settings(self) -> dict[str, Any]:
        return {"source": self.name, "model_complexity": self.model_complexity, "version": _mediapipe_version()}

    def _model(self):
        if self._pose is None:
            mp = _import_mediapipe()
            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=self.model_complexity)
        return self._pose

    def estimate(self, images: np.ndarray) -> np.ndarray:
        """(F, H, W, 3) uint8 RGB -> (F, 1, 33, 3) float32 (x, y, visibility); zeros where nobody is found."""
        out = np.zeros((len(images), 1, len(MEDIAPIPE_KEYPOINTS), 3), np.float32)
        for i, image in enumerate(images):
            result = self._model().process(np.ascontiguousarray(image))
            if result.pose_landmarks is not None:
                out[i, 0] = [(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark]
        return out

    def _compute(self, record: Any, frames: np.ndarray) -> dict[str, np.ndarray]:
        from actx.video import read_video

        video = read_video(record.video)  # (T, H, W, 3) uint8
        if len(frames) and frames.max() >= len(video):
            raise ValueError(f"{record.video}: asked for frame {frames.max()} of a {len(video)}-frame video")
        t0 = time.perf_counter()
        keypoints = self.estimate(video[frames])
        return {"frames": frames, "keypoints": keypoints, "seconds": np.float64(time.perf_counter() - t0)}

    def __call__(self, record: Any, frames: Sequence[int]) -> np.ndarray:
        frames = np.asarray(frames, np.int64)
        if not self.cache:
            return self._compute(record, frames)["keypoints"]
        path = cue_path(record, "pose", self.settings)
        saved = load_or_compute(path, lambda: self._compute(record, np.unique(frames)))
        index = {int(f): i for i, f in enumerate(saved["frames"])}
        missing = [int(f) for f in frames if int(f) not in index]
        if missing:
            raise KeyError(f"{path} holds the pose of frames {sorted(index)}, not {missing}; delete it to "
                           "estimate the pose of the frames asked now")
        return saved["keypoints"][[index[int(f)] for f in frames]]


def _import_mediapipe():
    try:
        import mediapipe
    except ImportError as exc:
        raise ImportError("the estimated pose needs mediapipe 0.10.14, which `make install` installs with "
                          "--no-deps (environment.yml, its marked block); import failed: " + str(exc)) from exc
    return mediapipe


def _mediapipe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediapipe")
    except PackageNotFoundError:
        return "absent"


# --- oracle: the benchmark's ground truth ---------------------------------------------------------------------
class OracleKeypoints:
    """The benchmark's keypoints of the acting people (``actors_only``; else every person, actors first):
    (F, A, 15, 3), score 1 where the keypoint is inside the frame (the annotation's "visible"), else 0."""

    name = "oracle"

    def __init__(self, actors_only: bool = True):
        self.actors_only = bool(actors_only)

    def __call__(self, record: Any, frames: Sequence[int]) -> np.ndarray:
        from actx.data.synthetic import load_annotation

        if "annotation" not in getattr(record, "extra", {}):
            raise KeyError(f"record {record.id!r} ({record.video}) has no extra['annotation']: the oracle pose "
                           "is the embedded benchmark's ground truth")
        ann = load_annotation(record)
        _, h, w = ann["actor_mask"].shape
        people = ann["is_actor"] if self.actors_only else np.ones(len(ann["is_actor"]), bool)
        kp = ann["keypoints"][np.asarray(frames, np.int64)][:, people].astype(np.float32)  # (F, A, K, 3) pixels
        kp[..., 0] /= w
        kp[..., 1] /= h
        return np.nan_to_num(kp, nan=0.0)


# --- files: J-HMDB and COCO -----------------------------------------------------------------------------------
class JHMDBKeypoints:
    """J-HMDB's puppet joints (``joint_positions.mat`` 'pos_img', read into ``record.extra["keypoints"]`` (T, 15, 2)
    pixels by ``actx.data.load_dataset("jhmdb", ...)``), or read from ``record.extra["joints_file"]``:
    (F, 1, 15, 3), score 1 (every joint is annotated in every frame). ``size`` (H, W): J-HMDB's frames are
    240 x 320."""

    name = "jhmdb"

    def __init__(self, size: tuple[int, int] = (240, 320)):
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, record: Any, frames: Sequence[int]) -> np.ndarray:
        joints = record.extra.get("keypoints")
        if joints is None and "joints_file" in record.extra:
            from actx.data.adapters.jhmdb import read_joints

            joints = read_joints(Path(record.extra["joints_file"]))
        if joints is None:
            raise KeyError(f"record {record.id!r} has neither extra['keypoints'] nor extra['joints_file'] "
                           "(load J-HMDB with keypoints=True)")
        joints = np.asarray(joints, np.float32)  # (T, 15, 2) pixels
        frames = np.asarray(frames, np.int64)
        if len(frames) and frames.max() >= len(joints):
            raise ValueError(f"record {record.id!r}: joint_positions has {len(joints)} frames, asked for frame "
                             f"{frames.max()}")
        h, w = self.size
        xy = joints[frames] / np.array([w, h], np.float32)  # (F, 15, 2)
        return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,), np.float32)], -1)[:, None]  # (F, 1, 15, 3)


class CocoKeypoints:
    """COCO-format keypoint JSON (dataset format: "images" with id, file_name, width, height; "annotations" with
    image_id and keypoints [x1, y1, v1, ...] in pixels), as written by many pose estimators' export tools.

    A frame is an image whose ``file_name`` is ``.../<record id>/<frame number>.<ext>``; ``first_frame`` is the
    number of a clip's first frame (1 for J-HMDB's 00001.png). v > 0 (labelled) gives score 1; a non-integer v
    (an estimator's confidence) is kept as the score. An image listed without annotations has nobody (P = 0 for
    that frame); a frame not listed at all raises KeyError naming the file, the clip and the frame.
    """

    name = "coco"

    def __init__(self, path: str | Path, first_frame: int = 0):
        self.path, self.first_frame = Path(path), int(first_frame)
        try:
            data = json.loads(self.path.read_text())
            images = {img["id"]: img for img in data["images"]}
            annotations = data["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a COCO keypoint file with 'images' and 'annotations' ({exc})") \
                from exc
        self.frames: dict[tuple[str, int], list[np.ndarray]] = {}
        for img in images.values():
            name = Path(img["file_name"])
            try:
                key = (name.parent.name, int(name.stem) - self.first_frame)
            except ValueError as exc:
                raise ValueError(f"{self.path}: image {img['file_name']!r} is not named <clip id>/<frame number>"
                                 ) from exc
            self.frames[key] = []
        for ann in annotations:
            img = images.get(ann.get("image_id"))
            if img is None:
                raise ValueError(f"{self.path}: annotation {ann.get('id')} names unknown image "
                                 f"{ann.get('image_id')}")
            kp = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)  # (K, 3) pixels
            v = kp[:, 2]
            score = (v > 0).astype(np.float32) if np.all(v == np.round(v)) else np.clip(v, 0.0, 1.0)
            xy = kp[:, :2] / np.array([img["width"], img["height"]], np.float32)
            name = Path(img["file_name"])
            self.frames[(name.parent.name, int(name.stem) - self.first_frame)].append(
                np.concatenate([xy, score[:, None]], 1))

    def __call__(self, record: Any, frames: Sequence[int]) -> np.ndarray:
        people = []
        for f in frames:
            key = (record.id, int(f))
            if key not in self.frames:
                raise KeyError(f"{self.path}: no image for clip {record.id!r} frame {int(f)} "
                               f"(file name {record.id}/{int(f) + self.first_frame}.<ext>)")
            people.append(self.frames[key])
        k = max((len(p[0]) for p in people if p), default=len(COCO_KEYPOINTS))
        n = max((len(p) for p in people), default=0)
        out = np.zeros((len(people), n, k, 3), np.float32)  # (F, P, K, 3)
        for i, p in enumerate(people):
            if p:
                out[i, :len(p)] = np.stack(p)
        return out


# --- the per-step input ---------------------------------------------------------------------------------------
def step_keypoints(source: KeypointSource, record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, P, K, 3) keypoints at the key frames of the record's action-window steps; NaN at the other steps
    (never estimated: a head that reads them raises)."""
    computed = pose_steps(record, steps, time_stride)
    kp = source(record, key_frames(computed, time_stride, _n_frames(record)))  # (S, P, K, 3)
    out = np.full((steps,) + kp.shape[1:], np.nan, np.float32)
    out[computed] = kp
    return out


def ensure_pose(records: Sequence[Any], time_stride: int, source: KeypointSource | None = None,
                progress: bool = True) -> dict[str, np.ndarray]:
    """Load-or-compute the pose of every record's action-window key frames (default source: mediapipe, cached
    per clip); returns {record id: (S, P, K, 3)} over those steps. A tqdm bar counts the clips."""
    source = MediapipePose() if source is None else source
    out = {}
    for record in tqdm(records, desc=f"pose ({source.name})", disable=not progress):
        steps = -(-_n_frames(record) // time_stride)
        out[record.id] = source(record, key_frames(pose_steps(record, steps, time_stride), time_stride,
                                                   _n_frames(record)))
    return out


def pose_cost(records: Sequence[Any], source: MediapipePose | None = None) -> tuple[int, float]:
    """(frames, seconds) the cached estimates of ``records`` took when they were computed."""
    source = MediapipePose() if source is None else source
    frames, seconds = 0, 0.0
    for record in records:
        path = cue_path(record, "pose", source.settings)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no cached pose for {record.id!r}; run ensure_pose first")
        with np.load(path) as z:
            frames, seconds = frames + len(z["frames"]), seconds + float(z["seconds"])
    return frames, seconds


# --- how often the estimate finds the actor -------------------------------------------------------------------
# A detected person is "on the actor" when at least this share of its counted keypoints lie inside an actor's box:
# a majority, so that a skeleton straddling the actor and a bystander counts for neither.
ON_ACTOR_SHARE = 0.5


def pose_on_actor(keypoints: np.ndarray, boxes: np.ndarray, min_score: float = 0.5,
                  share: float = ON_ACTOR_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: was a person found, and is one of them on an actor?

    keypoints (F, P, K, 3) fractions and scores; boxes (F, A, 4) the actors' xyxy boxes in fractions (NaN or all
    zero: actor absent). A person is found when any keypoint has score >= min_score; it is on an actor when at
    least ``share`` of those keypoints lie inside one actor's box. Returns (found (F,), on_actor (F,)) bool.
    """
    kp, boxes = np.asarray(keypoints, np.float64), np.nan_to_num(np.asarray(boxes, np.float64), nan=0.0)
    counted = kp[..., 2] >= min_score  # (F, P, K)
    x, y = kp[..., 0][:, :, None], kp[..., 1][:, :, None]  # (F, P, 1, K)
    b = boxes[:, None, :, :, None]  # (F, 1, A, 4, 1)
    inside = (x >= b[..., 0, :]) & (x <= b[..., 2, :]) & (y >= b[..., 1, :]) & (y <= b[..., 3, :])  # (F, P, A, K)
    n = counted.sum(-1)  # (F, P)
    hits = (inside & counted[:, :, None]).sum(-1)  # (F, P, A)
    on = (n[:, :, None] > 0) & (hits >= share * n[:, :, None])  # (F, P, A)
    return (n > 0).any(1), on.any((1, 2))

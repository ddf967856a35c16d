"""Region proposals for k-Region-I3D (ActX 000 section 4.1.3): our stand-in for the paper's Mask R-CNN RPN
(Detectron) is OpenCV's selective search (``cv2.ximgproc.segmentation``) in its Fast mode, in its rank order.

Cost decides how many frames get proposals. Fast mode takes 0.15-0.27 s per 128 x 176 frame on our 2-core CPU
(measured, see notebook 10): proposals at every action step's key frame of the default benchmark (2,195 frames)
would take 6-10 minutes, over the issue's 5-minute budget for the whole chapter. So each clip gets proposals at
**one key frame**, the middle frame of its action window's middle step (:func:`proposal_frame`), and those boxes
serve every step of the clip (:func:`proposal_steps`). The benchmark's camera pans at most 6 % of the frame over a
clip and one map cell is a quarter of the frame's height, so a static region stays within its cell; an actor who
walks does not, and notebook 10 measures the recall of the actor box at the key frame and at the other steps.

Selective search ranks regions with the C library's ``rand()`` (unseeded, the order changes between calls); we
seed it (``srand(SEED)``) before every frame, which makes the order reproducible (the set of regions never
changes). Boxes are kept in rank order, the first MAX_PROPOSALS of them.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from .cache import cue_path, load_or_compute

# The largest k of the paper's rows (10Region, 50Region): the first 50 proposals in rank order are kept.
MAX_PROPOSALS = 50
# Seed of the C library's rand() before each frame (selective search's region ranks; any fixed value).
SEED = 0
MODE = "fast"  # the Fast mode (the Quality mode takes 3 times as long, PLATFORM.md)


def selective_search(image: np.ndarray, max_boxes: int = MAX_PROPOSALS, seed: int = SEED) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (N, 4) float32 xyxy boxes in pixels, N <= max_boxes, in selective search's rank
    order (Fast mode, ranks seeded with ``seed``)."""
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"selective_search takes an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(image[..., ::-1]))  # OpenCV wants BGR
    ss.switchToSelectiveSearchFast()
    ctypes.CDLL(None).srand(int(seed))
    rects = np.asarray(ss.process(), np.float32).reshape(-1, 4)[:max_boxes]  # (N, 4) x, y, w, h
    return np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1)  # (N, 4) xyxy


def proposal_frame(record: Any, time_stride: int) -> int:
    """The key frame of a clip's proposals: the middle frame of its action window's middle feature step."""
    from actx.conjugates import action_window

    a0, a1 = action_window(record, time_stride)
    steps = (a1 - a0) // time_stride
    return min(a0 + (steps // 2) * time_stride + time_stride // 2, int(record.extra["frames"]) - 1)


def _settings(time_stride: int) -> dict[str, Any]:
    return {"method": "selective_search", "mode": MODE, "max": MAX_PROPOSALS, "seed": SEED,
            "time_stride": int(time_stride)}


def _compute(record: Any, time_stride: int) -> dict[str, np.ndarray]:
    from actx.video import read_video

    frame = proposal_frame(record, time_stride)
    video = read_video(record.video)  # (T, H, W, 3)
    if frame >= len(video):
        raise ValueError(f"{record.video}: key frame {frame} of a {len(video)}-frame video")
    h, w = video.shape[1:3]
    t0 = time.perf_counter()
    boxes = selective_search(video[frame])
    seconds = time.perf_counter() - t0
    return {"frame": np.int64(frame), "boxes": boxes / np.array([w, h, w, h], np.float32),
            "seconds": np.float64(seconds)}


def clip_proposals(record: Any, time_stride: int) -> dict[str, np.ndarray]:
    """Load-or-compute a clip's proposals: {"frame", "boxes" (N, 4) xyxy fractions in rank order, "seconds"}."""
    return load_or_compute(cue_path(record, "proposals", _settings(time_stride)),
                           lambda: _compute(record, time_stride))


def proposal_steps(record: Any, steps: int, time_stride: int) -> np.ndarray:
    """(T, MAX_PROPOSALS, 5) per-step input: xyxy boxes (fractions of the frame) and 1 for a real box, 0 for
    padding (a frame with fewer regions); the key frame's boxes at every step."""
    boxes = clip_proposals(record, time_stride)["boxes"]  # (N, 4)
    out = np.zeros((MAX_PROPOSALS, 5), np.float32)
    out[:len(boxes), :4], out[:len(boxes), 4] = boxes, 1.0
    return np.broadcast_to(out, (steps, MAX_PROPOSALS, 5)).copy()


def ensure_proposals(records: Sequence[Any], time_stride: int, progress: bool = True
                     ) -> dict[str, dict[str, np.ndarray]]:
    """Load-or-compute every record's proposals (tqdm bar over clips): {record id: clip_proposals(...)}."""
    return {r.id: clip_proposals(r, time_stride) for r in tqdm(records, desc="selective search",
                                                                disable=not progress)}

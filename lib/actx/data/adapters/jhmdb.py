"""J-HMDB (Jhuang et al., ICCV 2013): 928 trimmed clips of 21 HMDB51 actions with puppet masks and 2D joints.

ACRN (002 section 4) evaluates frame-AP and video-AP at IoU 0.5, averaged over the three official splits. The
actor box of each frame is the bounding box of the puppet mask, as is standard for J-HMDB detection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import (SPLIT_FILE_RE, finish, parse_split, read_hmdb_split_file, resolve_root,
                      split_file_table)

LAYOUT = """\
  <root>/splits/<class>_test_split<N>.txt                  '<video>.avi <1|2>' (1 train, 2 test; N = 1, 2, 3)
  <root>/ReCompress_Videos/<class>/<video>.avi             the videos (JHMDB_video.zip)
  <root>/Rename_Images/<class>/<video>/00001.png ...       the frames (optional; path kept in extra)
  <root>/joint_positions/<class>/<video>/joint_positions.mat   'pos_img' (2, 15, T) pixel joints
  <root>/puppet_mask/<class>/<video>/puppet_mask.mat           'part_mask' (H, W, T) actor mask"""

# The three official splits.
JHMDB_SPLITS = 3
# J-HMDB's 15 puppet joints, in the order of joint_positions.mat (the dataset's README).
JHMDB_JOINTS = ("neck", "belly", "face", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
                "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
                "right_ankle", "left_ankle")


@register("jhmdb")
def load_jhmdb(root: str | Path, split: str = "train", *, keypoints: bool = True, boxes: bool = True,
               splits_dir: str = "splits", videos_dir: str = "ReCompress_Videos",
               frames_dir: str = "Rename_Images", joints_dir: str = "joint_positions",
               masks_dir: str = "puppet_mask", progress: bool = True, check_files: bool = False) -> ClipSet:
    """J-HMDB ``train[N]`` / ``test[N]`` (N = 1..3, default 1). ``.classes``: the 21 classes, sorted.

    Videos are located as ``<videos_dir>/<class>/<video>.avi`` (record.video); the frame folder
    ``<frames_dir>/<class>/<video>/`` goes into ``extra["frames_dir"]``. With ``keypoints``,
    ``extra["keypoints"]`` is a float32 (T, 15, 2) array of (x, y) pixels (:data:`JHMDB_JOINTS` order) from
    'pos_img', as stored. With ``boxes``, ``extra["boxes"]`` is a float32 (T, 4) array of per-frame boxes
    (x1, y1, x2, y2), 0-based pixels with an exclusive end, the bounding box of the puppet mask; NaN rows
    where the mask is empty. A missing .mat file raises FileNotFoundError (keypoints=False / boxes=False
    skip them).
    """
    root = resolve_root(root)
    base, k = parse_split("jhmdb", split, ("train", "test"), JHMDB_SPLITS)
    files = split_file_table(root / splits_dir, "jhmdb", LAYOUT, SPLIT_FILE_RE, k)
    classes = tuple(sorted(files))
    items = [(cls, Path(v).stem) for cls in classes for _, v in read_hmdb_split_file(files[cls], base)]
    records = []
    for cls, name in tqdm(items, desc=f"jhmdb {split}", disable=not progress or not (keypoints or boxes)):
        extra: dict = {"frames_dir": str(root / frames_dir / cls / name)}
        if keypoints:
            extra["keypoints"] = read_joints(root / joints_dir / cls / name / "joint_positions.mat")
        if boxes:
            extra["boxes"] = mask_boxes(read_mask(root / masks_dir / cls / name / "puppet_mask.mat"))
        records.append(Record(video=str(root / videos_dir / cls / f"{name}.avi"), labels=(cls,), id=name,
                              split=split, extra=extra))
    return finish("jhmdb", root, split, records, classes, check_files)


def _loadmat(path: Path, key: str) -> np.ndarray:
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(f"jhmdb: {path} not found (pass keypoints=False / boxes=False to load "
                                f"without it). Expected layout:\n{LAYOUT}")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for a corrupt file; name the file either way
        raise AnnotationError(path, f"unreadable .mat file ({type(exc).__name__}: {exc})") from None
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise AnnotationError(path, f"has no variable {key!r} (found {found})")
    return np.asarray(mat[key])


def read_joints(path: Path) -> np.ndarray:
    """joint_positions.mat 'pos_img' (2, 15, T) -> float32 (T, 15, 2) pixel (x, y)."""
    pos = _loadmat(path, "pos_img")
    if pos.ndim != 3 or pos.shape[0] != 2 or pos.shape[1] != len(JHMDB_JOINTS):
        raise AnnotationError(path, f"'pos_img' has shape {pos.shape}, expected (2, {len(JHMDB_JOINTS)}, T)")
    return np.ascontiguousarray(pos.transpose(2, 1, 0), dtype=np.float32)  # (T, 15, 2)


def read_mask(path: Path) -> np.ndarray:
    """puppet_mask.mat 'part_mask' -> bool (H, W, T)."""
    mask = _loadmat(path, "part_mask")
    if mask.ndim == 2:
        mask = mask[:, :, None]
    if mask.ndim != 3:
        raise AnnotationError(path, f"'part_mask' has shape {mask.shape}, expected (H, W, T)")
    return mask > 0


def mask_boxes(mask: np.ndarray) -> np.ndarray:
    """bool (H, W, T) -> float32 (T, 4) boxes (x1, y1, x2, y2), exclusive end; NaN where a frame is empty."""
    h, w, _ = mask.shape
    rows, cols = mask.any(axis=1), mask.any(axis=0)  # (H, T), (W, T)
    y1, y2 = rows.argmax(axis=0), h - rows[::-1].argmax(axis=0)
    x1, x2 = cols.argmax(axis=0), w - cols[::-1].argmax(axis=0)
    out = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)  # (T, 4)
    out[~rows.any(axis=0)] = np.nan
    return out

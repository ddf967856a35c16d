"""Temporal conjugates: pre/post-action windows of the same thread, and "imperfect" neighbours of a crop.

ActX section 4.1 (ActionThread): the sequences right before and after an action, in the same thread, are conjugate
samples. ActX section 4.2 (Hollywood2): without such sequences, the windows right before and after the temporally
cropped action sample are "imperfect" conjugates that may contain parts of the action.

All windows are aligned to ``stride`` frames (I3D's temporal stride, 8) so that they map to whole feature steps.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from ..data import Record
from .pairs import action_frames, make_pairs, overlap_fraction

STRIDE = 8  # I3D Mixed_5c temporal stride (ActX section 4.1.2): one feature step = 8 frames


def _usable_frames(record: Record, stride: int) -> int:
    """Frames that fill whole feature steps: a last partial step is never used for a window."""
    frames = int(record.extra.get("frames", 0))
    if frames <= 0:
        raise ValueError(f"record {record.id!r} ({record.video}) has no extra['frames'] (its length in frames)")
    return frames // stride * stride


def action_window(record: Record, stride: int = STRIDE) -> tuple[int, int]:
    """The feature-aligned window that covers the action: every step that overlaps an action frame."""
    s, e = action_frames(record)
    end = min(_usable_frames(record, stride), -(-e // stride) * stride)
    return s // stride * stride, max(end, s // stride * stride + stride)


def thread_conjugates(records: Iterable[Record], stride: int = STRIDE, min_frames: int | None = None) -> pd.DataFrame:
    """For each action sample, its thread's pre-action and post-action windows (ActX section 4.1).

    The pre window is every whole feature step before the action's first frame, the post window every whole step
    after its last frame, so neither holds a single action frame. A side shorter than ``min_frames`` (default: one
    feature step) is skipped.
    """
    min_frames = stride if min_frames is None else min_frames
    rows = []
    for r in records:
        s, e = action_frames(r)
        usable = _usable_frames(r, stride)
        a0, a1 = action_window(r, stride)
        sides = {"pre": (0, s // stride * stride), "post": (-(-e // stride) * stride, usable)}
        for side, (c0, c1) in sides.items():
            if c1 - c0 >= min_frames:
                rows.append(_row(r, (a0, a1), r, (c0, c1), "thread", side, overlap_fraction(c0, c1, (s, e))))
    return make_pairs(rows)


def imperfect_conjugates(records: Iterable[Record], crop_frames: int, stride: int = STRIDE, crops: int = 1,
                         seed: int = 0) -> pd.DataFrame:
    """Crops of ``crop_frames`` around the action and the windows of the same length right before and after.

    The crop's centre is drawn uniformly inside the action (``crops`` draws per sample, seeded), as Hollywood2's
    clips are centred on their action but not cut to it; the conjugates are the adjacent windows, clipped to the
    video, and dropped when shorter than one feature step. ``action_overlap`` measures how much action each one
    holds (ActX section 4.2: "not guaranteed to exclude all action elements").
    """
    if crop_frames % stride or crop_frames <= 0:
        raise ValueError(f"crop_frames={crop_frames} must be a positive multiple of the stride {stride}")
    rows = []
    for r in records:
        s, e = action_frames(r)
        usable = _usable_frames(r, stride)
        rng = np.random.default_rng([seed, _stable_hash(r.id)])
        for _ in range(crops):
            centre = rng.integers(s, max(s + 1, e))
            a0 = int(np.clip((centre - crop_frames // 2) // stride * stride, 0, max(0, usable - crop_frames)))
            a1 = min(usable, a0 + crop_frames)
            for side, (c0, c1) in {"pre": (max(0, a0 - crop_frames), a0),
                                   "post": (a1, min(usable, a1 + crop_frames))}.items():
                if c1 - c0 >= stride:
                    rows.append(_row(r, (a0, a1), r, (c0, c1), "imperfect", side, overlap_fraction(c0, c1, (s, e))))
    return make_pairs(rows)


def _row(sample: Record, window, conj: Record, conj_window, kind: str, side: str, overlap: float) -> dict:
    return dict(sample_id=sample.id, sample_split=sample.split, label=";".join(sample.labels),
                sample_start=window[0], sample_end=window[1], conjugate_id=conj.id, conjugate_split=conj.split,
                conjugate_start=conj_window[0], conjugate_end=conj_window[1], kind=kind, side=side,
                action_overlap=overlap, similarity=float("nan"), conjugate_path="")


def _stable_hash(text: str) -> int:
    """A process-independent integer from a string (python's hash() is salted per process)."""
    import zlib

    return zlib.crc32(text.encode())

"""Where the objects an action uses are, frame by frame: derived from a sample's layout, not stored.

The annotation files hold people (boxes, masks, keypoints) but not the phone, cup or ball. Their positions
follow from the render recipe: the layout is a deterministic function of the benchmark's knobs and the sample's
plan entry (``make_layout`` draws the same random stream the renderer did, before any pixel), so this module
recomputes it, without rendering, and places each object as the renderer does (render.py: a held object at
``_held_centre`` of its hand, a free ball at its trajectory). No annotation format change was needed.

    boxes = object_boxes(record)     # (T, 4) xyxy pixels of the action's object per frame, NaN when none
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import make_layout, plan
from .render import _held_centre, to_frame
from .skeleton import OBJECT_SIZE


@lru_cache(maxsize=4)
def _plan_of(root: str) -> tuple[dict, dict]:
    meta = Path(root) / "meta.json"
    if not meta.exists():
        raise FileNotFoundError(f"{meta}: no rendered benchmark here (object positions need its knobs)")
    knobs = json.loads(meta.read_text())["knobs"]
    return knobs, {s.id: s for s in plan(knobs)}


def object_boxes(record: Any) -> np.ndarray:
    """(T, 4) float32 box of the object the record's actors use (phone, cup, ball) per frame, the object's
    size (skeleton.OBJECT_SIZE x its owner's height) around its centre; NaN rows where no such object is
    visible (actions without an object, or a ball out of play)."""
    root = str(Path(record.extra["annotation"]).parents[1])
    knobs, specs = _plan_of(root)
    if record.id not in specs:
        raise KeyError(f"record {record.id!r} is not in the plan of the benchmark at {root}")
    return layout_object_boxes(make_layout(specs[record.id], knobs))


def layout_object_boxes(layout: Any) -> np.ndarray:
    """(T, 4) the actors' object boxes of a :class:`~.layout.Layout` (see :func:`object_boxes`)."""
    A = layout.camera
    zoom = A[:, 0, 0]  # (T,)
    t_all = layout.frames
    out = np.full((t_all, 4), np.nan, np.float32)
    actors = set(layout.actors)
    for i, p in enumerate(layout.persons):
        if p.held is None or i not in actors:  # bystanders may carry objects too: not the action's
            continue
        kp = to_frame(p.kp, A)  # (T, K, 2) frame pixels
        for t in np.flatnonzero(p.held.frames):
            s = p.body.height * zoom[t]
            c, _ = _held_centre(kp[t], p.held.side, p.held.kind, s)
            half = OBJECT_SIZE[p.held.kind] * s / 2
            out[t] = [c[0] - half, c[1] - half, c[0] + half, c[1] + half]
    for o in layout.objects:
        if o.owner - 1 not in actors:
            continue
        pos = to_frame(o.pos, A)  # (T, 2)
        for t in np.flatnonzero(o.visible):
            half = OBJECT_SIZE[o.kind] * o.owner_height * zoom[t] / 2
            out[t] = [pos[t, 0] - half, pos[t, 1] - half, pos[t, 0] + half, pos[t, 1] + half]
    return out

"""Reading stored feature maps for training: a torch Dataset over a :class:`FeatureStore`.

Each item is ``{"f": (D, T, h, w) float16 tensor, "y": (C,) float32 multi-hot, "index": i}``, the layout
``actx.train.collate_maps`` batches (it pads T and adds the ``"mask"``). Maps are read through ``np.load(...,
mmap_mode="r")`` and only the needed time steps are copied, so a store larger than memory trains with flat memory.

An item is a whole clip (a :class:`~actx.data.Record`) or a :class:`Window`, a sub-range of time steps of a clip's
map: ActX's conjugate samples on ActionThread are the pre-action and post-action parts of the thread whose action
part is the action sample (000 section 3.1), all cut out of one stored thread map. :func:`frames_to_steps` turns
frame bounds into step bounds.

Optional random temporal crop (``crop`` steps; ActX 000 section 4.1.2 crops training maps to a fixed length): the
window start of item i in epoch e comes from a generator seeded with (seed, e, i), like
``actx.train.TemporalCrop``, so it does not depend on workers or processes. Cropping here reads only the window
from disk; cropping in the training loop (TemporalCrop) works on batches already read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from actx.data.records import multi_hot

from .store import FeatureStore


@dataclass(frozen=True)
class Window:
    """Time steps [start, end) of clip ``id``'s stored map (end None: to the end), with its own labels."""

    id: str
    start: int = 0
    end: int | None = None
    labels: tuple[str, ...] = ()


def frames_to_steps(first: int, end: int, time_stride: int = 8, total_steps: int | None = None) -> tuple[int, int]:
    """Frame range [first, end) -> the time steps [s, e) that overlap it (step k covers frames
    [k * time_stride, (k + 1) * time_stride)), clamped to ``total_steps``; at least one step."""
    if end <= first:
        raise ValueError(f"frame range [{first}, {end}) is empty")
    s, e = first // time_stride, math.ceil(end / time_stride)
    if total_steps is not None:
        s, e = min(s, total_steps - 1), min(e, total_steps)
    return max(s, 0), max(e, s + 1)


class FeatureDataset(Dataset):
    """Stored maps of one stream as training samples.

    store    a FeatureStore (or its root path)
    items    records (``.id``, ``.labels``; a ClipSet also gives ``classes``) and/or :class:`Window` objects
    classes  class order of the multi-hot ``"y"`` (default: ``items.classes``)
    stream   "rgb" or "flow"
    crop     random temporal crop length in steps for training (None: whole maps / windows)
    seed     seeds the crops together with the epoch (:meth:`set_epoch`) and the item index
    Every item must be in the store: missing ones raise here, naming them (see failures_<stream>.csv).
    """

    def __init__(self, store: FeatureStore | str, items: Sequence[Any], classes: Sequence[str] | None = None,
                 stream: str = "rgb", crop: int | None = None, seed: int = 0):
        self.store = store if isinstance(store, FeatureStore) else FeatureStore(store)
        self.classes = tuple(classes if classes is not None else getattr(items, "classes", ()))
        if not self.classes:
            raise ValueError("FeatureDataset needs classes: pass classes=..., or items with .classes (a ClipSet)")
        if crop is not None and crop < 1:
            raise ValueError(f"crop must be None or >= 1 time steps, got {crop}")
        self.stream, self.crop, self.seed, self.epoch = stream, crop, int(seed), 0
        self.windows = [self._window(item) for item in items]
        ids = [w.id for w in self.windows]
        self.store.require(ids, stream)
        self.labels = multi_hot([w.labels for w in self.windows], self.classes, ids)  # (N, C) float32
        self.bounds = [self._bounds(w) for w in self.windows]

    @staticmethod
    def _window(item: Any) -> Window:
        if isinstance(item, Window):
            return item
        return Window(id=item.id, labels=tuple(item.labels))

    def _bounds(self, w: Window) -> tuple[int, int]:
        steps = self.store.entry(w.id, self.stream)["shape"][1]
        end = steps if w.end is None else w.end
        if not 0 <= w.start < end <= steps:
            raise ValueError(f"window [{w.start}, {w.end}) of {w.id!r} does not fit its {steps} {self.stream} steps")
        return w.start, end

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of random crops (call once per epoch, before iterating)."""
        self.epoch = int(epoch)

    def lengths(self) -> list[int]:
        """Time steps of every item before cropping."""
        return [e - s for s, e in self.bounds]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        start, end = self.bounds[i]
        if self.crop is not None and end - start > self.crop:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            start = start + int(rng.integers(0, end - start - self.crop + 1))
            end = start + self.crop
        f = torch.from_numpy(self.store.read_window(self.windows[i].id, self.stream, start, end))  # (D, T, h, w)
        return {"f": f, "y": torch.from_numpy(self.labels[i]), "index": i}

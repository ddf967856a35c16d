"""Clip records and the data-set object every loader returns.

A :class:`Record` is one sample: a video (or still image) path, its class names and whatever annotation the data
set has. A :class:`ClipSet` is a sequence of records plus ``.classes`` (the data set's documented class order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence


class AnnotationError(ValueError):
    """A malformed annotation file: the message names the file and, where there is one, the line number."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


@dataclass(frozen=True)
class Record:
    """One sample of a data set.

    video   path of the video file (or the image, for still-image sets)
    labels  class names, a tuple (several for multi-label sets; empty for a negative clip)
    id      a name unique within the data set
    split   the split it came from ("train", "val", "test", "test_shifted", ...)
    start, end   action bounds in seconds within the video, when the set annotates them
    thread  the thread (source video) it belongs to, when the set has threads
    extra   anything else the set annotates (boxes, keypoints, frame bounds, per-person actions, ...)
    """

    video: str
    labels: tuple[str, ...]
    id: str = ""
    split: str = ""
    start: float | None = None
    end: float | None = None
    thread: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class ClipSet(Sequence[Record]):
    """A list of records with the data set's class order (``.classes``), name, root and split."""

    def __init__(self, records: Sequence[Record], classes: Sequence[str], name: str = "", root: str | Path = "",
                 split: str = ""):
        self.records = list(records)
        self.classes = tuple(classes)
        self.name, self.root, self.split = name, Path(root), split
        unknown = {lab for r in self.records for lab in r.labels} - set(self.classes)
        if unknown:
            raise ValueError(f"{name} {split}: records carry labels not in .classes: {sorted(unknown)[:5]}")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):  # type: ignore[override]
        return self.records[i]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def label_matrix(self):
        """(N, C) uint8 multi-hot matrix in ``.classes`` order."""
        return multi_hot([r.labels for r in self.records], self.classes, [r.id for r in self.records], "uint8")

    def __repr__(self) -> str:
        return f"ClipSet({self.name!r}, split={self.split!r}, {len(self)} records, {len(self.classes)} classes)"


def multi_hot(labels: Sequence[Sequence[str]], classes: Sequence[str], ids: Sequence[str], dtype: str = "float32"):
    """(N, C) multi-hot matrix of N label lists in ``classes`` order (numpy ``dtype``). A label outside the
    classes raises ValueError naming the item (``ids``)."""
    import numpy as np

    index = {c: k for k, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=dtype)
    for i, labs in enumerate(labels):
        unknown = [lab for lab in labs if lab not in index]
        if unknown:
            raise ValueError(f"item {i} ({ids[i]}) has labels {unknown} not in the classes {tuple(classes)}")
        y[i, [index[lab] for lab in labs]] = 1
    return y

"""Moments in Time (Monfort et al. 2018): 3-second videos, one action label each; paper 003 Table 2 (T = 15 frames
at 5 fps, top-1 and top-5).

The official release (Moments_in_Time_Raw) ships ``moments_categories.txt`` (lines ``<label>,<index>``, indices
0..N-1) and one CSV per split without a header, ``trainingSet.csv`` / ``validationSet.csv``, lines
``<label>/<file>.mp4,<label>,<agreement>,<disagreement>`` (annotator votes); the videos sit under
``training/`` and ``validation/`` in the same ``<label>/<file>.mp4`` tree.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import finish, read_lines, require_file, resolve_root, to_int

MOMENTS_FILES = {"train": ("trainingSet.csv", "training"), "val": ("validationSet.csv", "validation")}
CATEGORIES = "moments_categories.txt"

LAYOUT = """\
  <root>/moments_categories.txt      '<label>,<index>' per line (index 0..N-1)
  <root>/trainingSet.csv             '<label>/<file>.mp4,<label>,<agreement>,<disagreement>' (no header)
  <root>/validationSet.csv           (the same)
  <root>/training/<label>/<file>.mp4, <root>/validation/<label>/<file>.mp4"""


def read_categories(path: Path) -> tuple[str, ...]:
    """moments_categories.txt -> class names in index order; the indices must run 0..N-1."""
    by_index: dict[int, str] = {}
    for i, line in read_lines(path):
        parts = line.rsplit(",", 1)
        if len(parts) != 2 or not parts[0]:
            raise AnnotationError(path, f"expected '<label>,<index>', got {line!r}", i)
        k = to_int(parts[1], path, i, "class index")
        if k in by_index:
            raise AnnotationError(path, f"class index {k} is used twice ({by_index[k]!r}, {parts[0]!r})", i)
        by_index[k] = parts[0]
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(path, f"class indices must run 0..{len(by_index) - 1}; got {sorted(by_index)[:5]}...")
    return tuple(by_index[k] for k in range(len(by_index)))


@register("moments_in_time")
def load_moments(root: str | Path, split: str = "train", *, check_files: bool = False) -> ClipSet:
    """Moments in Time ``train`` (trainingSet.csv) or ``val`` (validationSet.csv; the paper's test set).

    One record per CSV line: ``labels = (<label>,)``, ``id`` = the path without ``.mp4`` (unique across the
    set), ``extra["agreement"]`` / ``extra["disagreement"]`` the annotator votes. A label that is not in
    moments_categories.txt, or a path whose folder disagrees with its label, is an AnnotationError naming the
    file and line.
    """
    if split not in MOMENTS_FILES:
        raise ValueError(f"moments_in_time: split must be one of {sorted(MOMENTS_FILES)}, got {split!r}")
    root = resolve_root(root)
    classes = read_categories(require_file(root / CATEGORIES, "moments_in_time", LAYOUT))
    known = set(classes)
    name, videos = MOMENTS_FILES[split]
    path = require_file(root / name, "moments_in_time", LAYOUT)
    records = []
    for i, line in read_lines(path):
        row = next(csv.reader(io.StringIO(line)))
        if len(row) != 4:
            raise AnnotationError(path, f"expected '<label>/<file>.mp4,<label>,<agreement>,<disagreement>', got "
                                        f"{line!r}", i)
        rel, label = row[0], row[1]
        if label not in known:
            raise AnnotationError(path, f"label {label!r} is not in {CATEGORIES}", i)
        if rel.split("/")[0] != label:
            raise AnnotationError(path, f"video {rel!r} is not in its label's folder {label!r}", i)
        agree, disagree = (to_int(v, path, i, what) for v, what in ((row[2], "agreement"),
                                                                    (row[3], "disagreement")))
        records.append(Record(video=str(root / videos / rel), labels=(label,), id=rel.rsplit(".", 1)[0],
                              split=split, extra={"agreement": agree, "disagreement": disagree}))
    return finish("moments_in_time", root, split, records, classes, check_files)

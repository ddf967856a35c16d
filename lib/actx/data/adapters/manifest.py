"""A generic clip manifest (CSV) for ActionThread and any other set: one row per clip, all splits in one file.

ActionThread (Hoai and Zisserman, ACCV 2014; ActX 000 section 4.1) has no fixed public file format, so it is
read from this manifest. Its samples are threads: the action plus the sequences right before and after it,
which ActX mines for conjugates. Write one row per action sample with ``video`` = the whole thread video and
``action_start`` / ``action_end`` = the action's bounds in seconds inside it; rows with empty ``labels`` are
context-only clips.

Format (UTF-8 CSV with a header; column order free; extra columns are kept as strings in ``record.extra``)::

    video,labels,split,action_start,action_end,thread
    threads/0001.mp4,Kiss,train,4.2,7.9,0001
    threads/0002.mp4,HugPerson;Kiss,test,2.0,5.5,0002
    threads/0003.mp4,,train,,,0003

- ``video``: path relative to the manifest's folder (or absolute).
- ``labels``: class names separated by ";" (empty: no action).
- ``split``: any name ("train", "val", "test", "train2", ...); ``load_dataset(..., split)`` keeps equal rows.
- ``action_start``, ``action_end``: seconds, may be empty. ``thread``: the source thread id, may be empty.
- optional ``id``: a unique sample id (default: the video path without extension, plus the bounds if given).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import check_interval, finish, require_file, resolve_root, to_float

MANIFEST_COLUMNS = ("video", "labels", "split", "action_start", "action_end", "thread")
LABEL_SEP = ";"
# A classes.txt next to the manifest (one class per line) fixes the class order when no classes= is given.
CLASSES_FILE = "classes.txt"

# ActionThread's 13 actions (ActX 000 section 4.1 gives the count; the names are Hollywood2's 12 plus
# HighFive, as in Hoai and Zisserman's ActionThread release), alphabetical.
ACTIONTHREAD_CLASSES = ("AnswerPhone", "DriveCar", "Eat", "FightPerson", "GetOutCar", "HandShake", "HighFive",
                        "HugPerson", "Kiss", "Run", "SitDown", "SitUp", "StandUp")

LAYOUT = """\
  <root>/manifest.csv     header 'video,labels,split,action_start,action_end,thread' (labels ';'-separated)
  <root>/classes.txt      optional, one class per line (the class order)
  <root>/<video paths as listed in the manifest>"""


@register("manifest")
def load_manifest(root: str | Path, split: str = "train", *, file: str = "manifest.csv",
                  classes: Sequence[str] | None = None, name: str = "manifest",
                  check_files: bool = False) -> ClipSet:
    """Rows of ``root/file`` whose ``split`` column equals ``split``.

    ``.classes``: ``classes`` if given, else the lines of classes.txt next to the manifest, else every label
    in the whole manifest (all splits), sorted. A label outside the class list is an AnnotationError.
    """
    root = resolve_root(root)
    path = require_file(root / file, name, LAYOUT)
    folder = path.parent
    if classes is None and (folder / CLASSES_FILE).is_file():
        lines = (folder / CLASSES_FILE).read_text(encoding="utf-8").splitlines()
        classes = [c.strip() for c in lines if c.strip()]
    rows = _read_manifest(path)
    if classes is None:
        classes = sorted({lab for _, row in rows for lab in _labels(row)})
    known = set(classes)
    splits_present = sorted({row["split"] for _, row in rows})
    if split not in splits_present:
        raise ValueError(f"{name}: no rows with split {split!r} in {path}; its splits are {splits_present}")
    records, seen = [], {}
    for line, row in rows:
        labels = _labels(row)
        unknown = [lab for lab in labels if lab not in known]
        if unknown:
            raise AnnotationError(path, f"labels {unknown} are not in the class list {tuple(classes)}", line)
        rec = _row_record(row, path, line, folder)
        if rec.id in seen:
            raise AnnotationError(path, f"id {rec.id!r} repeats line {seen[rec.id]}; add an 'id' column",
                                  line)
        seen[rec.id] = line
        if row["split"] == split:
            records.append(rec)
    return finish(name, root, split, records, classes, check_files)


@register("actionthread")
def load_actionthread(root: str | Path, split: str = "train", *, file: str = "manifest.csv",
                      classes: Sequence[str] = ACTIONTHREAD_CLASSES, check_files: bool = False) -> ClipSet:
    """ActionThread from a manifest (see module docstring); ``.classes`` = :data:`ACTIONTHREAD_CLASSES`."""
    return load_manifest(root, split, file=file, classes=classes, name="actionthread",
                         check_files=check_files)


def _read_manifest(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` pairs; the header must name every column of :data:`MANIFEST_COLUMNS`."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in MANIFEST_COLUMNS if c not in header]
        if missing:
            raise AnnotationError(path, f"header lacks columns {missing} "
                                        f"(needs {','.join(MANIFEST_COLUMNS)})", 1)
        reader.fieldnames = header
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise AnnotationError(path, f"expected {len(header)} fields as in the header", line)
            rows.append((line, {k: v.strip() for k, v in row.items()}))
    return rows


def _labels(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(lab.strip() for lab in row["labels"].split(LABEL_SEP) if lab.strip())


def _row_record(row: dict[str, str], path: Path, line: int, folder: Path) -> Record:
    start = to_float(row["action_start"], path, line, "action_start") if row["action_start"] else None
    end = to_float(row["action_end"], path, line, "action_end") if row["action_end"] else None
    if start is not None and end is not None:
        check_interval(start, end, path, line)
    video = row["video"]
    if not video:
        raise AnnotationError(path, "empty 'video' field", line)
    bounds = f"_{row['action_start']}-{row['action_end']}" if start is not None or end is not None else ""
    rid = row.get("id") or str(Path(video).with_suffix("")) + bounds
    extra = {k: v for k, v in row.items() if k not in MANIFEST_COLUMNS and k != "id"}
    return Record(video=str(folder / video), labels=_labels(row), id=rid, split=row["split"], start=start,
                  end=end, thread=row["thread"] or None, extra=extra)

"""HACS Clips (Zhao et al., ICCV 2019): 2-second YouTube clips of 200 actions, each positive or negative.

ActX (000 section 4.2, "HACS-30"): 30 action classes plus one negative background class; the conjugates of a
positive clip are its top-3 nearest negatives. A negative clip of class c is a clip from a video of c in which
c is *not* happening, so negatives are kept as records with ``labels=()`` and ``extra["negative_of"] = c``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import check_interval, finish, parse_split, read_frame, require_file, resolve_root, to_float

# Official annotation files, newest first; the first found in root, root/HACS_v1.1.1, root/HACS_v1.1 is used.
HACS_CSV_NAMES = ("HACS_clips_v1.1.1.csv", "HACS_clips_v1.1.csv")
HACS_CSV_DIRS = (".", "HACS_v1.1.1", "HACS_v1.1")
HACS_HEADER = ("classname", "youtube_id", "subset", "start", "end", "label")
HACS_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}

# The official download_videos.py saves each YouTube video once per class as ROOT_DIR/<Class_Name>/v_<id>.mp4
# (spaces in the class name become underscores); the clip is [start, end] seconds inside it. Placeholders:
# {classname}, {class_dir} (= classname with "_" for " "), {youtube_id}, {subset}, {start}, {end}.
HACS_VIDEO_PATTERN = "videos/{class_dir}/v_{youtube_id}.mp4"

LAYOUT = """\
  <root>/HACS_v1.1.1/HACS_clips_v1.1.1.csv    'classname,youtube_id,subset,start,end,label' (label 1 / -1)
  <root>/videos/<Class_Name>/v_<youtube_id>.mp4   as written by the official download_videos.py"""


@register("hacs")
def load_hacs(root: str | Path, split: str = "train", *, csv_file: str | None = None,
              video_pattern: str = HACS_VIDEO_PATTERN, classes: Sequence[str] | None = None,
              negatives: bool = True, check_files: bool = False) -> ClipSet:
    """HACS Clips ``train`` / ``val`` / ``test`` (subsets training / validation / testing of the CSV).

    Positive rows (label 1) give ``labels=(classname,)``; negative rows (label -1) give ``labels=()`` with
    ``extra["negative_of"] = classname`` (``negatives=False`` drops them). Testing rows whose label is empty
    or 0 are kept unlabelled (``labels=()``, ``extra["unlabelled"] = True``). ``start`` / ``end`` are the
    clip's bounds in seconds inside the downloaded video; ``thread`` is the YouTube id. ``classes`` restricts
    the set to those classes (e.g. the 30 of HACS-30; their order becomes ``.classes``); by default
    ``.classes`` is every classname in the CSV, sorted. ``csv_file`` (relative to root) overrides the
    annotation file; ``video_pattern`` the video file names (see :data:`HACS_VIDEO_PATTERN`).
    """
    root = resolve_root(root)
    base, _ = parse_split("hacs", split, ("train", "val", "test"))
    path = root / csv_file if csv_file else _find_csv(root)
    require_file(path, "hacs", LAYOUT)
    rows = _read_rows(path)
    names = {r[0] for r in rows}
    if classes is not None and set(classes) - names:
        raise ValueError(f"hacs: classes {sorted(set(classes) - names)} are not in {path}")
    keep = set(classes) if classes is not None else names
    records, ids, prefix = [], {}, str(root) + os.sep
    for classname, vid, subset, start_s, end_s, label in rows:
        if subset != HACS_SUBSETS[base] or classname not in keep or (label == "-1" and not negatives):
            continue
        class_dir = classname.replace(" ", "_")
        rid = f"{class_dir}/{vid}_{start_s}_{end_s}"
        n = ids.get(rid, 0)
        ids[rid] = n + 1
        if n:  # the same clip listed twice (e.g. for two classes' negatives): keep both, ids unique
            rid = f"{rid}_dup{n}"
        extra = {"classname": classname, "youtube_id": vid, "subset": subset}
        if label == "-1":
            extra["negative_of"] = classname
        elif label != "1":
            extra["unlabelled"] = True
        video = video_pattern.format(classname=classname, class_dir=class_dir, youtube_id=vid, subset=subset,
                                     start=start_s, end=end_s)
        records.append(Record(video=prefix + video, labels=(classname,) if label == "1" else (), id=rid,
                              split=split, start=float(start_s), end=float(end_s), thread=vid, extra=extra))
    return finish("hacs", root, split, records, tuple(classes) if classes is not None else sorted(names),
                  check_files)


def _find_csv(root: Path) -> Path:
    for d in HACS_CSV_DIRS:
        for name in HACS_CSV_NAMES:
            if (root / d / name).is_file():
                return root / d / name
    return root / HACS_CSV_DIRS[1] / HACS_CSV_NAMES[0]  # absent: require_file names the preferred path


def _read_rows(path: Path) -> list[tuple[str, ...]]:
    """Every data row as stripped strings, validated. pandas parses (fast); if anything looks wrong, a
    line-by-line pass re-reads the file and raises AnnotationError at the first malformed line."""
    df = read_frame(path, dtype=str, keep_default_na=False)
    if df is not None and tuple(df.columns) == HACS_HEADER:
        cols = [df[c] for c in HACS_HEADER]  # not stripped: stray spaces fail a check below -> slow path
        classname, vid, subset, start_s, end_s, label = cols
        start, end = _numeric(start_s), _numeric(end_s)
        ok = (subset.isin(list(HACS_SUBSETS.values())) & start.notna() & end.notna() & (end >= start)
              & (label.isin(["1", "-1"]) | ((subset == "testing") & label.isin(["", "0"]))))
        if ok.all():
            return list(zip(*(c.tolist() for c in cols)))
    return list(_scan_rows(path))


def _numeric(s):
    import pandas as pd

    return pd.to_numeric(s, errors="coerce")


def _scan_rows(path: Path):
    """The rows, line by line, raising AnnotationError (file and line) at the first malformed one."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = tuple(h.strip() for h in next(reader, ()))
        if header != HACS_HEADER:
            raise AnnotationError(path, f"header {','.join(header)!r} should be {','.join(HACS_HEADER)!r}", 1)
        for row in reader:
            line = reader.line_num
            if row:
                yield _check_row(row, path, line)


def _check_row(row: list[str], path: Path, line: int) -> tuple[str, ...]:
    """One CSV row, checked: six fields, a known subset, numeric start <= end, label 1 / -1."""
    if len(row) != len(HACS_HEADER):
        raise AnnotationError(path, f"expected {len(HACS_HEADER)} fields ({','.join(HACS_HEADER)}), "
                                    f"got {len(row)}", line)
    fields = tuple(x.strip() for x in row)
    _, _, subset, start_s, end_s, label = fields
    if subset not in HACS_SUBSETS.values():
        raise AnnotationError(path, f"subset {subset!r} is not one of {sorted(HACS_SUBSETS.values())}", line)
    check_interval(to_float(start_s, path, line, "start"), to_float(end_s, path, line, "end"), path, line)
    if label not in ("1", "-1") and not (subset == "testing" and label in ("", "0")):
        raise AnnotationError(path, f"label {label!r} should be 1 (positive) or -1 (negative)", line)
    return fields

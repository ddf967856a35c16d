"""HACS Clips (Zhao et al., ICCV 2019): 2-second YouTube clips of 200 actions, each positive or negative.

ActX (000 section 4.2, "HACS-30"): 30 action classes plus one negative background class; the conjugates of a
positive clip are its top-3 nearest negatives. A negative clip of class c is a clip from a video of c in which
c is *not* happening, so negatives are kept as records with ``labels=()`` and ``extra["negative_of"] = c``.

HACS Segments (same release) annotates whole untrimmed videos with action segments, in the ActivityNet JSON
format (the HACS-dataset README): ``{"database": {<youtube_id>: {"subset": "training", "duration": ...,
"url": ..., "annotations": [{"label": <class>, "segment": [start_s, end_s]}, ...]}}}``. The same adapter reads
it (``segments=True``, or an ``annotation_file`` that is the JSON) into one record per video.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Sequence

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import check_interval, finish, parse_split, read_frame, require_file, resolve_root, to_float

# Official annotation files, newest first; the first found in root, root/HACS_v1.1.1, root/HACS_v1.1 is used.
HACS_CSV_NAMES = ("HACS_clips_v1.1.1.csv", "HACS_clips_v1.1.csv")
HACS_CSV_DIRS = (".", "HACS_v1.1.1", "HACS_v1.1")
HACS_JSON_NAMES = ("HACS_segments_v1.1.1.json", "HACS_segments_v1.1.json")  # searched in HACS_CSV_DIRS too
HACS_HEADER = ("classname", "youtube_id", "subset", "start", "end", "label")
HACS_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}

# The official download_videos.py saves each YouTube video once per class as ROOT_DIR/<Class_Name>/v_<id>.mp4
# (spaces in the class name become underscores); the clip is [start, end] seconds inside it. Placeholders:
# {classname}, {class_dir} (= classname with "_" for " "), {youtube_id}, {subset}, {start}, {end}.
HACS_VIDEO_PATTERN = "videos/{class_dir}/v_{youtube_id}.mp4"
# Segments videos without annotation (the testing subset, whose labels are withheld) have no class folder, and
# download_videos.py skips them; the adapter looks for them here (placeholders {youtube_id}, {subset}).
HACS_UNLABELLED_VIDEO_PATTERN = "videos/{subset}/v_{youtube_id}.mp4"
CLIPS_FORMAT = "HACS Clips CSV (header 'classname,youtube_id,subset,start,end,label')"
SEGMENTS_FORMAT = "HACS Segments JSON ({'database': {<youtube_id>: {'subset', 'annotations': [...]}}})"

LAYOUT = """\
  <root>/HACS_v1.1.1/HACS_clips_v1.1.1.csv    'classname,youtube_id,subset,start,end,label' (label 1 / -1)
  <root>/HACS_v1.1.1/HACS_segments_v1.1.1.json   (segments=True) {"database": {id: {"subset", "annotations":
                                               [{"label", "segment": [start, end]}], "duration", "url"}}}
  <root>/videos/<Class_Name>/v_<youtube_id>.mp4   as written by the official download_videos.py"""


@register("hacs")
def load_hacs(root: str | Path, split: str = "train", *, annotation_file: str | None = None,
              segments: bool = False, csv_file: str | None = None, video_pattern: str = HACS_VIDEO_PATTERN,
              classes: Sequence[str] | None = None, negatives: bool = True, check_files: bool = False
              ) -> ClipSet:
    """HACS Clips ``train`` / ``val`` / ``test`` (subsets training / validation / testing of the CSV).

    Positive rows (label 1) give ``labels=(classname,)``; negative rows (label -1) give ``labels=()`` with
    ``extra["negative_of"] = classname`` (``negatives=False`` drops them). Testing rows whose label is empty
    or 0 are kept unlabelled (``labels=()``, ``extra["unlabelled"] = True``). ``start`` / ``end`` are the
    clip's bounds in seconds inside the downloaded video; ``thread`` is the YouTube id. ``classes`` restricts
    the set to those classes (e.g. the 30 of HACS-30; their order becomes ``.classes``); by default
    ``.classes`` is every classname in the CSV, sorted. ``annotation_file`` (relative to root; ``csv_file``
    is its older name) overrides the annotation file; ``video_pattern`` the video file names (see
    :data:`HACS_VIDEO_PATTERN`).

    HACS Segments: with ``segments=True`` (or an ``annotation_file`` holding the Segments JSON, told apart by
    its content) the records are untrimmed videos, see :func:`_segment_records`.
    """
    root = resolve_root(root)
    base, _ = parse_split("hacs", split, ("train", "val", "test"))
    if annotation_file and csv_file:
        raise ValueError("hacs: give annotation_file or its older name csv_file, not both")
    name = annotation_file or csv_file
    path = root / name if name else _find_file(root, HACS_JSON_NAMES if segments else HACS_CSV_NAMES)
    require_file(path, "hacs", LAYOUT)
    if _is_json(path):
        if not negatives:
            raise ValueError("hacs: negatives=False applies to HACS Clips; HACS Segments has no negatives")
        return _segment_records(root, split, base, path, video_pattern, classes, check_files)
    if segments:
        raise AnnotationError(path, f"expected the {SEGMENTS_FORMAT} (segments=True), but it is not JSON; "
                                    f"for the {CLIPS_FORMAT} leave segments=False")
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


def _find_file(root: Path, names: Sequence[str]) -> Path:
    for d in HACS_CSV_DIRS:
        for name in names:
            if (root / d / name).is_file():
                return root / d / name
    return root / HACS_CSV_DIRS[1] / names[0]  # absent: require_file names the preferred path


def _is_json(path: Path) -> bool:
    """A JSON object starts with '{' (after blanks); a HACS Clips CSV starts with its header."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"{")


def _segment_records(root: Path, split: str, base: str, path: Path, video_pattern: str,
                     classes: Sequence[str] | None, check_files: bool) -> ClipSet:
    """HACS Segments: one record per video of the subset, in file order.

    labels = its segments' classes (in ``.classes`` order; none for the testing subset, whose labels are
    withheld: ``extra["unlabelled"] = True``); start / end = None (the video is untrimmed); thread = id =
    the YouTube id. ``extra``: "segments" = [(start_s, end_s, class)] sorted, "duration" (seconds, float or
    None), "subset", "youtube_id", "url". ``.classes``: every label in the file, sorted, or ``classes``
    (segments of other classes are dropped, and videos left with none). The video is ``video_pattern`` with
    the class of its first segment, or :data:`HACS_UNLABELLED_VIDEO_PATTERN` for a video without segments.
    """
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not valid JSON ({exc.msg}, column {exc.colno}); expected the "
                                    f"{SEGMENTS_FORMAT}", exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        found = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise AnnotationError(path, f"expected the {SEGMENTS_FORMAT}, or the {CLIPS_FORMAT}; this JSON has "
                                    f"no 'database' object (found {found})")
    videos = [(vid, _check_video(vid, info, path, text)) for vid, info in data["database"].items()]
    names = sorted({lab for _, (_, segs, _) in videos for _, _, lab in segs})
    if classes is not None and set(classes) - set(names):
        raise ValueError(f"hacs: classes {sorted(set(classes) - set(names))} are not in {path}")
    keep = set(classes) if classes is not None else set(names)
    order = {c: k for k, c in enumerate(classes if classes is not None else names)}
    records, prefix = [], str(root) + os.sep
    for vid, (subset, segs, extra) in videos:
        if subset != HACS_SUBSETS[base]:
            continue
        kept = sorted((s, e, lab) for s, e, lab in segs if lab in keep)
        if segs and not kept:
            continue
        labels = tuple(sorted({lab for _, _, lab in kept}, key=order.__getitem__))
        fields = dict(youtube_id=vid, subset=subset)
        if segs:
            first = segs[0][2]
            fields.update(classname=first, class_dir=first.replace(" ", "_"))
        try:
            video = (video_pattern if segs else HACS_UNLABELLED_VIDEO_PATTERN).format(**fields)
        except KeyError as exc:
            raise ValueError(f"hacs: video_pattern {video_pattern!r} uses {{{exc.args[0]}}}, which HACS "
                             "Segments records lack (they have {classname}, {class_dir}, {youtube_id}, "
                             "{subset})") from None
        extra = dict(extra, segments=kept, subset=subset, youtube_id=vid)
        if not segs:
            extra["unlabelled"] = True
        records.append(Record(video=prefix + video, labels=labels, id=vid, split=split, thread=vid,
                              extra=extra))
    return finish("hacs", root, split, records, tuple(classes) if classes is not None else names, check_files)


def _check_video(vid: str, info, path: Path, text: str) -> tuple[str, list, dict]:
    """One 'database' entry, checked: (subset, [(start, end, label)] in file order, {"duration", "url"})."""
    line = text.count("\n", 0, max(text.find(json.dumps(vid)), 0)) + 1  # the entry's line, for messages
    where = f"database -> {vid!r}"
    if not isinstance(info, dict) or info.get("subset") not in HACS_SUBSETS.values():
        got = info.get("subset") if isinstance(info, dict) else info
        raise AnnotationError(path, f"{where}: 'subset' {got!r} is not one of "
                                    f"{sorted(HACS_SUBSETS.values())}", line)
    annotations = info.get("annotations", [])
    if not isinstance(annotations, list):
        raise AnnotationError(path, f"{where}: 'annotations' must be a list", line)
    segs = []
    for k, a in enumerate(annotations):
        seg = a.get("segment") if isinstance(a, dict) else None
        label = a.get("label") if isinstance(a, dict) else None
        if not isinstance(label, str) or not isinstance(seg, list) or len(seg) != 2:
            raise AnnotationError(path, f"{where} -> annotations[{k}]: expected {{'label': <class>, "
                                        f"'segment': [start, end]}}, got {a!r}", line)
        start, end = (to_float(str(x), path, line, f"{where} -> annotations[{k}] segment") for x in seg)
        check_interval(start, end, path, line)
        segs.append((start, end, label))
    duration = info.get("duration")
    duration = None if duration in (None, "") else to_float(str(duration), path, line, f"{where} duration")
    return info["subset"], segs, {"duration": duration, "url": info.get("url")}


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
            raise AnnotationError(path, f"header {','.join(header)!r} should be {','.join(HACS_HEADER)!r}: "
                                        f"expected the {CLIPS_FORMAT}, or the {SEGMENTS_FORMAT}", 1)
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

"""AVA v2.1 (Gu et al., CVPR 2018): atomic actions of people in 15-minute movie segments, a keyframe a second.

ACRN (002 section 4.1) reports frame-AP on the 60 classes that have at least 25 validation examples (the
ActivityNet 2018 label map, ``ava_action_list_v2.1_for_activitynet_2018.pbtxt``). Annotation rows are
``video_id, timestamp, x1, y1, x2, y2, action_id, person_id`` with the box normalised to [0, 1]. The official
evaluation skips the key frames listed in ``ava_<split>_excluded_timestamps_v2.1.csv`` (rows ``video_id,
timestamp``; both files are in ``ava_v2.1.zip``, file format as on the AVA download page of Google Research).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import finish, parse_split, read_frame, read_lines, require_file, resolve_root, to_float, to_int

# The 60-class evaluation map is the default because it is the benchmark ACRN reports (002 section 4.1).
AVA_LABEL_MAP = "ava_action_list_v2.1_for_activitynet_2018.pbtxt"
# Seconds of context either side of a keyframe: AVA's annotators judged each keyframe within a 3-second clip
# centred on it, so record.start / end = timestamp -/+ 1.5.
AVA_CONTEXT_S = 1.5
# Tolerance of the [0, 1] box check, so that rounding at the frame border (say 1.001) is not an error.
BOX_SLACK = 0.01

LAYOUT = """\
  <root>/annotations/ava_{train,val}_v2.1.csv      'video_id,timestamp,x1,y1,x2,y2,action_id,person_id'
  <root>/annotations/ava_{train,val}_excluded_timestamps_v2.1.csv   'video_id,timestamp'  (optional)
  <root>/annotations/ava_action_list_v2.1_for_activitynet_2018.pbtxt   (or ava_action_list_v2.1.pbtxt, 80)
  <root>/videos/<video_id>.<mkv|mp4|webm>           the movies (any extension; file stem = video id)"""

_BLOCK_RE = re.compile(r"\b(item|label)\s*\{(.*?)\}", re.S)
_FIELD_RE = re.compile(r"(\w+)\s*:\s*(\"(?:[^\"\\]|\\.)*\"|[^\s}]+)")


@register("ava")
def load_ava(root: str | Path, split: str = "train", *, label_map: str = AVA_LABEL_MAP,
             videos_dir: str = "videos", check_files: bool = False) -> ClipSet:
    """AVA v2.1 ``train`` / ``val``: one record per (video, keyframe) with every annotated person.

    ``.classes``: the label map's names ordered by id. ``.excluded``: the (video_id, timestamp) key frames of
    ``ava_<split>_excluded_timestamps_v2.1.csv`` (empty when the file is absent); their records are dropped,
    and ``actx.metrics.ava_frame_map(det, gt, excluded=clips.excluded)`` skips them as the official evaluator
    does. Rows whose action id is not in the label map are left out (that is the 60-class protocol; pass
    ``label_map="ava_action_list_v2.1.pbtxt"`` for all 80), and so are persons and keyframes left with no
    action.
    labels = the union of the persons' actions. ``extra``: "video_id", "timestamp" (seconds into the movie),
    "persons" = [{"box": (x1, y1, x2, y2) normalised to [0, 1], "actions": (...), "person_id": int or None}],
    "box_units" = "normalised". record.start / end = timestamp -/+ :data:`AVA_CONTEXT_S`; record.thread = the
    video id. The video is the file in ``videos_dir`` whose stem is the video id (any extension); when absent,
    record.video is ``<videos_dir>/<video_id>`` without an extension.
    """
    root = resolve_root(root)
    base, _ = parse_split("ava", split, ("train", "val"))
    names = read_label_map(require_file(root / "annotations" / label_map, "ava", LAYOUT))
    path = require_file(root / "annotations" / f"ava_{base}_v2.1.csv", "ava", LAYOUT)
    frames = _read_rows(path, names)
    excluded = read_excluded(root / "annotations" / f"ava_{base}_excluded_timestamps_v2.1.csv")
    videos = _video_index(root / videos_dir)
    order, records = names_order(names), []
    for (vid, t), persons in frames.items():
        if (vid, t) in excluded:
            continue
        labels = tuple(sorted({a for p in persons for a in p["actions"]}, key=order))
        if vid not in videos:
            videos[vid] = root / videos_dir / vid
        records.append(Record(video=str(videos[vid]), labels=labels, id=f"{vid}_{t:04d}", split=split,
                              start=t - AVA_CONTEXT_S, end=t + AVA_CONTEXT_S, thread=vid,
                              extra=dict(video_id=vid, timestamp=t, persons=persons, box_units="normalised")))
    classes = tuple(names[k] for k in sorted(names))
    clips = finish("ava", root, split, records, classes, check_files)
    clips.excluded = excluded
    return clips


def read_excluded(path: Path) -> frozenset[tuple[str, int]]:
    """The (video_id, timestamp) key frames of an excluded-timestamps CSV; empty when the file is absent."""
    if not path.is_file():
        return frozenset()
    keys = set()
    for i, line in read_lines(path):
        parts = [x.strip() for x in line.split(",")]
        if len(parts) != 2 or not parts[0]:
            raise AnnotationError(path, f"expected 'video_id,timestamp', got {line!r}", i)
        keys.add((parts[0], to_int(parts[1], path, i, "timestamp")))
    return frozenset(keys)


def ava_ground_truth(clips: ClipSet):
    """The ground truth of AVA records as the DataFrame :func:`actx.metrics.ava_frame_map` takes: one row
    per (person, action), columns ``video, frame, label, x1, y1, x2, y2`` (frame = timestamp)."""
    import pandas as pd

    rows = [(r.extra["video_id"], r.extra["timestamp"], a, *p["box"])
            for r in clips for p in r.extra["persons"] for a in p["actions"]]
    return pd.DataFrame(rows, columns=["video", "frame", "label", "x1", "y1", "x2", "y2"])


def names_order(names: dict[int, str]):
    """Sort key putting action names in label-map id order."""
    rank = {n: k for k, n in names.items()}
    return rank.__getitem__


def read_label_map(path: Path) -> dict[int, str]:
    """Parse an AVA label-map pbtxt (``item { name: "..." id: N }`` or ``label { name: "..." label_id: N }``)
    into ``{id: name}``; one block per class, several blocks per line allowed. A repeated id or class name
    raises AnnotationError naming the file and the line."""
    text = path.read_text(encoding="utf-8")
    out: dict[int, str] = {}
    lines: dict[str, int] = {}  # name -> line of its block
    for m in _BLOCK_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        fields = {k: v for k, v in _FIELD_RE.findall(m.group(2))}
        key = "id" if "id" in fields else "label_id"
        if "name" not in fields or key not in fields:
            raise AnnotationError(path, "label block needs 'name' and 'id' (or 'label_id'), "
                                        f"got {sorted(fields)}", line)
        k, name = to_int(fields[key], path, line, key), fields["name"].strip('"')
        if k in out:
            raise AnnotationError(path, f"id {k} appears twice", line)
        if name in lines:
            raise AnnotationError(path, f"class name {name!r} appears twice (first at line {lines[name]}); "
                                        "each class needs its own name", line)
        out[k], lines[name] = name, line
    if not out:
        raise AnnotationError(path, "no 'item { ... }' or 'label { ... }' blocks found")
    return out


def _read_rows(path: Path, names: dict[int, str]) -> dict[tuple[str, int], list[dict]]:
    """Group CSV rows by (video, timestamp) and, within a keyframe, by person (id, else identical box).

    The CSV is parsed with pandas (fast); if that finds anything wrong, a line-by-line pass re-reads it and
    raises AnnotationError at the first malformed line.
    """
    rows = _fast_rows(path)
    if rows is None:
        rows = list(_scan_rows(path))
    frames: dict[tuple[str, int], dict] = {}
    for vid, t, box, action, pid in rows:
        name = names.get(action)
        if name is None:  # outside the label map (e.g. the 20 classes the 60-class protocol drops)
            continue
        persons = frames.setdefault((vid, t), {})
        key = pid if pid is not None else box
        person = persons.setdefault(key, {"box": box, "actions": [], "person_id": pid})
        if name not in person["actions"]:
            person["actions"].append(name)
    order = names_order(names)
    for persons in frames.values():
        for p in persons.values():
            acts = p["actions"]
            p["actions"] = tuple(sorted(acts, key=order)) if len(acts) > 1 else tuple(acts)
    return {key: list(persons.values()) for key, persons in frames.items()}


def _fast_rows(path: Path):
    """``(video, timestamp, box, action, person id)`` rows via pandas, or None if any row looks malformed."""
    df = read_frame(path, header=None, dtype={0: str}, float_precision="round_trip")
    if df is None or df.shape[1] not in (7, 8) or df[0].isna().any():
        return None
    num = df.iloc[:, 1:]
    if not all(np.issubdtype(t, np.number) for t in num.dtypes) or num.iloc[:, :6].isna().any().any():
        return None
    box = df.iloc[:, 2:6].to_numpy()
    integral = num.iloc[:, [0, 5]].to_numpy()
    if ((box < -BOX_SLACK) | (box > 1 + BOX_SLACK)).any() or (integral != np.round(integral)).any():
        return None
    pids = [None] * len(df)
    if df.shape[1] == 8:
        p = df[7].to_numpy(dtype=float)
        if (np.isfinite(p) & (p != np.round(p))).any():
            return None
        pids = [None if np.isnan(v) else int(v) for v in p.tolist()]
    boxes = list(map(tuple, box.astype(float).tolist()))
    vids, times, actions = df[0].str.strip().tolist(), df[1].astype(int).tolist(), df[6].astype(int).tolist()
    return zip(vids, times, boxes, actions, pids)


def _scan_rows(path: Path):
    """The same rows, line by line, raising AnnotationError (file and line) at the first malformed one."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) not in (7, 8):
                raise AnnotationError(path, "expected 8 fields 'video_id,timestamp,x1,y1,x2,y2,action_id,"
                                            f"person_id', got {len(row)}", line)
            t = to_int(row[1], path, line, "timestamp")
            box = tuple(to_float(x, path, line, "box coordinate") for x in row[2:6])
            if not all(-BOX_SLACK <= v <= 1 + BOX_SLACK for v in box):
                raise AnnotationError(path, f"box {box} is not normalised to [0, 1]", line)
            action = to_int(row[6], path, line, "action id")
            pid = to_int(row[7], path, line, "person id") if len(row) == 8 and row[7].strip() else None
            yield row[0].strip(), t, box, action, pid


def _video_index(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the files in the videos folder (empty when the folder does not exist)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file()}

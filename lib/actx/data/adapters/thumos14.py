"""THUMOS'14 temporal action detection (Jiang et al., 2014): untrimmed sports videos, 20 annotated classes.

The spatio-temporal attention paper (003 section 4.4) trains on the 200 temporally annotated validation
videos with video-level labels only and localises on the 213 test videos. Annotation files: one per class and
split, ``<Class>_val.txt`` / ``<Class>_test.txt``, lines ``<video> <start s> <end s>``;
``Ambiguous_<split>.txt`` marks segments that are neither positive nor negative.
"""

from __future__ import annotations

from pathlib import Path

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import check_interval, finish, parse_split, read_lines, require_dir, resolve_root, to_float

# The 20 detection classes, alphabetical (the order of the official class index).
THUMOS14_CLASSES = ("BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving",
                    "CricketBowling", "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow",
                    "HighJump", "JavelinThrow", "LongJump", "PoleVault", "Shotput", "SoccerPenalty",
                    "TennisSwing", "ThrowDiscus", "VolleyballSpiking")
AMBIGUOUS = "Ambiguous"

# Where the official archives extract to (TH14_Temporal_annotations_validation.zip, ..._test.zip, and the
# video zips TH14_validation_set_mp4.zip -> validation/, TH14_Test_set_mp4.zip -> TH14_test_set_mp4/).
THUMOS14_ANNOTATION_DIRS = {"val": "TH14_Temporal_annotations_validation/annotation",
                            "test": "TH14_Temporal_Annotations_Test/annotations/annotation"}
THUMOS14_VIDEO_PATTERNS = {"val": "validation/{video}.mp4", "test": "TH14_test_set_mp4/{video}.mp4"}

LAYOUT = """\
  <root>/TH14_Temporal_annotations_validation/annotation/<Class>_val.txt          '<video> <start> <end>'
  <root>/TH14_Temporal_Annotations_Test/annotations/annotation/<Class>_test.txt   (seconds)
  <root>/validation/<video>.mp4, <root>/TH14_test_set_mp4/<video>.mp4"""


@register("thumos14")
def load_thumos14(root: str | Path, split: str = "val", *, annotation_dir: str | None = None,
                  video_pattern: str | None = None, check_files: bool = False) -> ClipSet:
    """THUMOS'14 ``val`` (the 200 annotated validation videos, the usual training set) or ``test``.

    There is no "train" split with temporal annotations (the trimmed UCF101 training videos have none): ask
    for "val" to train. One record per video that has at least one annotated segment; labels = the union of
    its classes in :data:`THUMOS14_CLASSES` order (a video with only Ambiguous segments has labels=()).
    ``extra["segments"]`` = [(start_s, end_s, class)] sorted by start, in seconds; ``extra["ambiguous"]`` =
    [(start_s, end_s)]. ``annotation_dir`` / ``video_pattern`` (with ``{video}``) override the layout.
    """
    root = resolve_root(root)
    if split == "train":
        raise ValueError("thumos14: there is no temporally annotated 'train' split; the standard protocol "
                         "trains on 'val' (the 200 annotated validation videos) and tests on 'test'")
    base, _ = parse_split("thumos14", split, ("val", "test"))
    folder = require_dir(root / (annotation_dir or THUMOS14_ANNOTATION_DIRS[base]), "thumos14", LAYOUT)
    segments: dict[str, list] = {}
    ambiguous: dict[str, list] = {}
    for cls in THUMOS14_CLASSES:
        path = folder / f"{cls}_{base}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"thumos14: annotation file {path} not found. Expected layout:\n{LAYOUT}")
        for video, start, end in _read_segments(path):
            segments.setdefault(video, []).append((start, end, cls))
    amb_path = folder / f"{AMBIGUOUS}_{base}.txt"
    if amb_path.is_file():
        for video, start, end in _read_segments(amb_path):
            ambiguous.setdefault(video, []).append((start, end))
    pattern = video_pattern or THUMOS14_VIDEO_PATTERNS[base]
    records = []
    for video in sorted(set(segments) | set(ambiguous)):
        segs = sorted(segments.get(video, []))
        labels = tuple(c for c in THUMOS14_CLASSES if any(s[2] == c for s in segs))
        extra = dict(segments=segs, ambiguous=sorted(ambiguous.get(video, [])))
        records.append(Record(video=str(root / pattern.format(video=video)), labels=labels, id=video,
                              split=split, extra=extra))
    return finish("thumos14", root, split, records, THUMOS14_CLASSES, check_files)


def _read_segments(path: Path) -> list[tuple[str, float, float]]:
    out = []
    for i, line in read_lines(path):
        parts = line.split()
        if len(parts) != 3:
            raise AnnotationError(path, f"expected '<video> <start> <end>', got {line!r}", i)
        start, end = to_float(parts[1], path, i, "start"), to_float(parts[2], path, i, "end")
        check_interval(start, end, path, i)
        out.append((parts[0], start, end))
    return out

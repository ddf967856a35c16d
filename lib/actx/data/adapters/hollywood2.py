"""Hollywood2 actions (Marszalek, Laptev and Schmid, CVPR 2009): 12 actions, 1,707 clips from 69 movies.

The ActX paper (000 section 4.2) trains on it with "imperfect" conjugates: the sequences right before and
after the temporally cropped action sample. Clips are multi-label: a clip may show several actions.
"""

from __future__ import annotations

from pathlib import Path

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import finish, parse_split, read_lines, require_file, resolve_root

# The 12 actions in the alphabetical order of the official ClipSets files (ActX 000 section 4.2).
HOLLYWOOD2_CLASSES = ("AnswerPhone", "DriveCar", "Eat", "FightPerson", "GetOutCar", "HandShake", "HugPerson",
                      "Kiss", "Run", "SitDown", "SitUp", "StandUp")

LAYOUT = """\
  <root>/ClipSets/<Action>_train.txt, <Action>_test.txt   one line per clip: '<clip> 1' or '<clip> -1'
  <root>/AVIClips/<clip>.avi                               the clips (root = the Hollywood2 folder)"""


@register("hollywood2")
def load_hollywood2(root: str | Path, split: str = "train", *, check_files: bool = False) -> ClipSet:
    """Hollywood2 ``train`` or ``test`` (no official val split; ``autotrain``, the automatically labelled
    training set, is not offered). Each record's labels are the actions whose ``<Action>_<split>.txt`` lists
    the clip with ``1``; every clip must appear in all 12 files. ``.classes`` = :data:`HOLLYWOOD2_CLASSES`.
    """
    root = resolve_root(root)
    base, _ = parse_split("hollywood2", split, ("train", "test"))
    labels: dict[str, list[str]] = {}
    listed: dict[str, set[str]] = {}
    for action in HOLLYWOOD2_CLASSES:
        path = require_file(root / "ClipSets" / f"{action}_{base}.txt", "hollywood2", LAYOUT)
        listed[action] = _read_clip_set(path, action, labels)
    every = set(labels)
    for action, clips in listed.items():
        if clips != every:
            absent = sorted(every - clips)
            raise AnnotationError(root / "ClipSets" / f"{action}_{base}.txt",
                                  f"lists {len(clips)} clips but the {base} split has {len(every)}; "
                                  f"missing e.g. {absent[:3]}")
    records = [Record(video=str(root / "AVIClips" / f"{clip}.avi"), labels=tuple(labels[clip]), id=clip,
                      split=split) for clip in sorted(labels)]
    return finish("hollywood2", root, split, records, HOLLYWOOD2_CLASSES, check_files)


def _read_clip_set(path: Path, action: str, labels: dict[str, list[str]]) -> set[str]:
    """Add ``action`` to the clips ``path`` marks positive; return every clip it lists."""
    clips = set()
    for i, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1"):
            raise AnnotationError(path, f"expected '<clip> 1' or '<clip> -1', got {line!r}", i)
        clip, flag = parts
        if clip in clips:
            raise AnnotationError(path, f"clip {clip!r} is listed twice", i)
        clips.add(clip)
        labels.setdefault(clip, [])
        if flag == "1":
            labels[clip].append(action)
    return clips

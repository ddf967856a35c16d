"""UCF101 (Soomro, Zamir and Shah, 2012): 101 actions, 13,320 YouTube clips, three official train/test splits.

Used by the spatio-temporal attention paper (003 section 4, Table 1: top-1 accuracy averaged over splits).
"""

from __future__ import annotations

from pathlib import Path

from .. import register
from ..records import AnnotationError, ClipSet, Record
from ._common import finish, parse_split, read_lines, require_file, resolve_root, to_int

LAYOUT = """\
  <root>/UCF-101/<Class>/<video>.avi
  <root>/ucfTrainTestlist/classInd.txt          '<index> <Class>', indices 1..101
  <root>/ucfTrainTestlist/trainlist0N.txt       '<Class>/<video>.avi <index>'   (N = 1, 2, 3)
  <root>/ucfTrainTestlist/testlist0N.txt        '<Class>/<video>.avi'"""

# The three official splits (trainlist01..03 / testlist01..03).
UCF101_SPLITS = 3


@register("ucf101")
def load_ucf101(root: str | Path, split: str = "train", *, check_files: bool = False) -> ClipSet:
    """UCF101 ``train[N]`` / ``test[N]`` (N = 1..3, default 1; no official val split).

    ``.classes`` follows classInd.txt (index 1 first). The class of a clip is the folder part of its path; a
    train-list index that disagrees with classInd.txt is an error.
    """
    root = resolve_root(root)
    base, k = parse_split("ucf101", split, ("train", "test"), UCF101_SPLITS)
    lists = root / "ucfTrainTestlist"
    classes = _read_class_index(require_file(lists / "classInd.txt", "ucf101", LAYOUT))
    path = require_file(lists / f"{base}list{k:02d}.txt", "ucf101", LAYOUT)
    records = []
    for i, line in read_lines(path):
        parts = line.split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise AnnotationError(path, f"expected '<Class>/<video>.avi [<index>]', got {line!r}", i)
        rel = parts[0]
        cls = rel.split("/")[0]
        if cls not in classes:
            raise AnnotationError(path, f"class folder {cls!r} is not in classInd.txt", i)
        if len(parts) == 2 and to_int(parts[1], path, i, "class index") != classes.index(cls) + 1:
            raise AnnotationError(path, f"index {parts[1]} disagrees with classInd.txt ({cls} is "
                                        f"{classes.index(cls) + 1})", i)
        records.append(Record(video=str(root / "UCF-101" / rel), labels=(cls,), id=Path(rel).stem,
                              split=split))
    return finish("ucf101", root, split, records, classes, check_files)


def _read_class_index(path: Path) -> tuple[str, ...]:
    """classInd.txt -> class names in index order; indices must run 1..N."""
    classes = []
    for i, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2:
            raise AnnotationError(path, f"expected '<index> <Class>', got {line!r}", i)
        if to_int(parts[0], path, i, "class index") != len(classes) + 1:
            raise AnnotationError(path, f"class index {parts[0]} out of order "
                                        f"(expected {len(classes) + 1})", i)
        classes.append(parts[1])
    return tuple(classes)

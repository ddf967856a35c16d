"""HMDB51 (Kuehne et al., ICCV 2011): 51 actions, 6,766 clips, three official 70/30 train/test splits.

Used by the spatio-temporal attention paper (003 section 4, Table 1). Each split has one file per class,
``<class>_test_split<N>.txt``, with lines ``<video>.avi <flag>``: 1 = train, 2 = test, 0 = unused there.
"""

from __future__ import annotations

from pathlib import Path

from .. import register
from ..records import ClipSet, Record
from ._common import (SPLIT_FILE_RE, finish, parse_split, read_hmdb_split_file, resolve_root,
                      split_file_table)

LAYOUT = """\
  <root>/testTrainMulti_7030_splits/<class>_test_split<N>.txt   '<video>.avi <0|1|2>'   (N = 1, 2, 3)
  <root>/<class>/<video>.avi                                     the videos, one folder per class"""

# The three official splits.
HMDB51_SPLITS = 3


@register("hmdb51")
def load_hmdb51(root: str | Path, split: str = "train", *, splits_dir: str = "testTrainMulti_7030_splits",
                videos_dir: str = ".", check_files: bool = False) -> ClipSet:
    """HMDB51 ``train[N]`` / ``test[N]`` (N = 1..3, default 1). Videos flagged 0 in a split are left out.

    ``.classes``: the class names taken from the split-file names, sorted alphabetically (the usual HMDB51
    order, brush_hair ... wave). ``splits_dir``, ``videos_dir``: folders relative to root.
    """
    root = resolve_root(root)
    base, k = parse_split("hmdb51", split, ("train", "test"), HMDB51_SPLITS)
    files = split_file_table(root / splits_dir, "hmdb51", LAYOUT, SPLIT_FILE_RE, k)
    classes = tuple(sorted(files))
    records = []
    for cls in classes:
        for _, video in read_hmdb_split_file(files[cls], base):
            records.append(Record(video=str(root / videos_dir / cls / video), labels=(cls,),
                                  id=Path(video).stem, split=split))
    return finish("hmdb51", root, split, records, classes, check_files)

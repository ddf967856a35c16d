"""Helpers shared by the real data-set adapters: split names, annotation-file reading, the final ClipSet.

Every adapter follows the same rules (see data/README.md, section "Real data sets"):

- ``split`` is "train", "val" or "test"; a set with several official splits takes a numeric suffix ("train2",
  "test3"), the first split by default ("train" == "train1").
- A missing annotation file raises :class:`FileNotFoundError` naming the path and the expected layout.
- A malformed line raises :class:`~actx.data.records.AnnotationError` naming the file and the 1-based line.
- Records whose video (or image) is absent on disk are kept (the feature stage reports unreadable videos);
  ``check_files=True`` raises instead, listing the first missing paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Sequence

from ..records import AnnotationError, ClipSet, Record

# How many missing paths a check_files error lists before "... and N more": enough to spot a pattern.
MAX_MISSING_LISTED = 5

_SPLIT_RE = re.compile(r"^(train|val|test)(\d*)$")


def parse_split(name: str, split: str, bases: Sequence[str] = ("train", "test"), n_splits: int = 1
                ) -> tuple[str, int]:
    """``"train2" -> ("train", 2)``; ``"train" -> ("train", 1)``. Checks the base and the split number.

    bases: the split names the set has; n_splits: how many official splits it has (1 = no suffix allowed).
    """
    m = _SPLIT_RE.match(split)
    if m is None or m.group(1) not in bases:
        raise ValueError(f"{name}: unknown split {split!r}; this set has {_describe(bases, n_splits)}")
    k = int(m.group(2)) if m.group(2) else 1
    if not 1 <= k <= n_splits:
        raise ValueError(f"{name}: split {split!r} asks for official split {k}, but the set has "
                         f"{_describe(bases, n_splits)}")
    return m.group(1), k


def _describe(bases: Sequence[str], n_splits: int) -> str:
    if n_splits == 1:
        return " / ".join(repr(b) for b in bases)
    return " / ".join(f"{b!r} ({b}1..{b}{n_splits})" for b in bases)


def resolve_root(root: str | Path) -> Path:
    """The data-set folder as an absolute path (records carry absolute video paths)."""
    return Path(root).expanduser().resolve()


def require_file(path: Path, name: str, layout: str) -> Path:
    """Return ``path`` if it is a file, else raise FileNotFoundError naming it and the expected layout."""
    if not path.is_file():
        raise FileNotFoundError(f"{name}: annotation file {path} not found. Expected layout:\n{layout}")
    return path


def require_dir(path: Path, name: str, layout: str) -> Path:
    """Return ``path`` if it is a folder, else raise FileNotFoundError naming it and the expected layout."""
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: folder {path} not found. Expected layout:\n{layout}")
    return path


def read_frame(path: Path, **read_csv_kw):
    """``pandas.read_csv(path, **kw)``, or None when pandas cannot parse the file (the caller then re-reads it
    line by line to report the malformed line). Blank lines are skipped, as in :func:`read_lines`."""
    import pandas as pd

    try:
        return pd.read_csv(path, skip_blank_lines=True, **read_csv_kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError):
        return None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, stripped text)`` for every non-blank line; CRLF files are fine."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for i, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line:
            yield i, line


def to_float(text: str, path: Path, line: int, what: str) -> float:
    """Parse a number, or raise AnnotationError naming the file, line and field."""
    try:
        return float(text)
    except ValueError:
        raise AnnotationError(path, f"{what} {text!r} is not a number", line) from None


def to_int(text: str, path: Path, line: int, what: str) -> int:
    """Parse an integer, or raise AnnotationError naming the file, line and field."""
    try:
        return int(text)
    except ValueError:
        raise AnnotationError(path, f"{what} {text!r} is not an integer", line) from None


def check_interval(start: float, end: float, path: Path, line: int) -> None:
    """Time bounds must satisfy start <= end."""
    if end < start:
        raise AnnotationError(path, f"end time {end} is before start time {start}", line)


def missing_files(records: Sequence[Record]) -> list[str]:
    """Videos (or images) of ``records`` that are not files on disk, in record order, without repeats."""
    seen: dict[str, None] = {}
    for r in records:
        if r.video not in seen and not Path(r.video).is_file():
            seen[r.video] = None
    return list(seen)


def finish(name: str, root: Path, split: str, records: list[Record], classes: Sequence[str],
           check_files: bool = False) -> ClipSet:
    """Wrap records into a ClipSet; with ``check_files`` raise if any listed video is absent on disk."""
    if check_files:
        missing = missing_files(records)
        if missing:
            shown = "\n  ".join(missing[:MAX_MISSING_LISTED])
            extra = len(missing) - MAX_MISSING_LISTED
            more = f"\n  ... and {extra} more" if extra > 0 else ""
            raise FileNotFoundError(f"{name} {split}: {len(missing)} of {len(records)} listed videos are "
                                    f"missing under {root}:\n  {shown}{more}")
    return ClipSet(records, classes, name=name, root=root, split=split)


def split_file_table(folder: Path, name: str, layout: str, pattern: re.Pattern, k: int
                     ) -> dict[str, Path]:
    """``{class: file}`` for the split files in ``folder`` whose name matches ``pattern`` with split number k.

    ``pattern`` has groups ``cls`` and ``k`` (e.g. ``<class>_test_split<k>.txt`` of HMDB51 and JHMDB).
    """
    require_dir(folder, name, layout)
    table = {}
    for p in sorted(folder.iterdir()):
        m = pattern.match(p.name)
        if m and int(m.group("k")) == k:
            table[m.group("cls")] = p
    if not table:
        raise FileNotFoundError(f"{name}: no split files for split {k} in {folder}. "
                                f"Expected layout:\n{layout}")
    return table


# The HMDB51 / JHMDB split-file format: "<video>.avi <flag>", flag 1 = train, 2 = test, 0 = unused.
SPLIT_FILE_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d+)\.txt$")
SPLIT_FLAGS = {"train": 1, "test": 2}


def read_hmdb_split_file(path: Path, base: str) -> list[tuple[int, str]]:
    """``(line, video file name)`` for the videos flagged ``base`` ("train" -> 1, "test" -> 2) in one file."""
    out = []
    for i, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise AnnotationError(path, f"expected '<video> <0|1|2>', got {line!r}", i)
        if int(parts[1]) == SPLIT_FLAGS[base]:
            out.append((i, parts[0]))
    return out

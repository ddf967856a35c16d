"""Writing files so that a reader never sees half of one: :func:`atomic_write`, and :func:`write_csv` on it; and
:func:`exclusive_lock`, so that two processes never compute the same artefact at once."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike):
    """Hold an exclusive lock on the file ``path`` (created if missing) for the block: a second process asking
    for it waits until the first leaves the block, or dies (the kernel drops a dead process's locks)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary name next to ``path``, then rename it onto ``path`` (``os.replace``).

    A reader sees the old file or the whole new one, never a partial write; when ``write`` fails the temporary
    file is removed and any earlier file stays untouched. The temporary name is ``.<stem>.tmp<pid><suffix>``:
    hidden, unique per process, containing ``.tmp`` (the feature store sweeps ``*.tmp*`` leftovers of crashed
    runs) and keeping the suffix (writers such as ``cv2.imwrite`` choose the format by it). Parent folders are
    created. Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Rows (dicts with keys ``columns``) as a CSV file with a header, written with :func:`atomic_write`."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)

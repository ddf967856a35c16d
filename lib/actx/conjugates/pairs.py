"""The pairs table: one row per (action sample, conjugate sample), and the invariants every table must satisfy.

Windows are half-open frame ranges ``[start, end)`` of the record's video, aligned to the feature stride so that a
window maps to whole feature time steps (``start // stride`` to ``end // stride``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from ..data import Record
from ..files import atomic_write

COLUMNS = [
    "sample_id", "sample_split", "label", "sample_start", "sample_end",   # the action sample and its window
    "conjugate_id", "conjugate_split", "conjugate_start", "conjugate_end",  # the conjugate and its window
    "kind",            # "thread" | "imperfect" | "neighbour" | "still"
    "side",            # "pre" | "post" for temporal kinds, "nn1".."nnk" for neighbours, "" for stills
    "action_overlap",  # fraction of the conjugate window's frames inside an annotated action (ground truth)
    "similarity",      # cosine similarity of the embeddings (neighbours; NaN otherwise)
    "conjugate_path",  # the conjugate's file when it is generated (stills); "" otherwise
]
KINDS = ("thread", "imperfect", "neighbour", "still")


class ConjugateInvariantError(ValueError):
    """A pairs table breaks an invariant; the message lists the offending rows."""


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS})


def make_pairs(rows: list[dict]) -> pd.DataFrame:
    """A pairs table from row dicts, with every column present and in order."""
    if not rows:
        return empty_pairs()
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = float("nan") if column == "similarity" else ""
    return table[COLUMNS].astype({c: _dtype(c) for c in COLUMNS})


def _dtype(column: str) -> str:
    if column.endswith(("_start", "_end")):
        return "int64"
    return "float64" if column in ("action_overlap", "similarity") else "object"


def action_frames(record: Record) -> tuple[int, int]:
    """The half-open action frame range of a record (``extra["action_frames"]``), or a clear error."""
    try:
        s, e = record.extra["action_frames"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"record {record.id!r} ({record.video}) has no extra['action_frames']; temporal conjugates "
                         "need the action's start and end frames") from None
    return int(s), int(e)


def overlap_fraction(start: int, end: int, action: tuple[int, int] | None) -> float:
    """Fraction of frames of [start, end) that lie inside the action range (0 when there is no action)."""
    if action is None or end <= start:
        return 0.0
    inside = max(0, min(end, action[1]) - max(start, action[0]))
    return inside / (end - start)


def verify_pairs(pairs: pd.DataFrame, records: Mapping[str, Record]) -> None:
    """Raise :class:`ConjugateInvariantError` unless every row satisfies the invariants (ActX section 3.1):

    - sample and conjugate are known records, the conjugate is not the sample's own window, and no conjugate comes
      from another split than its action sample;
    - a thread conjugate comes from the same thread and contains no action frame (``action_overlap == 0`` checked
      against the record's ground truth, not the stored column);
    - windows are non-empty and inside the video; the kind is known;
    - a still conjugate (a generated image of the same record) names its file.
    """
    bad = []
    for row in pairs.itertuples(index=False):
        sample, conj = records.get(row.sample_id), records.get(row.conjugate_id)
        if sample is None or conj is None:
            bad.append((row, "unknown sample or conjugate id"))
            continue
        if row.kind not in KINDS:
            bad.append((row, f"unknown kind {row.kind!r}"))
        if row.sample_split != sample.split or row.conjugate_split != row.sample_split:
            bad.append((row, f"split mismatch: sample {sample.split!r}, conjugate {row.conjugate_split!r}"))
        if row.kind != "still":
            for lo, hi, rec in ((row.sample_start, row.sample_end, sample),
                                (row.conjugate_start, row.conjugate_end, conj)):
                frames = int(rec.extra.get("frames", hi))
                if not 0 <= lo < hi <= frames:
                    bad.append((row, f"window [{lo}, {hi}) outside {rec.id} (0..{frames})"))
        if row.kind == "still":
            if not row.conjugate_path:
                bad.append((row, "still conjugate without the path of its generated image"))
        elif row.sample_id == row.conjugate_id and not (row.conjugate_end <= row.sample_start
                                                        or row.conjugate_start >= row.sample_end):
            bad.append((row, "conjugate window overlaps the action sample's window"))
        if row.kind == "thread":
            if conj.thread != sample.thread:
                bad.append((row, f"thread conjugate from thread {conj.thread!r}, sample in {sample.thread!r}"))
            if overlap_fraction(row.conjugate_start, row.conjugate_end, action_frames(conj)) > 0:
                bad.append((row, "thread conjugate contains action frames"))
    if bad:
        lines = [f"  {r.kind} {r.sample_id} -> {r.conjugate_id} [{r.conjugate_start}, {r.conjugate_end}): {why}"
                 for r, why in bad[:10]]
        raise ConjugateInvariantError(f"{len(bad)} of {len(pairs)} pairs break an invariant:\n" + "\n".join(lines))


def save_pairs(pairs: pd.DataFrame, path: str | Path) -> Path:
    """Write the table as CSV, atomically (temporary name, then rename)."""
    return atomic_write(path, lambda tmp: pairs.to_csv(tmp, index=False))


def load_pairs(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pairs table at {path}; run notebook 03 (conjugates) first")
    table = pd.read_csv(path, keep_default_na=False, na_values={"similarity": [""]})
    missing = [c for c in COLUMNS if c not in table]
    if missing:
        raise ValueError(f"{path}: not a pairs table, missing columns {missing}")
    return table[COLUMNS].astype({c: _dtype(c) for c in COLUMNS})

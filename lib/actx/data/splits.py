"""The validation split: a fixed, documented share of the ``train`` split, held out for every choice of an open
value (a hyper-parameter, a threshold, a stopping point). ``test`` and ``test_shifted`` are for reporting only.

    train, val = validation_split(load_dataset("synthetic", root, "train"))

The split is stratified and deterministic: within each class (a record's label set), records are ordered by
scene (``extra["scene"]``, where the set has one) and then by a hash of their id, and evenly spaced positions of
that order are held out, so every class gives the same share and every scene of a class is represented. It
depends on nothing but the ids, labels and scenes: the same records always give the same split, on any machine.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from typing import Sequence

from .records import ClipSet, Record

# Share of each class's training records held out: 20 % gives the default benchmark 4 validation threads per
# class (48 in all, as many as its test split's 8 per class x 12 classes / 2), enough to rank settings by mAP,
# while the training set keeps 80 % (16 threads per class). A class with fewer than 2 records keeps them all.
VAL_SHARE = 0.2
VAL_SPLIT = "val"


def _order_key(record: Record) -> tuple[str, str]:
    scene = str(record.extra.get("scene", ""))
    return scene, hashlib.sha1(record.id.encode()).hexdigest()


def held_out(n: int, share: float) -> list[int]:
    """Evenly spaced positions of ``round(share * n)`` items among ``n`` (none when n < 2; at least one when
    n >= 2 and share > 0; never all)."""
    if n < 2 or share <= 0:
        return []
    k = min(n - 1, max(1, round(share * n)))
    return sorted({min(n - 1, math.floor((j + 0.5) * n / k)) for j in range(k)})


def validation_split(records: Sequence[Record], share: float = VAL_SHARE) -> tuple[ClipSet, ClipSet]:
    """(train, val): ``records`` (a ClipSet or list) split per class; see the module docstring."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the validation share must be in [0, 1), got {share}")
    by_class: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for r in records:
        by_class[tuple(sorted(r.labels))].append(r)
    val_ids = set()
    for group in by_class.values():
        ordered = sorted(group, key=_order_key)
        val_ids |= {ordered[i].id for i in held_out(len(ordered), share)}
    classes = getattr(records, "classes", ())
    name, root = getattr(records, "name", ""), getattr(records, "root", "")
    train = ClipSet([r for r in records if r.id not in val_ids], classes, name, root, "train")
    val = ClipSet([r for r in records if r.id in val_ids], classes, name, root, VAL_SPLIT)
    return train, val

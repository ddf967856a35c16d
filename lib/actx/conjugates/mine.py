"""Conjugate mining on the embedded benchmark, load-or-compute: every kind, one pairs table per kind.

The tables are saved next to the feature store they index (``<store>/conjugates/<kind>.csv``), and still-image
conjugates (generated PNGs) under ``<store>/conjugates/stills/``. Every table is checked by :func:`verify_pairs`
before it is written and again when it is loaded.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data import Record, load_dataset
from ..files import atomic_write
from ..video import read_image
from .neighbours import TOP_K, neighbour_conjugates
from .pairs import KINDS, load_pairs, make_pairs, save_pairs, verify_pairs
from .stills import still_conjugate
from .temporal import STRIDE, imperfect_conjugates, thread_conjugates

IMPERFECT_CROPS = 2  # crops drawn per training thread for the Hollywood2-style table (more pairs, same threads)
NEGATIVE_POOL_SPLIT = "train"  # the benchmark's negative clips form the training split's pool (HACS-style)


def benchmark_records(root: Path, splits=("train", "test", "test_shifted", "negatives", "stills")) -> dict[str, Record]:
    """All records of the given benchmark splits by id; negatives are relabelled as the training pool."""
    records = {}
    for split in splits:
        for r in load_dataset("synthetic", root, split):
            if split == "negatives":
                r = dataclasses.replace(r, split=NEGATIVE_POOL_SPLIT)
            records[r.id] = r
    return records


def clip_embeddings(store, ids: list[str], stream: str = "rgb") -> np.ndarray:
    """(N, D) float32: each clip's feature map averaged over time and space (the backbone embedding)."""
    return np.stack([np.asarray(store.load(i, stream), dtype=np.float32).mean(axis=(1, 2, 3)) for i in ids])


def ensure_conjugates(cfg, store, stream: str = "rgb", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Mine (or load) the thread, imperfect, neighbour and still tables of the benchmark's training split."""
    from ..data.synthetic import ensure_benchmark

    recipe = dict(stride=STRIDE, crop_frames=int(cfg.train["crop"]) * STRIDE, crops=IMPERFECT_CROPS, k=TOP_K,
                  stream=stream, seed=cfg.seed, data=cfg.stage_hash("data"))
    records = benchmark_records(ensure_benchmark(cfg))
    return conjugate_tables(records, store, Path(store.root) / "conjugates", recipe, progress)


def conjugate_tables(records: dict[str, Record], store, out: Path, recipe: dict,
                     progress: bool = True) -> dict[str, pd.DataFrame]:
    """Load-or-compute the four tables in ``out``; ``recipe.json`` (written last) says they are complete."""
    if not _complete(out, recipe):
        return _mine(store, records, recipe, out, progress)  # verified before saving
    tables = {kind: load_pairs(out / f"{kind}.csv") for kind in KINDS}
    for table in tables.values():
        verify_pairs(table, records)  # the records may have changed since the tables were saved
    return tables


def _complete(out: Path, recipe: dict) -> bool:
    path = out / "recipe.json"
    return path.is_file() and json.loads(path.read_text()) == recipe


def _mine(store, records, recipe, out: Path, progress: bool) -> dict[str, pd.DataFrame]:
    train = [r for r in records.values() if r.split == "train" and r.labels and r.extra.get("frames", 0) > 1]
    negatives = [r for r in records.values() if r.split == NEGATIVE_POOL_SPLIT and not r.labels]
    tables = {
        "thread": thread_conjugates(train, recipe["stride"]),
        "imperfect": imperfect_conjugates(train, recipe["crop_frames"], recipe["stride"], recipe["crops"],
                                          recipe["seed"]),
        "neighbour": neighbour_conjugates(train, negatives, clip_embeddings(store, [r.id for r in train], recipe["stream"]),
                                          clip_embeddings(store, [r.id for r in negatives], recipe["stream"]),
                                          recipe["k"]),
        "still": still_pairs([r for r in records.values() if r.split == "stills"], out / "stills", progress),
    }
    for kind, table in tables.items():
        verify_pairs(table, records)
        save_pairs(table, out / f"{kind}.csv")
    atomic_write(out / "recipe.json", lambda tmp: tmp.write_text(json.dumps(recipe)))  # last: tables complete
    return tables


def still_pairs(stills: list[Record], folder: Path, progress: bool = True) -> pd.DataFrame:
    """One conjugate image per (still, action in it): the people doing that action removed (supplement section 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in tqdm(stills, desc="still conjugates", disable=not progress):
        image = None
        for action in sorted({a for p in r.extra["persons"] for a in p["actions"]}):
            path = folder / f"{r.id}~{action}.png"
            if not path.is_file():
                image = read_image(r.video) if image is None else image
                boxes = [p["box"] for p in r.extra["persons"] if action in p["actions"]]
                _write_png(path, still_conjugate(image, boxes))
            rows.append(dict(sample_id=r.id, sample_split=r.split, label=action, sample_start=0, sample_end=1,
                             conjugate_id=r.id, conjugate_split=r.split, conjugate_start=0, conjugate_end=1,
                             kind="still", side="", action_overlap=0.0, similarity=float("nan"),
                             conjugate_path=str(path)))
    return make_pairs(rows)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")

    atomic_write(path, write)

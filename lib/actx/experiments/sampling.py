"""How many frames of every 8 a 2D backbone needs: the frame-sampling study that sets ``frames_per_step``.

A per-frame 2D backbone averaged over 8-frame steps (Mixed_5c's layout, ``actx.features.extract``) sees every
frame; sampling k of every 8 (:func:`actx.features.sampled_frames`) costs k / 8 of the backbone and of the flow.
Whether it loses anything is a question for the validation split: :func:`frame_sampling_study` extracts the
train split's maps at each k, trains the average-pooling baseline on train minus val with the profile's seeds and
reports validation mAP; :func:`choose_frames_per_step` picks the smallest k that is not clearly worse than the best
one (actx.experiments.judge: clearly = more than twice the larger seed spread). Test splits are never read.

The study is run once per profile and stream by ``benchmarks/frame_sampling.py`` (it extracts the train split up
to four times, too long for a chapter); its tables are written to ``figures/frame_sampling_<stream>.csv``. Each
stream keeps its own pick (cfg.features["frames_per_step"] = {stream: k}); notebook 02 shows the tables and checks
the profile against them.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .judge import compare_seeds
from .runner import TRAIN_SPLIT, VAL_SPLIT, benchmark_splits, run_many

STUDY_KS = (1, 2, 4, 8)  # frames per 8-frame step: 8 = every frame (the course before the study)
STUDY_COLUMNS = ("frames_per_step", "seed", "val_mAP", "extract_seconds", "backbone_frames")


def frame_sampling_study(cfg: Any, ks: Sequence[int] = STUDY_KS, seeds: Sequence[int] | None = None,
                         method: str = "avgpool", stream: str = "rgb", progress: bool = True) -> pd.DataFrame:
    """Validation mAP of ``method`` on ``stream`` maps extracted with each k of ``ks`` frames per step.

    Each k gets its own feature store (train and val clips only) and its own run folders (under
    DATA_ROOT/studies/frames_per_step=<k>, so that no run of the course is touched). ``seeds``: the profile's
    (cfg.train["seeds"]). Returns one row per (k, seed): STUDY_COLUMNS, the extraction seconds (NaN for a store
    found complete on disk: time only a study from empty stores) and the frames the backbone saw for that k (the
    same for every seed)."""
    from actx.features import FeatureStore, ensure_features, frames_per_step, sampled_frames
    from actx.features.extract import STREAMS, store_root

    seeds = tuple(cfg.train["seeds"]) if seeds is None else tuple(seeds)
    splits = benchmark_splits(cfg, (TRAIN_SPLIT, VAL_SPLIT))
    clips = list(splits[TRAIN_SPLIT]) + list(splits[VAL_SPLIT])
    stride = int(cfg.features["time_stride"])
    rows = []
    for k in ks:
        per_stream = {s: frames_per_step(cfg.features, s) for s in STREAMS}  # the other stream as the profile
        per_stream[stream] = int(k)  # has it, so that the profile's own k shares its store with the course
        cfg_k = cfg.replace(features__frames_per_step=per_stream, dataset__eval_splits=())
        before = FeatureStore(store_root(cfg_k))
        stored = all(before.has(r.id, stream) for r in clips)  # found on disk: no extraction to time
        start = time.perf_counter()
        store = ensure_features(cfg_k, clips, stream, progress=progress)
        seconds = float("nan") if stored else time.perf_counter() - start
        frames = sum(len(sampled_frames(int(store.entry(r.id, stream)["frames"]), stride, int(k))[0]) for r in clips)
        study = dataclasses.replace(cfg_k, data_root=cfg.data_root / "studies" / f"frames_per_step={int(k)}")
        results = run_many(study, {seed: (method, stream, seed) for seed in seeds}, store=store, records=splits,
                           progress=progress)  # the seeds side by side (actx.parallel)
        for seed, result in results.items():
            rows.append(dict(frames_per_step=int(k), seed=int(seed),
                             val_mAP=100 * result.metrics[VAL_SPLIT]["mAP"], extract_seconds=seconds,
                             backbone_frames=frames))
    return pd.DataFrame(rows, columns=list(STUDY_COLUMNS))


def study_file(stream: str) -> str:
    """The study table's file name under cfg.figures, per stream."""
    return f"frame_sampling_{stream}.csv"


def choose_frames_per_step(table: pd.DataFrame) -> int:
    """The smallest k whose validation mAP is not clearly below the best k's (compare_seeds over the same seeds:
    a gap of more than twice the larger seed spread is clear). With one seed, the best k itself."""
    by_k = {int(k): g.sort_values("seed")["val_mAP"].to_numpy() for k, g in table.groupby("frames_per_step")}
    best = max(by_k, key=lambda k: (by_k[k].mean(), k))
    for k in sorted(by_k):
        if k == best:
            return k
        verdict = compare_seeds(by_k[k], by_k[best])
        if verdict.verdict not in ("clear", "one seed"):
            return k
    return best


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per k: mean and std of validation mAP over seeds, extraction seconds, backbone frames."""
    g = table.groupby("frames_per_step")
    out = pd.DataFrame({"val_mAP_mean": g["val_mAP"].mean(), "val_mAP_std": g["val_mAP"].std(ddof=1),
                        "seeds": g["seed"].nunique(), "extract_seconds": g["extract_seconds"].first(),
                        "backbone_frames": g["backbone_frames"].first()})
    return out.astype({"seeds": int, "backbone_frames": int}).replace({np.nan: None})

"""ACRN's one open value chosen on the validation split: the peak learning rate of its schedule.

002 trains with asynchronous SGD at a peak learning rate of 0.001 (section 4.1) on many GPUs and 200K steps; our
CPU schedule is 4 epochs of 24 steps (cfg.detection_train), so the paper's value is not obviously right for it.
The procedure, the same budget for every method (the course's rule, actx.experiments.tuning): every row of Table
1a (Base-Model, Resize+Concat, Santoro et al., ACRN) is trained with each learning rate of the grid on the
profile's schedule and seeds; a learning rate's score per seed is the mean of the four methods' validation
frame-mAP. The profile's learning rate stays unless another one is *clearly* better
(actx.experiments.compare_seeds over the same seeds: a gap of more than twice the larger seed spread). The test
splits are never read.

    table = lr_study(cfg, STUDY_LRS)         # one row per (lr, method, seed): val frame-mAP in percent
    choose_lr(table, current=1e-3)            # the rule above

The profile's own learning rate reads the course's runs (cfg.cache); every other one trains under
DATA_ROOT/studies/acrn_lr=<lr>, sharing the course's stored key-frame maps (a link to cfg.cache/keyframes), so
that no run of the course is touched. ``benchmarks/acrn_lr.py`` runs it and writes figures/acrn_lr.csv, which
notebook 11 shows and checks the profile against.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd

STUDY_LRS = (3e-4, 1e-3, 3e-3)
METHODS = ("acrn_base", "acrn_concat", "acrn_santoro", "acrn")
STUDY_FILE = "acrn_lr.csv"
COLUMNS = ("lr", "method", "seed", "val_mAP")


def study_config(cfg: Any, lr: float) -> Any:
    """``cfg`` with peak learning rate ``lr``: cfg itself for the profile's own, else a study data root."""
    if float(lr) == float(cfg.detection_train["lr"]):
        return cfg
    study = dataclasses.replace(cfg.replace(detection_train__lr=float(lr)),
                                data_root=cfg.data_root / "studies" / f"acrn_lr={float(lr):g}")
    maps = study.cache / "keyframes"
    if not maps.exists():
        maps.parent.mkdir(parents=True, exist_ok=True)
        (cfg.cache / "keyframes").mkdir(parents=True, exist_ok=True)
        maps.symlink_to((cfg.cache / "keyframes").resolve(), target_is_directory=True)
    return study


def lr_study(cfg: Any, lrs: Sequence[float] = STUDY_LRS, methods: Sequence[str] = METHODS,
             seeds: Sequence[int] | None = None, progress: bool = True) -> pd.DataFrame:
    """Validation frame-mAP (percent) of every (lr, method, seed); ``cfg`` as actx.models.acrn.detection_config
    gives it, ``seeds`` the profile's (cfg.detection_train["seeds"])."""
    from actx.experiments import benchmark_splits, run_many
    from actx.experiments.runner import VAL_SPLIT

    seeds = tuple(cfg.detection_train["seeds"]) if seeds is None else tuple(seeds)
    records = benchmark_splits(cfg)
    rows = []
    for lr in lrs:
        jobs = {(method, seed): dict(method=method, seed=seed) for method in methods for seed in seeds}
        results = run_many(study_config(cfg, lr), jobs, records=records, progress=progress)  # side by side
        for (method, seed), result in results.items():
            rows.append(dict(lr=float(lr), method=method, seed=int(seed),
                             val_mAP=100 * result.metrics[VAL_SPLIT]["mAP"]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def per_seed(table: pd.DataFrame) -> dict[float, np.ndarray]:
    """{lr: (seeds,) mean over the methods of validation frame-mAP}, seeds in order."""
    means = table.groupby(["lr", "seed"])["val_mAP"].mean()
    return {float(lr): g.sort_index().to_numpy() for lr, g in means.groupby(level="lr")}


def choose_lr(table: pd.DataFrame, current: float) -> float:
    """``current`` unless the learning rate with the best mean score is clearly better than it (see the module
    doc); with one seed, ``current`` (no spread to judge a gap by)."""
    from actx.experiments import compare_seeds

    scores = per_seed(table)
    if float(current) not in scores:
        raise ValueError(f"the study has no runs at the current learning rate {current}: it has {sorted(scores)}")
    best = max(scores, key=lambda lr: (scores[lr].mean(), lr == float(current)))
    if best == float(current):
        return best
    return best if compare_seeds(scores[best], scores[float(current)]).clear else float(current)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per learning rate: the per-method means and the mean ± std over seeds of the methods' mean."""
    from .analysis import seed_mean

    wide = table.groupby(["lr", "method"])["val_mAP"].mean().unstack("method")
    scores = per_seed(table)
    wide["mean over methods"] = [seed_mean(scores[lr]) for lr in wide.index]
    return wide.round(1)

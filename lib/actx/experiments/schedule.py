"""How many epochs the heads need: the schedule study behind ``cfg.train["stream_epochs"]``.

The default schedule is the paper's shape scaled to the benchmark: lr 0.01 for two thirds of the run, then /10
twice (config.TRAIN: 12 epochs, milestones 8 and 11). Training runs are most of what the course spends (README,
time table), and the first seed's learning curves flatten well before epoch 12 (notebooks 04-05), so the number
of epochs is an open value like any other, chosen on the validation split:

- :func:`schedule_study` trains six heads of Table 1 (average pooling, attentional pooling, ACF, ActX, PoseMask,
  50Region) on both streams, with the profile's seeds, for every schedule of :data:`STUDY_EPOCHS` (same shape,
  :func:`milestones`) and reports validation mAP. A schedule that is not the profile's own runs in its own folders
  (DATA_ROOT/studies/epochs=<E>) and never reads a test split; the profile's own schedule is the course's runs,
  whose val numbers the study reads.
- :func:`choose_epochs` picks, per stream, the fewest epochs with which **no** head is worse on val than with the
  :data:`REFERENCE` 12 epochs by more than the seed spread (actx.experiments.judge: the larger sample std), the
  rule a speed lever must pass ("nothing may get worse on validation by more than the seed spread").

``benchmarks/schedule.py`` runs it (about 6 minutes on 2 cores at the default profile) and writes
``figures/schedule.csv``; notebook 04 shows the comparison and checks the profile against the pick.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .judge import compare_seeds
from .runner import TRAIN_SPLIT, VAL_SPLIT, _default_pairs, benchmark_splits, run_many

STUDY_EPOCHS = (12, 8, 6, 4)
REFERENCE = 12  # the default profile's schedule before the study, for every stream: what shorter ones must match
STUDY_METHODS = ("avgpool", "attentional", "acf", "actx", "posemask", "region50")
STUDY_COLUMNS = ("epochs", "method", "stream", "seed", "val_mAP")
STUDY_FILE = "schedule.csv"


def milestones(epochs: int) -> tuple[int, ...]:
    """The default schedule's shape for ``epochs``: lr / 10 after two thirds of the run and before the last
    epoch (12 -> (8, 11), 8 -> (5, 7), 6 -> (4, 5), 4 -> (2, 3))."""
    if epochs < 3:
        raise ValueError(f"the schedule needs at least 3 epochs (two drops before the last), got {epochs}")
    return (2 * epochs // 3, epochs - 1)


def stream_schedule(section: Mapping[str, Any], stream: str | None) -> tuple[int, tuple[int, ...]] | None:
    """(epochs, milestones) of a training section's ``stream_epochs`` for ``stream``, in the default shape; None
    where it does not name the stream (the section's own "epochs" and "milestones" hold)."""
    epochs = (section.get("stream_epochs") or {}).get(stream)
    return None if epochs is None else (int(epochs), milestones(int(epochs)))


def profile_schedule(cfg: Any, stream: str) -> tuple[int, tuple[int, ...]]:
    """(epochs, milestones) of ``stream``'s runs at this profile: :func:`stream_schedule` of cfg.train, else
    cfg.train's own "epochs" and "milestones"."""
    own = stream_schedule(cfg.train, stream)
    return own if own is not None else (int(cfg.train["epochs"]), tuple(cfg.train["milestones"]))


def schedule_config(cfg: Any, epochs: int, stream: str) -> Any:
    """``cfg`` training ``stream`` for ``epochs`` epochs (milestones by :func:`milestones`): the study's own run
    folders (DATA_ROOT/studies/epochs=<E>) and no test splits; ``cfg`` itself where that is already the
    profile's schedule for ``stream`` (the course's runs)."""
    if profile_schedule(cfg, stream) == (int(epochs), milestones(int(epochs))):
        return cfg
    study = cfg.replace(train__epochs=int(epochs), train__milestones=milestones(int(epochs)),
                        train__stream_epochs=None, dataset__eval_splits=())
    return dataclasses.replace(study, data_root=cfg.data_root / "studies" / f"epochs={int(epochs)}")


def schedule_study(cfg: Any, epochs: Sequence[int] = STUDY_EPOCHS, methods: Sequence[str] = STUDY_METHODS,
                   streams: Sequence[str] = ("rgb", "flow"), seeds: Sequence[int] | None = None,
                   progress: bool = True) -> pd.DataFrame:
    """Validation mAP (percent) of every method, stream and seed for each number of ``epochs``: STUDY_COLUMNS.
    The runs read the course's stores and pairs (stages 02-03, load-or-compute) and train side by side
    (actx.experiments.run_many)."""
    from actx.features import ensure_features

    seeds = tuple(cfg.train["seeds"]) if seeds is None else tuple(seeds)
    records = benchmark_splits(cfg)
    clips = [r for split in records.values() for r in split]
    rows = []
    for stream in streams:
        store = ensure_features(cfg, clips, stream, progress=progress)
        train_val = {s: records[s] for s in (TRAIN_SPLIT, VAL_SPLIT)}
        pairs = _default_pairs(cfg, store, stream, "thread", records, progress)
        for n in epochs:
            study = schedule_config(cfg, n, stream)
            common = {} if study is cfg else dict(store=store, records=train_val, pairs=pairs)
            jobs = {(m, seed): (m, stream, seed) for m in methods for seed in seeds}
            for (m, seed), result in run_many(study, jobs, progress=progress, **common).items():
                rows.append(dict(epochs=int(n), method=m, stream=stream, seed=int(seed),
                                 val_mAP=100 * result.metrics[VAL_SPLIT]["mAP"]))
    return pd.DataFrame(rows, columns=list(STUDY_COLUMNS))


def compare_to(table: pd.DataFrame, reference: int) -> pd.DataFrame:
    """Per (epochs, method, stream): mean and std of val mAP and the difference to ``reference`` epochs, judged
    against the seed spread (actx.experiments.judge); ``worse`` is True when it is below by more than the
    spread."""
    rows = []
    for (n, m, s), g in table.groupby(["epochs", "method", "stream"], sort=False):
        a = g.sort_values("seed")["val_mAP"].to_numpy()
        ref = table[(table.epochs == reference) & (table.method == m) & (table.stream == s)]
        b = ref.sort_values("seed")["val_mAP"].to_numpy()
        d = compare_seeds(a, b)
        rows.append(dict(epochs=int(n), method=m, stream=s, val_mAP=a.mean(),
                         val_std=a.std(ddof=1) if len(a) > 1 else np.nan, diff=d.diff, spread=d.spread,
                         worse=bool(d.diff < 0 and (d.verdict == "one seed" or d.ratio > 1))))
    return pd.DataFrame(rows)


def choose_epochs(table: pd.DataFrame, reference: int = REFERENCE) -> dict[str, int]:
    """{stream: the fewest epochs of the study with which no method on that stream is worse on val than with
    ``reference`` epochs by more than the seed spread (with one seed: not lower at all)}. Each stream keeps its
    own, as each keeps its own frames per step (actx.experiments.sampling)."""
    judged = compare_to(table, reference)
    return {str(stream): min(int(n) for n, g in part.groupby("epochs") if not g["worse"].any())
            for stream, part in judged.groupby("stream")}

"""Result tables over methods, streams and seeds: mean and std in percent, like ActX Tables 1-3."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .fusion import late_fusion
from .methods import METHODS, get_method
from .runner import EVAL_SPLITS, RunResult, run
from .scoring import METRIC_NAMES

FUSED = "rgb+flow"  # the stream name of a late fusion (actx.experiments.late_fusion)


def mean_pm(mean: float, std: float) -> str:
    """'mean ± std' with one decimal ('mean' alone for a single seed, '' for a missing value)."""
    if np.isnan(mean):
        return ""
    return f"{mean:.1f}" if np.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def seeds_pm(values: Sequence[float]) -> str:
    """Per-seed values as :func:`mean_pm` writes them: 'mean ± sample std', the mean alone for one seed."""
    v = np.asarray(values, dtype=float)
    return mean_pm(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"))


def stream_result(cfg: Any, method: str, stream: str, seed: int, conjugates: str = "thread",
                  progress: bool = True, **kwargs: Any) -> RunResult:
    """run(...) for "rgb" or "flow"; for "rgb+flow" the late fusion of the two streams' runs."""
    if stream == FUSED:
        return late_fusion(run(cfg, method, "rgb", seed, conjugates, progress=progress, **kwargs),
                           run(cfg, method, "flow", seed, conjugates, progress=progress, **kwargs))
    return run(cfg, method, stream, seed, conjugates, progress=progress, **kwargs)


def results_table(cfg: Any, methods: Sequence[str] | None = None, streams: Sequence[str] = ("rgb",),
                  seeds: Sequence[int] | None = None, splits: Sequence[str] = EVAL_SPLITS,
                  conjugates: str = "thread", metrics: Sequence[str] = METRIC_NAMES, progress: bool = True,
                  **kwargs: Any) -> pd.DataFrame:
    """One row per (method, stream): the mean and standard deviation over seeds of each metric, in percent.

    methods    keys of METHODS (default: all); streams: "rgb", "flow" and/or "rgb+flow" (late fusion)
    seeds      default cfg.train["seeds"]; runs are loaded when finished, trained otherwise (run())
    Columns: method, title, stream, seeds, params, then "<split> <metric>" (mean) and "<split> <metric> std"
    (sample standard deviation, ddof = 1; NaN for a single seed). ``kwargs`` go to run() (store, records,
    pairs).
    """
    methods = list(METHODS) if methods is None else list(methods)
    seeds = list(cfg.train["seeds"] if seeds is None else seeds)
    if not seeds:
        raise ValueError("results_table needs at least one seed")
    rows = []
    for method in methods:
        for stream in streams:
            results = [stream_result(cfg, method, stream, s, conjugates, progress, **kwargs) for s in seeds]
            row: dict[str, Any] = {"method": method, "title": get_method(method).title, "stream": stream,
                                   "seeds": len(seeds), "params": results[0].params}
            for split in splits:
                for metric in metrics:
                    values = 100.0 * np.array([r.metrics[split][metric] for r in results])
                    row[f"{split} {metric}"] = float(values.mean())
                    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
                    row[f"{split} {metric} std"] = std
            rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["unit"] = "percent"
    return table

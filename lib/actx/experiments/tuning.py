"""Open values chosen on the validation split, the same way for every method that has them.

The ActX paper leaves the margin xi of Eq. 3 and the weights of its two conjugate losses open (Eq. 1 adds the terms
unweighted); ACF (Wang and Hoai 2018), as the course builds it, has the same three. Average pooling and attentional
pooling have none left open in their registry rows (attentional pooling is rank 1, as Girdhar and Ramanan chose).
Each method with open values gets the same grid (:data:`GRID`, four settings) and the same budget: the profile's
seeds, RGB, the profile's schedule; the setting with the best mean validation mAP is chosen (the first listed wins a
tie). The test splits are never read. The choice becomes the method's registry default (its ``PARAMS``), so every
chapter trains with it; :func:`check_defaults` tells a notebook whether the registry still agrees with the grid.

Why this grid: with the backbone maps' cosines of Eq. 3 at 0.8-0.99 (notebook 06 shows their distribution), the
paper-free default xi = 0.5 never lets the hinge max(0, cos_i - xi) reach zero, so L_sim is a plain weighted mean
of the cosines; xi = 0.9 lies inside that range, where the hinge binds for part of the voxels. The weight 0.1 asks
whether the conjugate losses, whose gradients reach phi and psi beside the classification loss's, are too loud.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pandas as pd

from .methods import get_method
from .runner import VAL_SPLIT, run

# One grid for every method with conjugate losses: (xi, weight of both conjugate losses).
_SETTINGS = tuple({"xi": xi, "sim_weight": w, "diff_weight": w} for xi in (0.5, 0.9) for w in (1.0, 0.1))
GRID: dict[str, tuple[dict[str, Any], ...]] = {"acf": _SETTINGS, "actx": _SETTINGS}
STREAM = "rgb"


def tuning_table(cfg: Any, grid: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                 seeds: Sequence[int] | None = None, stream: str = STREAM, progress: bool = True) -> pd.DataFrame:
    """Validation mAP (percent) of every (method, setting, seed) of ``grid`` (default :data:`GRID`): one row each
    with the setting as JSON, its index in the grid and whether it equals the registry's current defaults."""
    grid = GRID if grid is None else grid
    seeds = tuple(cfg.train["seeds"]) if seeds is None else tuple(seeds)
    rows = []
    for method, settings in grid.items():
        defaults = get_method(method).params
        for index, setting in enumerate(settings):
            for seed in seeds:
                result = run(cfg, method, stream, seed, params=dict(setting), progress=progress)
                rows.append(dict(method=method, setting=index, params=json.dumps(dict(setting), sort_keys=True),
                                 is_default=all(defaults[k] == v for k, v in setting.items()), seed=int(seed),
                                 val_mAP=100 * result.metrics[VAL_SPLIT]["mAP"]))
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """{method: the setting with the best mean validation mAP over seeds} (ties: the first in the grid)."""
    means = table.groupby(["method", "setting", "params"], sort=True)["val_mAP"].mean().reset_index()
    out = {}
    for method, part in means.groupby("method"):
        best = part.sort_values(["val_mAP", "setting"], ascending=[False, True]).iloc[0]
        out[str(method)] = json.loads(best["params"])
    return out


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, setting): the setting's values, mean and std of validation mAP over seeds, and
    whether it is the chosen one."""
    chosen = choose(table)
    g = table.groupby(["method", "setting"])
    out = pd.DataFrame({"params": g["params"].first(), "val_mAP": g["val_mAP"].mean(),
                        "val_mAP_std": g["val_mAP"].std(ddof=1), "seeds": g["seed"].nunique()})
    out["chosen"] = [json.loads(p) == chosen[m] for (m, _), p in zip(out.index, out["params"])]
    return out


def check_defaults(table: pd.DataFrame) -> dict[str, dict[str, tuple[Any, Any]]]:
    """{method: {key: (registry default, chosen value)}} for every value where the registry's PARAMS differ from
    the grid's choice: empty when the registry holds the validated choice."""
    out = {}
    for method, setting in choose(table).items():
        defaults = get_method(method).params
        diff = {k: (defaults[k], v) for k, v in setting.items() if defaults[k] != v}
        if diff:
            out[method] = diff
    return out

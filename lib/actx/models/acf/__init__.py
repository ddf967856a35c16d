"""ACF (Wang and Hoai 2018), the "ACF-I3D" baseline of ActX Table 1: the head and its conjugate objective."""

from __future__ import annotations

import functools
from typing import Any, Mapping

from actx.models.acf.head import ACF_DIM, ACFHead
from actx.models.acf.objective import DIFF_WEIGHT, SIM_WEIGHT, XI, acf_objective
from actx.models.classify import MULTI_LABEL, NEGATIVE_WEIGHT_WHY

PARAMS = {"dim": ACF_DIM, "xi": XI, "sim_weight": SIM_WEIGHT, "diff_weight": DIFF_WEIGHT}
WHY = {
    "dim": "open: 256 keeps both projections well below the backbone's size (ACF_DIM)",
    "xi": "open: chosen on val from {0.5, 0.9} with ActX's grid and budget (actx.experiments.tuning)",
    "sim_weight": "open: chosen on val from {1, 0.1} (actx.experiments.tuning): 0.1",
    "diff_weight": "open: chosen on val from {1, 0.1} (actx.experiments.tuning): 0.1",
    "negative_weight": NEGATIVE_WEIGHT_WHY,  # set by the HACS-30 row only (actx.experiments.methods)
}


def build_head(in_channels: int, num_classes: int, params: Mapping[str, Any], base=None) -> ACFHead:
    return ACFHead(in_channels, num_classes, dim=int(params["dim"]))


def build_objective(params: Mapping[str, Any], multi_label: bool = MULTI_LABEL, inputs: tuple[str, ...] = ()):
    kwargs = {k: params[k] for k in ("xi", "sim_weight", "diff_weight")}
    return functools.partial(acf_objective, multi_label=multi_label, negative_weight=params.get("negative_weight"),
                             **kwargs)


__all__ = ["ACF_DIM", "ACFHead", "PARAMS", "WHY", "acf_objective", "build_head", "build_objective"]

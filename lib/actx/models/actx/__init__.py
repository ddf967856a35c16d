"""ActX (paper 000): the head (Eq. 5-7), its fused kernels and its training objective (Eq. 1, 3, 4).

- :mod:`.head`       :class:`ActXHead`, Eq. 6 pooling (:func:`pool`, :func:`pool_per_step`, :func:`step_features`)
- :mod:`.fused`      phi / psi as one matrix product and a shift gather; theta with Eq. 6 pooling in one node
- :mod:`.objective`  :func:`actx_objective` and the defaults of the paper's open values (GAMMA, XI, ...)

The parameter-free operators (AttNorm, Percent, eta, Eq. 2) are :mod:`actx.ops` and the losses (Eq. 3-4)
:mod:`actx.losses`, the public names of DESIGN.md.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from actx.models.actx.head import DENSE_THETA, MAP_KERNEL, ActXHead, pool, pool_per_step, step_features
from actx.models.actx.objective import (DIFF_WEIGHT, GAMMA, LOSS_FEATURES, SIM_WEIGHT, XI, actx_objective)
from actx.models.classify import MULTI_LABEL, NEGATIVE_WEIGHT_WHY

# The registry's parameters (actx.experiments.METHODS["actx"].params): the paper's defaults, and for every value
# the paper leaves open the default named in .head / .objective, whose comments give the reasoning in full.
PARAMS = {"rho": 30.0, "alpha": 1.0, "beta": 1.0, "use_s_att": True, "map_kernel": MAP_KERNEL,
          "dense_theta": DENSE_THETA, "gamma": GAMMA, "xi": XI, "sim_weight": SIM_WEIGHT,
          "diff_weight": DIFF_WEIGHT, "loss_features": LOSS_FEATURES}
WHY = {
    "rho": "paper (000 section 3.4): 'a good default starting point is rho = 30.0, alpha = beta = 1'",
    "alpha": "paper default (000 section 3.4)",
    "beta": "paper default (000 section 3.4)",
    "use_s_att": "S = S_act * S_att (Eq. 5); False is the paper's ablation 'ActX w/o S_att'",
    "map_kernel": "open: phi and psi are '3D convolutional layers'; 3x3x3 is the smallest kernel that sees each "
                  "voxel's neighbours in time and space (MAP_KERNEL)",
    "dense_theta": "open: a channel-wise 1x1x1 conv keeps theta's parameters 'negligible' as the paper says "
                   "(DENSE_THETA)",
    "gamma": "open (Eq. 2): 10 turns a cosine gap of 0.1 into an e-fold weight ratio (GAMMA)",
    "xi": "open (Eq. 3): chosen on val from {0.5, 0.9} (actx.experiments.tuning, notebook 07; XI)",
    "sim_weight": "open: chosen on val from {1, 0.1}; 1, Eq. 1's unweighted sum, won",
    "diff_weight": "open: chosen on val from {1, 0.1}; 1, Eq. 1's unweighted sum, won",
    "loss_features": "section 3.2 compares X = F(a) and Z = F(c), the backbone maps (LOSS_FEATURES)",
    "negative_weight": NEGATIVE_WEIGHT_WHY,  # set by the HACS-30 row only (actx.experiments.methods)
}
HEAD_PARAMS = ("rho", "alpha", "beta", "use_s_att", "map_kernel", "dense_theta")


def build_head(in_channels: int, num_classes: int, params: Mapping[str, Any], base=None) -> ActXHead:
    kwargs = {k: params[k] for k in HEAD_PARAMS if k in params}
    kwargs["map_kernel"] = tuple(kwargs.get("map_kernel", MAP_KERNEL))  # a list after a JSON round trip
    return ActXHead(in_channels, num_classes, **kwargs)


def build_objective(params: Mapping[str, Any], multi_label: bool = MULTI_LABEL, inputs: tuple[str, ...] = ()):
    """actx_objective bound to the run's parameters (ActX heads take no extra inputs)."""
    kwargs = {k: params[k] for k in ("gamma", "xi", "sim_weight", "diff_weight", "loss_features")}
    return functools.partial(actx_objective, multi_label=multi_label, negative_weight=params.get("negative_weight"),
                             **kwargs)


__all__ = ["DENSE_THETA", "DIFF_WEIGHT", "GAMMA", "HEAD_PARAMS", "LOSS_FEATURES", "MAP_KERNEL", "PARAMS",
           "SIM_WEIGHT", "WHY", "XI", "ActXHead", "actx_objective", "build_head", "build_objective", "pool",
           "pool_per_step", "step_features"]

"""Heads on backbone feature maps f (B, D, T, H, W) with a time mask (B, T): every forward returns a dict with
"logits" (B, C) and, where the method has them, the maps "S" (action / attention) and "C" (context), (B, T, H,
W).

- :class:`AvgPoolHead`             the "I3D" baseline: global average pooling (ActX Table 1)
- :class:`AttentionalPoolingHead`  Girdhar and Ramanan 2017, rank-1 top-down x bottom-up attention
- :class:`ACFHead`                 Wang and Hoai 2018, action / context factorization on pooled vectors
- :class:`ActXHead`                ActX (paper 000, Eq. 5-7)
- :class:`EEP`, :class:`EEPHead`   Eigen Evolution Pooling and a classifier on it (ActX Table 2)
- :mod:`actx.models.objectives`    one training objective per method (ActX Eq. 1)
"""

from actx.models.acf import ACF_DIM, ACFHead
from actx.models.actx_head import DENSE_THETA, MAP_KERNEL, ActXHead, pool, pool_per_step, step_features
from actx.models.attentional import AttentionalPoolingHead
from actx.models.baselines import AvgPoolHead, masked_average, spatial_average_sequence, uniform_maps
from actx.models.eep import EEP, EEP_K, EEP_LENGTH, EEPHead, resample
from actx.models.objectives import (acf_objective, actx_objective, classification_loss,
                                    classification_objective, objective_for)

__all__ = [
    "ACF_DIM", "ACFHead", "ActXHead", "AttentionalPoolingHead", "AvgPoolHead", "DENSE_THETA", "EEP",
    "EEPHead",
    "EEP_K", "EEP_LENGTH", "MAP_KERNEL", "acf_objective", "actx_objective", "classification_loss",
    "classification_objective", "masked_average", "objective_for", "pool", "pool_per_step", "resample",
    "spatial_average_sequence", "step_features", "uniform_maps",
]

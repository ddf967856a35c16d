"""One training objective per method: ``objective(model, batch) -> dict`` with "loss" (the total) and its
named components for logging ("class", and "sim" / "diff" where the method has them).

The batch is a dict: "f" (B, D, T, H, W) float, "mask" (B, T) bool (optional), "y" (B, C) float multi-hot, and
for the methods trained with conjugate samples "cf" (B, D, T', H, W) and "cmask" (B, T') (optional).

The total follows ActX Eq. 1: L = L_class + w_sim * L_sim + w_diff * L_diff. The paper gives no values for the
loss weights, gamma (Eq. 2) or xi (Eq. 3); the defaults below are named and every objective takes them as
arguments (bind them with functools.partial to hand a configured objective to the training loop).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from actx import ops
from actx.losses import cross_video_cosine, difference_loss_from_cos, similarity_loss_from_cos
from actx.models.acf import ACFHead
from actx.models.actx_head import ActXHead

# Sharpness of cross-video attentive pooling (ActX Eq. 2). gamma = 10 turns a cosine gap of 0.1 into an e-fold
# weight ratio, so eta(x_i, Z) leans on the voxels of Z most like x_i while staying smooth. Measured on 14
# threads of the default benchmark (EfficientNet-Lite0 maps, action steps vs the thread's pre/post steps):
# voxel cosines spread from 0.2 to 0.8 (10th-90th percentile); per-voxel cos(eta(x_i, X), eta(x_i, Z)) is
# lower on actor cells than on background cells with a ranking AUC of 0.82 / 0.80 / 0.79 / 0.79 at gamma 3 /
# 10 / 30 / 100, and the actor-background gap in cos grows from about 0.02 (gamma 3) to 0.02-0.08 (gamma 10).
# gamma = 1 erases it.
GAMMA = 10.0

# Margin of sim(u, v) = max(0, cos(u, v) - xi) (ActX Eq. 3; also ACF's hinge): an action voxel stops being
# penalised once its counterpart in the conjugate is at most cos = 0.5 (60 degrees) alike: clearly different
# but not forced to be opposite, which non-negative features cannot be anyway. On the benchmark's backbone
# maps the per-voxel cosines lie in 0.8-0.99, so with the default loss_features="backbone" (fixed cosines) the
# hinge never binds and Eq. 3 simply moves S towards low-cosine voxels; the margin matters for learnt features
# (loss_features="theta", ACF's projections).
XI = 0.5

# Weights of the two factorization losses in Eq. 1: the paper's Eq. 1 adds the three terms unweighted.
SIM_WEIGHT = 1.0
DIFF_WEIGHT = 1.0

# Which per-voxel features Eq. 3-4 compare: "backbone" (X = F(a), Z = F(c), as ActX 3.2 writes) or "theta"
# (theta(F)); see the module docstring of actx.models.actx_head for the reasoning behind the default.
LOSS_FEATURES = "backbone"

# Classification loss. BCE-with-logits scores each class on its own, so it is right for every label set: one,
# several or no labels per clip (ActionThread and Hollywood2 clips can carry several actions, benchmark
# negatives none), and it matches the per-class AP the papers report. Pass multi_label=False for single-label
# sets (every clip exactly one class, e.g. HACS-30 with its background class): softmax cross-entropy then lets
# the classes compete, which is the standard, better-conditioned choice when exactly one is true.
MULTI_LABEL = True


def classification_loss(logits: torch.Tensor, y: torch.Tensor, multi_label: bool = MULTI_LABEL
                        ) -> torch.Tensor:
    """L_class of ActX Eq. 1: BCE-with-logits (multi_label) or softmax cross-entropy (one label per row)."""
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and multi-hot labels y {tuple(y.shape)} must both be "
                         "(B, C)")
    y = y.to(logits.dtype)
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, y)
    per_row = y.sum(1)
    if not bool(((per_row == 1) & ((y == 0) | (y == 1)).all(1)).all()):
        raise ValueError("multi_label=False needs exactly one label per sample (one-hot rows of y); this "
                         f"batch has rows with {sorted(set(per_row.tolist()))} labels: use multi_label=True")
    return F.cross_entropy(logits, y.argmax(1))


def _time_mask(batch: dict, key_f: str, key_m: str) -> torch.Tensor:
    if key_f not in batch:
        raise KeyError(f"this objective needs batch[{key_f!r}] (the conjugate feature map); the batch has "
                       f"{sorted(batch)}")
    return ops.time_mask(batch[key_f], batch.get(key_m))


def classification_objective(model: nn.Module, batch: dict, multi_label: bool = MULTI_LABEL) -> dict:
    """Classification only: average pooling ("I3D"), attentional pooling and EEP heads."""
    out = model(batch["f"], batch.get("mask"))
    cls = classification_loss(out["logits"], batch["y"], multi_label)
    return {"loss": cls, "class": cls}


def actx_objective(model: ActXHead, batch: dict, gamma: float = GAMMA, xi: float = XI,
                   sim_weight: float = SIM_WEIGHT, diff_weight: float = DIFF_WEIGHT,
                   multi_label: bool = MULTI_LABEL, loss_features: str = LOSS_FEATURES,
                   chunk: int | None = ops.ETA_CHUNK) -> dict:
    """ActX Eq. 1 with Eq. 3 and 4: L_class + sim_weight * L_sim(X, Z; S) + diff_weight * L_diff(X, Z; C).

    The weights s_i, c_i are the action sample's maps S and C; X, Z are the action sample's and the
    conjugate's voxels (``loss_features``: "backbone" maps, or "theta" features computed by the same theta for
    both).
    """
    f, y = batch["f"], batch["y"]
    out = model(f, batch.get("mask"))
    cls = classification_loss(out["logits"], y, multi_label)
    cmask = _time_mask(batch, "cf", "cmask")
    cf = batch["cf"]
    if loss_features == "backbone":
        x, z = ops.to_voxels(f), ops.to_voxels(cf)  # (B, N, D), (B, M, D)
    elif loss_features == "theta":
        x, z = ops.to_voxels(out["theta"]), ops.to_voxels(model.theta(cf, cmask))
    else:
        raise ValueError(f"loss_features must be 'backbone' or 'theta', got {loss_features!r}")
    xm, zm = out["voxel_mask"], ops.voxel_mask(cmask, cf.shape)  # (B, N), (B, M)
    cos = cross_video_cosine(x, z, gamma, xm, zm, chunk)  # (B, N)
    sim = similarity_loss_from_cos(cos, out["S"].flatten(1), xi, xm)
    diff = difference_loss_from_cos(cos, out["C"].flatten(1), xm)
    return {"loss": cls + sim_weight * sim + diff_weight * diff, "class": cls, "sim": sim, "diff": diff}


def acf_objective(model: ACFHead, batch: dict, xi: float = XI, sim_weight: float = SIM_WEIGHT,
                  diff_weight: float = DIFF_WEIGHT, multi_label: bool = MULTI_LABEL) -> dict:
    """ACF (Wang and Hoai 2018) on pooled vectors: L_class + sim_weight * mean max(0, cos(a, a') - xi)
    + diff_weight * mean (1 - cos(c, c')), with (a, c) the sample's and (a', c') the conjugate's features."""
    out = model(batch["f"], batch.get("mask"))
    cls = classification_loss(out["logits"], batch["y"], multi_label)
    ca, cc = model.embed(batch["cf"], _time_mask(batch, "cf", "cmask"))
    sim = F.relu(F.cosine_similarity(out["action"], ca, dim=1) - xi).mean()
    diff = (1.0 - F.cosine_similarity(out["context"], cc, dim=1)).mean()
    return {"loss": cls + sim_weight * sim + diff_weight * diff, "class": cls, "sim": sim, "diff": diff}


def objective_for(model: nn.Module) -> Callable[[nn.Module, dict], dict]:
    """The default objective of a head: actx_objective, acf_objective or classification_objective."""
    if isinstance(model, ActXHead):
        return actx_objective
    if isinstance(model, ACFHead):
        return acf_objective
    return classification_objective

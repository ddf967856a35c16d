"""The classification loss and the classification-only objective, shared by every head (ActX Eq. 1's L_class).

An objective is ``objective(model, batch) -> dict`` with "loss" (the total) and its named components for logging
("class", and "sim" / "diff" where a method has them). The batch is a dict: "f" (B, D, T, H, W) float, "mask"
(B, T) bool (optional), "y" (B, C) float multi-hot, plus whatever inputs the method declares (conjugate maps "cf"
/ "cmask", actor boxes, ...). A head's forward takes ``(f, mask, **inputs)``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from actx import ops

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


def time_mask_of(batch: dict, key_f: str, key_m: str) -> torch.Tensor:
    """The checked (B, T) time mask of the batch map ``key_f`` (a KeyError naming it when it is absent)."""
    if key_f not in batch:
        raise KeyError(f"this objective needs batch[{key_f!r}] (the conjugate feature map); the batch has "
                       f"{sorted(batch)}")
    return ops.time_mask(batch[key_f], batch.get(key_m))


def head_inputs(batch: dict, inputs: tuple[str, ...] = ()) -> dict:
    """The extra inputs a head's forward takes, by name, from the batch (e.g. ("boxes",)); a clear error when
    the batch lacks one (the method must declare it so that the runner loads it)."""
    missing = [k for k in inputs if k not in batch]
    if missing:
        raise KeyError(f"the head needs the inputs {missing}, but the batch has only {sorted(batch)}; declare "
                       "them in the method's registry row (Method.inputs) so that the runner loads them")
    return {k: batch[k] for k in inputs}


def classification_objective(model: nn.Module, batch: dict, multi_label: bool = MULTI_LABEL,
                             inputs: tuple[str, ...] = ()) -> dict:
    """Classification only (average pooling "I3D", attentional pooling, EEP, ...): the head reads "f", "mask"
    and the named extra ``inputs`` of the batch."""
    out = model(batch["f"], batch.get("mask"), **head_inputs(batch, inputs))
    cls = classification_loss(out["logits"], batch["y"], multi_label)
    return {"loss": cls, "class": cls}


Objective = Callable[[nn.Module, dict], dict]


def classification_builder(params: Mapping[str, Any], multi_label: bool = MULTI_LABEL,
                           inputs: tuple[str, ...] = ()) -> Objective:
    """The registry's objective builder for classification-only methods (no parameters of their own)."""
    return functools.partial(classification_objective, multi_label=multi_label, inputs=tuple(inputs))

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

# Class-weighted cross entropy (001 section 2.4, HACS-30): "weight 0.01 for negative clips and 1.0 for positive
# clips". A method's parameter ``negative_weight`` (None: unweighted) is the weight of the *last* class, the
# background of a K + 1-class set (actx.models.finetune3d.BACKGROUND is appended last); every other class weighs 1.
# The loss is then the weighted mean sum_i w_i CE_i / sum_i w_i (PyTorch's convention for class weights).
NEGATIVE_WEIGHT_WHY = ("paper (001 section 2.4): weighted cross entropy, 0.01 for the negatives (the last, "
                       "background class); None (unweighted) outside the HACS-30 rows")


def class_weights(num_classes: int, negative_weight: float, like: torch.Tensor) -> torch.Tensor:
    """(C,) weights: 1 for every class, ``negative_weight`` for the last (the background); dtype and device of
    ``like``. A ValueError for a weight that is not positive (a batch of negatives would have no loss)."""
    if not float(negative_weight) > 0:
        raise ValueError(f"negative_weight must be > 0 (the paper's is 0.01), got {negative_weight!r}")
    weight = torch.ones(num_classes, dtype=like.dtype, device=like.device)
    weight[-1] = float(negative_weight)
    return weight


def sample_weight_sum(y: torch.Tensor, negative_weight: float | None) -> float:
    """sum_i w_i over the one-hot rows of ``y`` (B, C): the denominator of the weighted mean (B when
    ``negative_weight`` is None). Used to recombine a batch that is split in parts (methods.optional_conjugates)."""
    if negative_weight is None:
        return float(y.shape[0])
    negatives = float(y[:, -1].sum())
    return float(y.shape[0]) - negatives + float(negative_weight) * negatives


def classification_loss(logits: torch.Tensor, y: torch.Tensor, multi_label: bool = MULTI_LABEL,
                        negative_weight: float | None = None) -> torch.Tensor:
    """L_class of ActX Eq. 1: BCE-with-logits (multi_label) or softmax cross-entropy (one label per row).

    ``negative_weight`` (single-label only): the class-weighted cross entropy of 001 section 2.4, the last class
    (the background) weighted ``negative_weight``, the others 1, as sum_i w_i CE_i / sum_i w_i."""
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and multi-hot labels y {tuple(y.shape)} must both be "
                         "(B, C)")
    y = y.to(logits.dtype)
    if multi_label:
        if negative_weight is not None:
            raise ValueError(f"negative_weight={negative_weight} weighs a single-label set's background class; "
                             "this set is multi-label (multi_label=True): leave negative_weight None")
        return F.binary_cross_entropy_with_logits(logits, y)
    per_row = y.sum(1)
    if not bool(((per_row == 1) & ((y == 0) | (y == 1)).all(1)).all()):
        raise ValueError("multi_label=False needs exactly one label per sample (one-hot rows of y); this "
                         f"batch has rows with {sorted(set(per_row.tolist()))} labels: use multi_label=True")
    if negative_weight is None:
        return F.cross_entropy(logits, y.argmax(1))
    return F.cross_entropy(logits, y.argmax(1), weight=class_weights(logits.shape[1], negative_weight, logits))


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
                             inputs: tuple[str, ...] = (), negative_weight: float | None = None) -> dict:
    """Classification only (average pooling "I3D", attentional pooling, EEP, ...): the head reads "f", "mask"
    and the named extra ``inputs`` of the batch; ``negative_weight``: see :func:`classification_loss`."""
    out = model(batch["f"], batch.get("mask"), **head_inputs(batch, inputs))
    cls = classification_loss(out["logits"], batch["y"], multi_label, negative_weight)
    return {"loss": cls, "class": cls}


Objective = Callable[[nn.Module, dict], dict]


def classification_builder(params: Mapping[str, Any], multi_label: bool = MULTI_LABEL,
                           inputs: tuple[str, ...] = ()) -> Objective:
    """The registry's objective builder for classification-only methods (no parameters of their own; a row may
    set ``negative_weight``, the weighted cross entropy of the HACS-30 rows)."""
    return functools.partial(classification_objective, multi_label=multi_label, inputs=tuple(inputs),
                             negative_weight=params.get("negative_weight"))

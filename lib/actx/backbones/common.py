"""What every backbone shares: TF "SAME" padding, folding batch norm into convolutions, strict loading.

- :func:`same_pad_amounts`, :class:`Conv2dSame`, :class:`Conv3dSame`, :func:`max_pool3d_same`: TensorFlow's
  "SAME" padding (output ``ceil(in / stride)``; an odd extra pixel goes after: bottom / right / later).
  EfficientNet-Lite and the TF-ported Inception-I3D were trained with it, so their weights need it.
- :func:`fuse_bn`: an eval-only copy of a model with every ``conv -> BatchNorm`` pair folded into one conv.
- :func:`read_checkpoint`, :func:`empty_model`, :func:`load_checked`: read a ``.pt`` / ``.pth`` file and
  load it with ``strict=True``, failing with a message that names the file and lists a few missing,
  unexpected and misshaped keys.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


# --- TF "SAME" padding -------------------------------------------------------------------------------------
def same_pad_amounts(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis under TF "SAME": output ``ceil(size / stride)``, odd one after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _symmetric_if_possible(kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]):
    """Static padding when SAME is symmetric whatever the input size (stride 1, even extent); else None."""
    pads = []
    for k, s, d in zip(kernel, stride, dilation):
        extent = (k - 1) * d
        if s != 1 or extent % 2:
            return None
        pads.append(extent // 2)
    return tuple(pads)


class _SamePadding:
    """TF "SAME" padding for a torch conv of any dimension. Stride-1 odd kernels pad statically (the fast path,
    friendly to channels_last); strided convs pad per call, as SAME depends on the input size (asymmetric if
    even)."""

    same_padding = True  # actx.features.geometry reads the padding from same_pad_amounts, not .padding

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, dilation=1,
                 groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation,
                         groups=groups, bias=bias)
        static = _symmetric_if_possible(self.kernel_size, self.stride, self.dilation)
        self._dynamic = static is None
        if static is not None:
            self.padding = static

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            pads: list[int] = []
            for axis in range(-1, -len(self.kernel_size) - 1, -1):  # F.pad takes the last axis first
                pads += same_pad_amounts(x.shape[axis], self.kernel_size[axis], self.stride[axis],
                                         self.dilation[axis])
            x = F.pad(x, pads)
        return super().forward(x)


class Conv2dSame(_SamePadding, nn.Conv2d):
    """``nn.Conv2d`` with TF "SAME" padding (see :class:`_SamePadding`)."""


class Conv3dSame(_SamePadding, nn.Conv3d):
    """``nn.Conv3d`` with TF "SAME" padding (see :class:`_SamePadding`)."""


def max_pool3d_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """3D max pooling with TF "SAME" padding. TF ignores the padded cells (they act as -inf); some ports pad
    with zeros, which differs only where every real value in a window is negative (never after a ReLU)."""
    static = _symmetric_if_possible(kernel, stride, (1, 1, 1))
    if static is not None:  # stride 1, odd kernel: max_pool3d's own padding is -inf already
        return F.max_pool3d(x, kernel, stride, padding=static)
    pads: list[int] = []
    for axis in (-1, -2, -3):
        pads += same_pad_amounts(x.shape[axis], kernel[axis], stride[axis])
    if any(pads):
        x = F.pad(x, pads, value=float("-inf"))
    return F.max_pool3d(x, kernel, stride)


class MaxPool3dSame(nn.Module):
    """:func:`max_pool3d_same` as a module (so that hooks, e.g. actx.features.geometry's, see it)."""

    same_padding = True

    def __init__(self, kernel_size: Sequence[int], stride: Sequence[int]):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = tuple(kernel_size), tuple(stride), (1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool3d_same(x, self.kernel_size, self.stride)


# --- Folding batch norm into the preceding convolution (inference speed) -----------------------------------
def _fold(conv: nn.Module, bn: nn.Module) -> None:
    """w' = w * g / sqrt(var + eps), b' = beta + (b - mean) * g / sqrt(var + eps); in place on ``conv``."""
    if not isinstance(conv, (nn.Conv2d, nn.Conv3d)) or not isinstance(bn, (nn.BatchNorm2d, nn.BatchNorm3d)):
        raise TypeError(f"fuse_bn: expected a Conv -> BatchNorm pair, got {type(conv).__name__} -> "
                        f"{type(bn).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fuse_bn: a BatchNorm without running statistics (track_running_stats=False) "
                         "cannot be folded")
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    w = conv.weight.detach() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    conv.weight = nn.Parameter(w, requires_grad=False)
    conv.bias = nn.Parameter(bn.bias.detach() + (bias - bn.running_mean) * scale, requires_grad=False)


def fuse_bn(model: nn.Module) -> nn.Module:
    """An eval-only copy of ``model``, each ``conv -> BatchNorm`` pair folded into the conv (BN -> Identity).

    Every module that declares ``FUSE_PAIRS = (("conv_attr", "bn_attr"), ...)`` has those pairs folded; pairs
    whose conv or BN is absent (EfficientNet's block 0 has no expansion; I3D's logits have no BN) are skipped.
    The copy computes what ``model.eval()`` computes up to float rounding, has no trainable parameters and
    refuses ``.train()``: its batch norm is gone, so training it would not train the model it came from.
    ``model`` itself is not changed. Combine with channels_last for CPU inference (see efficientnet.py).
    """
    fused = copy.deepcopy(model).eval()
    count = 0
    for module in fused.modules():
        for conv_name, bn_name in getattr(module, "FUSE_PAIRS", ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if conv is None or bn is None or isinstance(bn, nn.Identity):
                continue
            _fold(conv, bn)
            setattr(module, bn_name, nn.Identity())
            count += 1
    if count == 0:
        raise ValueError(f"fuse_bn: {type(model).__name__} declares no foldable conv -> BatchNorm pairs "
                         "(no module has FUSE_PAIRS); nothing to fuse")
    fused.requires_grad_(False)
    fused.train = _eval_only.__get__(fused)  # type: ignore[method-assign]
    return fused


def _eval_only(self: nn.Module, mode: bool = True) -> nn.Module:
    if mode:
        raise RuntimeError("this model came from fuse_bn(): batch norm is folded into the convolutions, so "
                           "it is for inference only; train the original (unfused) model instead")
    return nn.Module.train(self, False)


# --- Checkpoints --------------------------------------------------------------------------------------------
class CheckpointMismatchError(ValueError):
    """A state dict whose keys or shapes do not match the model; the message lists examples of each."""


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` onto the CPU (``torch.load`` with ``weights_only=True``).

    Accepted layouts, as published checkpoints come in all of them: a plain state dict; a dict holding it
    under "state_dict" or "model" (e.g. Hara et al.'s 3D-ResNets); keys all prefixed "module." (saved from
    DataParallel / DistributedDataParallel), which is stripped. Anything else raises, naming the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist; nothing is downloaded here: see the "
                                "backbone's docstring for where to get the file, and pass its path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{what} file {path} could not be read by torch.load "
                         f"({type(exc).__name__}: {exc})") from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{what} file {path} does not hold a state dict (a mapping of names to tensors); "
                         f"found {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def empty_model(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` without initialising its weights: built on the meta device, then given uninitialised CPU
    memory. For a model whose every parameter :func:`load_checked` is about to overwrite: it saves the seconds
    that random initialisation of tens of millions of parameters costs. BN counters are zeroed (old
    checkpoints lack them); the models here hold no other state outside their state dict."""
    with torch.device("meta"):
        model = build()
    model = model.to_empty(device="cpu")
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.num_batches_tracked is not None:
            m.num_batches_tracked.zero_()
    return model


def load_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "state dict",
                 show: int = 5) -> nn.Module:
    """``model.load_state_dict(state_dict, strict=True)`` with an actionable error; returns ``model``.

    On a mismatch, raises :class:`CheckpointMismatchError` naming ``source`` (e.g. the file) and listing up to
    ``show`` missing, unexpected and misshaped keys, with the count of each.
    """
    expected = model.state_dict()
    # Files saved before PyTorch 0.4.1 lack BatchNorm's num_batches_tracked; load_state_dict fills those in
    # itself for a plain dict (no version metadata), so they are not reported as missing.
    missing = [k for k in expected if k not in state_dict and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                 for k, v in expected.items()
                 if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or misshaped:
        parts = [f"{source} does not match {type(model).__name__}"]
        for name, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
            if items:
                more = f", ... ({len(items) - show} more)" if len(items) > show else ""
                parts.append(f"{len(items)} {name} keys: {', '.join(items[:show])}{more}")
        raise CheckpointMismatchError("; ".join(parts))
    model.load_state_dict(dict(state_dict), strict=True)  # a plain dict: no version metadata (see above)
    return model

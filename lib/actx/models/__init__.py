"""Heads on backbone feature maps f (B, D, T, H, W) with a time mask (B, T): every forward returns a dict with
"logits" (B, C) and, where the method has them, the maps "S" (action / attention) and "C" (context), (B, T, H,
W). One package per method, each with its head, its objective builder and its parameters (``PARAMS``, with a line
on why for every value in ``WHY``); what several methods share lives in shared modules:

- :mod:`.avgpool`      :class:`AvgPoolHead`, the "I3D" baseline: global average pooling (ActX Table 1)
- :mod:`.attentional`  :class:`AttentionalPoolingHead`, Girdhar and Ramanan 2017
- :mod:`.acf`          :class:`ACFHead` and its objective, Wang and Hoai 2018
- :mod:`.actx`         :class:`ActXHead` (paper 000, Eq. 5-7), its fused kernels and objective (Eq. 1, 3, 4)
- :mod:`.eep`          :class:`EEP`, :class:`EEPHead`: Eigen Evolution Pooling (ActX Table 2)
- :mod:`.where_when`   :class:`WhereWhenHead`: spatial mask, temporal attention and a ConvLSTM (paper 003)
- :mod:`.soft_attention_lstm`  Sharma et al. 2015's soft-attention LSTM (003 Table 1, "Visual attention")
- :mod:`.posemask`     :class:`PoseMaskHead`: pose keypoints -> binary masks -> weighted pooling (PoseMask-I3D)
- :mod:`.kregion`      :class:`KRegionHead`: top-k proposals, ROI-align, averaged (k-Region-I3D)
- :mod:`.acrn`         ACRN (paper 002): Base-Model, Resize+Concat, Santoro et al., ACRN on key frames (detection)
- :mod:`.finetune3d`   the HACS-30 backbone: the inflated EfficientNet's top, fine-tuned (000 Table 3)
- :mod:`.pooling`      mask-aware pooling and uniform maps; :mod:`.classify` L_class and the classification objective;
  :mod:`.roi`          ROI-align (k-Region-I3D, ACRN)

ADDING_A_METHOD.md beside this file walks through adding one; actx.experiments.METHODS is the registry.
"""

from actx.models.acf import ACF_DIM, ACFHead, acf_objective
from actx.models.actx import (DENSE_THETA, MAP_KERNEL, ActXHead, actx_objective, pool, pool_per_step,
                              step_features)
from actx.models.attentional import AttentionalPoolingHead
from actx.models.avgpool import AvgPoolHead
from actx.models.classify import classification_loss, classification_objective
from actx.models.eep import EEP, EEP_K, EEP_LENGTH, EEPHead, resample
from actx.models.kregion import KRegionHead, region_weights
from actx.models.posemask import PoseMaskHead, keypoint_heatmaps, pose_masks
from actx.models.pooling import masked_average, spatial_average_sequence, uniform_maps
from actx.models.roi import roi_align
from actx.models import finetune3d, soft_attention_lstm, where_when  # noqa: E402 (packages, used by the registry)

__all__ = [
    "ACF_DIM", "ACFHead", "ActXHead", "AttentionalPoolingHead", "AvgPoolHead", "DENSE_THETA", "EEP",
    "EEPHead", "EEP_K", "EEP_LENGTH", "KRegionHead", "MAP_KERNEL", "PoseMaskHead", "keypoint_heatmaps",
    "pose_masks", "region_weights", "acf_objective", "actx_objective", "classification_loss",
    "classification_objective", "masked_average", "pool", "pool_per_step", "resample", "roi_align",
    "spatial_average_sequence", "step_features", "uniform_maps",
]

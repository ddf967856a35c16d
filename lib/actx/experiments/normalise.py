"""An optional fixed scale of the stored feature maps, the same for every method (a pipeline property).

The question it answers: do raw EfficientNet-Lite0 maps (non-negative, 1280 channels, ReLU6; mean voxel L2
norm 33, L1 norm 426 on the default benchmark) train the average-pooling baseline properly at the papers' Adam
lr = 0.01? Adam moves each weight by about lr per step, so a linear layer's output moves by up to lr x ||x||_1
per step, and the logits do saturate (|logit| up to 26). Measured on the default profile (RGB, seed 0, the
profile's 12-epoch schedule; a held-out quarter of the *training* split as validation, the test splits
unused):

    features (lr)              train loss  train top-1  val mAP  val top-1
    raw (0.01, the paper's)    0.012       1.00         0.781    0.667
    raw (0.001)                0.39        0.87         0.784    0.733
    raw (0.0001)               1.48        0.76         0.702    0.717
    voxel_norm (0.01)          0.88        0.75         0.774    0.750
    per-channel z-score (0.01) 0.004       1.00         0.759    0.650

Raw maps at the paper's schedule converge (training loss to 0.01) and generalise as well as any alternative,
so the pipeline uses them unchanged: NORMALISATION = None. The ``"voxel_norm"`` alternative (divide every map
by one constant, the training split's mean voxel L2 norm, so voxel vectors have norm about 1) is kept for
other backbones: a single positive constant changes no cosine (ActX Eq. 2-4 compare directions), keeps the
maps non-negative (theta(F) = relu(F + conv(F)) still starts as F) and keeps zero padding at zero; on these
maps it acts like a 33-fold lower learning rate for the classifier and underfits (training top-1 stays at the
scene bias, 0.75). A per-channel z-score would make maps negative, which ActX's theta and the ReLU semantics
of its losses do not expect.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

# None: the stored maps as they are (the measurement above); "voxel_norm": divide by the training split's mean
# voxel L2 norm. Changing it changes every run's recipe (runs made with the other value are refused, not
# reused).
NORMALISATION = None

# Training clips read to estimate the scale: evenly spaced over the split; a bound on the cost for large real
# data sets (the benchmark's default training split has 240 clips, all of which are read).
SCALE_CLIPS = 256


def normalisation_recipe() -> str | None:
    """What the runs' recipe records about the normalisation (its kind)."""
    return NORMALISATION


def voxel_norm_scale(store: Any, stream: str, ids: Sequence[str], max_clips: int = SCALE_CLIPS) -> float:
    """Mean L2 norm of the feature vectors of every voxel of the given clips' maps (float64 accumulation)."""
    if not ids:
        raise ValueError("voxel_norm_scale needs at least one training clip")
    pick = np.unique(np.linspace(0, len(ids) - 1, min(len(ids), max_clips)).round().astype(int))
    total, count = 0.0, 0
    for i in pick:
        f = np.asarray(store.load(ids[i], stream), dtype=np.float32)  # (D, T, h, w)
        norms = np.sqrt(np.square(f.reshape(f.shape[0], -1), dtype=np.float64).sum(0))  # (T*h*w,)
        total, count = total + float(norms.sum()), count + norms.size
    scale = total / count
    if not np.isfinite(scale) or scale <= 0:
        where = getattr(store, "root", store)
        raise ValueError(f"{where}: the {stream} maps of the training clips have mean voxel norm {scale}; "
                         "the features are empty or broken, re-extract them")
    return scale


class Scale:
    """f -> f / scale as float32 (maps are stored as float16)."""

    def __init__(self, scale: float):
        self.scale = float(scale)

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        return f.float() / self.scale

    def __repr__(self) -> str:
        return f"Scale({self.scale:.4g})"

    @property
    def key(self) -> str:
        """What the transform does, exactly (a WindowSamples pair key holds it: actx.models.actx.memo)."""
        return f"Scale({self.scale!r})"


def feature_transform(store: Any, stream: str, train_records: Sequence[Any]
                      ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The transform every run applies to ``stream`` maps (None when NORMALISATION is None)."""
    if NORMALISATION is None:
        return None
    if NORMALISATION == "voxel_norm":
        return Scale(voxel_norm_scale(store, stream, [r.id for r in train_records]))
    raise ValueError(f"unknown NORMALISATION {NORMALISATION!r}; use 'voxel_norm' or None")

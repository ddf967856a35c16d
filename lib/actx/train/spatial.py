"""Random spatial crops of feature maps for training: the VOC still-image setting (ActX 001 section 1: "we
extract random crop of size 8 x 8 on the feature map and train the network with the mini-batch size of 32. At
test time, the entire feature maps are fed into the network").

:class:`SpatialCrop` wraps a training set of sample dicts and cuts the same random window out of the sample's map
"f" and its conjugate's map "cf" (a still and its inpainted copy share their geometry); a map no larger than the
crop is kept whole. The window of sample ``index`` in epoch ``epoch`` comes from a generator seeded with
``(seed, epoch, index)``, like actx.train.TemporalCrop, so a resumed run cuts the same windows.
:func:`spatial_crop_fit` is the registry's ``fit`` for methods trained that way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

CROP = 8  # 001 section 1: "random crop of size 8 x 8 on the feature map"


class SpatialCrop(Dataset):
    """``dataset[i]`` with "f" (D, T, H, W) and "cf" cut to the same random (size x size) window."""

    def __init__(self, dataset: Any, size: int = CROP, seed: int = 0):
        if size < 1:
            raise ValueError(f"SpatialCrop size must be >= 1, got {size}")
        self.dataset, self.size, self.seed, self.epoch = dataset, int(size), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def window(self, i: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of sample i's crop in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        h, w = min(self.size, height), min(self.size, width)
        return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.dataset[i])
        height, width = item["f"].shape[-2:]
        top, left, h, w = self.window(i, height, width)
        for key in ("f", "cf"):
            if key in item:
                if tuple(item[key].shape[-2:]) != (height, width):
                    raise ValueError(f"SpatialCrop: sample {i}'s {key!r} is {tuple(item[key].shape[-2:])} in "
                                     f"space, its 'f' is {(height, width)}: the maps must share their geometry")
                item[key] = item[key][..., top:top + h, left:left + w]
        return item


def spatial_crop_fit(head, objective, train_set, settings, out, device="cpu", eval_fn=None, progress=True,
                     time_keys=(), size: int = CROP):
    """actx.train.fit on random (size x size) crops of the training maps (the VOC setting, 001 section 1)."""
    from .loop import fit

    return fit(head, objective, SpatialCrop(train_set, size, settings.seed), settings, out, device=device,
               eval_fn=eval_fn, progress=progress, time_keys=time_keys)

"""Random spatial crops of the VOC still-image setting (actx.train.spatial, 001 section 1)."""

from __future__ import annotations

import pytest
import torch

from actx.train.spatial import SpatialCrop


class _Maps(torch.utils.data.Dataset):
    def __init__(self, h, w):
        self.h, self.w = h, w

    def __len__(self):
        return 3

    def __getitem__(self, i):
        f = torch.arange(2 * self.h * self.w, dtype=torch.float32).reshape(2, 1, self.h, self.w) + i
        return {"f": f, "cf": -f, "y": torch.zeros(4)}


def test_crop_cuts_the_same_window_of_sample_and_conjugate_and_depends_on_seed_epoch_index():
    ds = SpatialCrop(_Maps(10, 12), 8, seed=0)
    a = ds[1]
    assert a["f"].shape == (2, 1, 8, 8) and torch.equal(a["cf"], -a["f"])
    assert torch.equal(ds[1]["f"], a["f"])  # the same epoch: the same window
    windows = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        windows.add(ds.window(1, 10, 12))
    assert len(windows) > 1 and all(0 <= t <= 2 and 0 <= left <= 4 for t, left, _, _ in windows)


def test_a_map_smaller_than_the_crop_is_kept_whole():
    item = SpatialCrop(_Maps(4, 6), 8)[0]
    assert item["f"].shape == (2, 1, 4, 6)
    with pytest.raises(ValueError):
        SpatialCrop(_Maps(4, 6), 0)

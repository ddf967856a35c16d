"""From per-sample feature maps to padded mini-batches, and the random temporal crops of training.

A sample is a dict such as ``{"f": (D, T, H, W) array, "y": (C,) array, "cf": (D, T', H, W) array}`` (numpy or
torch). :func:`collate_maps` pads the maps along T with zeros and adds their masks; :class:`TemporalCrop` cuts
a random window of fixed length out of each map of a batch (ActX 000 section 4.1.2: "temporal cropping with a
fixed length is still necessary during training because we need to put feature maps into mini-batches").
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

# Feature-map keys and the mask key each one gets: maps are (D, T, H, W) per sample, padded along T (axis 1).
MAP_KEYS: Mapping[str, str] = {"f": "mask", "cf": "cmask"}

# What TemporalCrop cuts, per mask: {mask key: {tensor key: its time dimension in the batch}}. The action
# sample's window applies to "f" (B, D, T, H, W) and "mask" (B, T); the conjugate's own window to "cf" and
# "cmask". Add per-time-step annotations (e.g. pose masks (B, T, H, W) -> dim 1) to the first group to crop
# them alike.
CROP_GROUPS: Mapping[str, Mapping[str, int]] = {"mask": {"f": 2, "mask": 1}, "cmask": {"cf": 2, "cmask": 1}}


def as_tensor(value: Any) -> torch.Tensor:
    """A numpy array, number or tensor as a tensor (no copy when possible; dtype kept, e.g. float16 maps)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (int, float, bool)):
        return torch.tensor(value)
    array = np.asarray(value)
    if not array.flags.writeable:  # read-only memory maps: torch wants writable memory
        array = array.copy()
    return torch.as_tensor(array)


def pad_stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack tensors of equal rank, zero-padding each dimension up to the largest size (at the end)."""
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) == 1:
        return torch.stack(list(tensors))
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ValueError(f"cannot batch tensors of different ranks: shapes {sorted(shapes)}")
    size = [max(s[d] for s in shapes) for d in range(ranks.pop())]
    out = torch.zeros((len(tensors), *size), dtype=tensors[0].dtype)  # (B, *max shape)
    for i, t in enumerate(tensors):
        out[(i, *(slice(0, n) for n in t.shape))] = t
    return out


def collate_maps(samples: Sequence[Mapping[str, Any]],
                 map_keys: Mapping[str, str] = MAP_KEYS) -> dict[str, Any]:
    """Batch a list of sample dicts: pad the maps in ``map_keys`` along T and build their masks.

    Returns ``{"f": (B, D, T, H, W), "mask": (B, T) bool, "y": (B, C), ...}``. Maps keep their dtype (float16
    stores stay float16 until the training loop casts them on the device). Other arrays are stacked,
    zero-padded to the largest shape when their shapes differ; numbers become (B,) tensors; strings stay a
    list.
    """
    if not samples:
        raise ValueError("collate_maps got an empty list of samples")
    keys = list(samples[0].keys())
    for i, s in enumerate(samples):
        if set(s.keys()) != set(keys):
            raise ValueError(f"collate_maps: sample {i} has keys {sorted(s.keys())}, sample 0 has "
                             f"{sorted(keys)}; every sample of a data set must carry the same keys")
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if key in map_keys:
            maps = [as_tensor(v) for v in values]
            bad = [tuple(m.shape) for m in maps if m.dim() != 4]
            if bad:
                raise ValueError(f"collate_maps: {key!r} must be a (D, T, H, W) map per sample, got shapes "
                                 f"{bad}")
            batch[key] = pad_stack(maps)  # (B, D, T, H, W)
            if map_keys[key] not in keys:
                lengths = torch.tensor([m.shape[1] for m in maps])  # (B,)
                batch[map_keys[key]] = torch.arange(batch[key].shape[2])[None, :] < lengths[:, None]  # (B, T)
        elif all(isinstance(v, str) for v in values):
            batch[key] = list(values)
        else:
            batch[key] = pad_stack([as_tensor(v) for v in values])
    return batch


class IndexedDataset(Dataset):
    """Wraps a data set of sample dicts and adds ``"index"`` (its position): the key of crops and outputs."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.dataset[i]
        if not isinstance(sample, Mapping):
            raise TypeError(f"data set item {i} is a {type(sample).__name__}; actx.train expects a dict such "
                            "as {'f': (D, T, H, W) array, 'y': (C,) array}")
        return {**sample, "index": sample.get("index", i)}


class TemporalCrop:
    """A random window of ``length`` time steps per map and sample, for training (ActX 000 section 4.1.2).

    The window start of sample ``index`` in epoch ``epoch`` is drawn from a generator seeded with
    ``(seed, epoch, index, group)``: the crops depend on nothing else, so a resumed run, a run with more data
    loader workers and a run split over several processes cut exactly the same windows (no generator state to
    carry in checkpoints). A map whose real length (its mask's count) is below ``length`` is kept whole; the
    batch's time axis becomes ``min(length, T)``. The cut batch also tells each group's starts,
    ``"<mask key>_start"`` (B,) (0 where nothing was cut), so that a step knows which window it sees.
    """

    def __init__(self, length: int, seed: int = 0, groups: Mapping[str, Mapping[str, int]] = CROP_GROUPS):
        if length < 1:
            raise ValueError(f"TemporalCrop length must be >= 1 time steps, got {length}")
        self.length, self.seed, self.groups = int(length), int(seed), groups

    def starts(self, lengths: torch.Tensor, index: torch.Tensor, epoch: int, group: int = 0) -> torch.Tensor:
        """(B,) window starts, uniform in [0, max(length_i - self.length, 0)]."""
        out = []
        for n, i in zip(lengths.tolist(), index.tolist()):
            rng = np.random.default_rng([self.seed, int(epoch), int(i), group])
            out.append(int(rng.integers(0, max(n - self.length, 0) + 1)))
        return torch.tensor(out, dtype=torch.long)  # (B,)

    def __call__(self, batch: Mapping[str, Any], epoch: int) -> dict[str, Any]:
        """A copy of ``batch`` with every group's tensors cut to the window; needs ``batch["index"]``."""
        if "index" not in batch:
            raise KeyError("TemporalCrop needs batch['index'] (B,) to draw per-sample windows; wrap the data "
                           "set in actx.train.IndexedDataset")
        out = dict(batch)
        for g, (mask_key, members) in enumerate(self.groups.items()):
            if mask_key not in batch:
                continue
            mask = batch[mask_key]  # (B, T) bool
            span = min(self.length, mask.shape[1])
            if span == mask.shape[1]:  # nothing to cut: the whole batch fits in the window
                out[f"{mask_key}_start"] = torch.zeros(mask.shape[0], dtype=torch.long)
                continue
            starts = self.starts(mask.sum(1), torch.as_tensor(batch["index"]), epoch, g)  # (B,)
            out[f"{mask_key}_start"] = starts  # where each sample's window begins in the uncut maps
            for key, dim in members.items():
                if key not in batch:
                    continue
                x = batch[key]
                if x.shape[dim] != mask.shape[1]:
                    raise ValueError(f"TemporalCrop: {key!r} has {x.shape[dim]} steps on dim {dim}, its mask "
                                     f"{mask_key!r} has {mask.shape[1]}")
                out[key] = torch.stack([x[b].narrow(dim - 1, s, span) for b, s in enumerate(starts.tolist())])
        return out

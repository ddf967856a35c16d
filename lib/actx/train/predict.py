"""Test-time inference: whole feature maps, no crop (ActX 000 section 4.1.2), outputs in data-set order."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import precision
from .batching import IndexedDataset, collate_maps, pad_stack
from .loop import to_device

# Batch entries passed through to the result next to the head's outputs (labels for metrics, masks for maps).
PASS_THROUGH = ("y", "mask", "index")


@torch.no_grad()
def predict(model: nn.Module, dataset: Any, device: str | torch.device = "cpu", batch_size: int = 8,
            amp: str = "off", num_workers: int = 0, progress: bool = False, inputs: tuple[str, ...] = ()
            ) -> dict[str, np.ndarray]:
    """Run ``model(f, mask, **inputs)`` over ``dataset`` in order and gather every per-sample output as numpy
    arrays (``inputs``: names of extra sample keys the head takes, e.g. "actor_boxes").

    Returns ``{"logits": (N, C), <each other tensor the head returns with a batch axis, e.g. "S": (N, T, H,
    W)>, "y": (N, C) when the samples have labels, "mask": (N, T), "index": (N,)}``, all float32 except mask
    (bool) and index (int64). Maps of different lengths are zero-padded to the longest; ``mask`` tells the
    real steps. The model is put in eval mode and returned to its former mode afterwards.
    """
    device = torch.device(device)
    amp_dtype = precision.autocast_dtype(amp, device)
    loader = DataLoader(IndexedDataset(dataset), batch_size=batch_size, shuffle=False,
                        collate_fn=collate_maps, num_workers=num_workers)
    was_training = model.training
    model.eval()
    gathered: dict[str, list[torch.Tensor]] = {}
    try:
        for batch in tqdm(loader, desc="predict", unit="batch", disable=not progress):
            batch = to_device(batch, device)
            with precision.autocast(device, amp_dtype):
                out = model(batch["f"], batch["mask"], **{k: batch[k] for k in inputs})
            if "logits" not in out:
                raise KeyError(f"{type(model).__name__}.forward returned {sorted(out)} without 'logits'")
            n = batch["f"].shape[0]
            for key, value in {**out, **{k: batch[k] for k in PASS_THROUGH if k in batch}}.items():
                if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n:
                    value = value.detach().cpu()
                    gathered.setdefault(key, []).append(value.float() if value.is_floating_point() else value)
    finally:
        model.train(was_training)
    return {key: _concat(parts).numpy() for key, parts in gathered.items()}


def _concat(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate batches along axis 0, zero-padding the other axes to the largest size."""
    rows = [row for part in parts for row in part]
    return pad_stack(rows)

"""Checkpoints: atomic writes, loading with a clear error, and the compatibility check before resuming.

``last.pt`` (written after every epoch) holds everything a resumed run needs to continue bit-identically:
model, optimiser, learning-rate schedule and gradient-scaler states, the settings, the epoch count and the
metrics so far. Random state is not stored because the loop re-derives it at every epoch start from (seed,
epoch, rank): shuffling (DistributedSampler: seed + epoch), crops (:class:`actx.train.TemporalCrop`) and
python / numpy / torch generators (dropout) are functions of the epoch alone. ``final.pt`` holds the finished
model and its metrics.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from actx.files import atomic_write

FORMAT = 1  # bump when the checkpoint layout changes


class CheckpointMismatch(ValueError):
    """A checkpoint in the output folder belongs to another run (other settings or another model)."""


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary name in the same folder, then os.replace: a reader never sees half a file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by the loop (tensors and plain containers only: weights_only=True)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"{path}: cannot read this checkpoint ({type(exc).__name__}: {exc}); delete it to "
                           "start the run afresh") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointMismatch(f"{path}: not an actx.train checkpoint of format {FORMAT}; delete it or "
                                 "choose another output folder")
    return ckpt


def model_signature(model: torch.nn.Module) -> dict[str, list[int]]:
    """Parameter and buffer names with their shapes: what must match to load a state dict."""
    return {name: list(t.shape) for name, t in model.state_dict().items()}


def identity(settings_dict: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """What a checkpoint must share with the current run to resume it: result-relevant settings, the model."""
    return {"settings": json.loads(json.dumps(settings_dict, sort_keys=True)),
            "model": model_signature(model)}


def dict_diffs(old: dict[str, Any], new: dict[str, Any], was: str) -> list[str]:
    """'key: <was> old, now new' for every key whose value differs (a missing key counts as None)."""
    return [f"{k}: {was} {old.get(k)!r}, now {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]


def check_compatible(ckpt: dict[str, Any], ident: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointMismatch` naming the differing settings or tensors."""
    old = ckpt["identity"]
    diffs = dict_diffs(old["settings"], ident["settings"], "checkpoint")
    if old["model"] != ident["model"]:
        names = sorted(set(old["model"]) ^ set(ident["model"]))
        shared = set(old["model"]) & set(ident["model"])
        names += sorted(k for k in shared if old["model"][k] != ident["model"][k])
        diffs.append(f"model tensors differ: {names[:5]}{' ...' if len(names) > 5 else ''}")
    if diffs:
        raise CheckpointMismatch(f"{path} belongs to another run ({'; '.join(diffs)}). Use another output "
                                 "folder, or delete the folder to retrain with the new settings")

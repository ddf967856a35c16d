"""One training loop for every head: :func:`fit`.

Adam (or SGD) with a step schedule, weight decay, the joint loss of ActX Eq. 1, temporal crops, a checkpoint
after every epoch, exact resumption, divergence detection, CUDA mixed precision, torchrun data parallel, a
progress bar and a CSV of metrics. The head and the method's loss come in as two arguments:

- ``model``: an nn.Module; a head's ``forward(f, mask)`` returns a dict with at least ``"logits"``.
- ``objective(model, batch) -> dict[str, Tensor]``: ``"loss"`` (the scalar total) and named scalar components
  (``"class"``, ``"sim"``, ``"diff"``, ...). It may run the model several times (action and conjugate
  samples).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from actx import files
from actx import runtime
from actx.runtime import reuse_freed_memory

from . import checkpoint, precision
from .batching import CROP_GROUPS, IndexedDataset, TemporalCrop, collate_maps
from .settings import TrainSettings

Objective = Callable[[nn.Module, dict[str, Any]], dict[str, torch.Tensor]]
EvalFn = Callable[[nn.Module, int], Mapping[str, float]]
Callback = Callable[[int, dict[str, Any]], None]

LAST, FINAL, METRICS = "last.pt", "final.pt", "metrics.csv"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch, the step and the checkpoint kept."""

    def __init__(self, epoch: int, step: int, value: float, kept: Path | None):
        where = (f"the last good checkpoint {kept} (epoch {epoch - 1}) is kept" if kept is not None
                 else "no epoch had finished, so there is no checkpoint")
        super().__init__(f"training diverged: loss = {value} at epoch {epoch}, step {step}; {where}. Lower "
                         "the learning rate, set grad_clip, or check the features for NaN/inf; then rerun")
        self.epoch, self.step, self.value, self.kept = epoch, step, value, kept


@dataclass
class History:
    """The metrics of a run, one row per epoch (epoch, lr, loss and its components, eval metrics, seconds)."""

    rows: list[dict[str, Any]]
    out_dir: Path
    resumed_from: int = 0  # epochs already done when this call started (0: a fresh run)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> list[str]:
        return csv_columns(self.rows)

    @property
    def last(self) -> dict[str, Any]:
        return self.rows[-1]

    def frame(self):
        """The rows as a pandas DataFrame (columns in CSV order)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


def joint_loss(parts: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None) -> torch.Tensor:
    """ActX Eq. 1 with named weights: sum_k w_k * parts[k]; ``weights=None``: the objective's own "loss"."""
    if weights is None:
        if "loss" not in parts:
            raise KeyError(f"the objective returned {sorted(parts)} without a 'loss' entry; return the "
                           "scalar total as 'loss', or set TrainSettings.loss_weights to combine named parts")
        return parts["loss"]
    missing = sorted(set(weights) - set(parts))
    if missing:
        raise KeyError(f"loss_weights names {missing}, but the objective returned only {sorted(parts)}")
    return sum(w * parts[k] for k, w in weights.items())


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed python, numpy and torch from (seed, epoch, rank): an epoch's randomness never depends on the past
    (dropout, data-set transforms and DataLoader worker seeds included)."""
    state = np.random.SeedSequence([seed, epoch, rank]).generate_state(2)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors to ``device``; floating tensors (float16 feature stores, float64 labels) become float32."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if value.is_floating_point() and value.dtype != torch.float32:
                value = value.float()
        out[key] = value
    return out


class _ObjectiveModule(nn.Module):
    """The objective as one module, so DistributedDataParallel sees one forward per backward however many
    times the objective runs the head (action and conjugate samples) and whichever submodules it touches."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.objective(self.model, batch)


def make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    """Adam (ActX supplement 2.2, 2.3) or SGD with momentum (2.4), with L2 weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def csv_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Column order: epoch and lr first, then loss components and eval metrics as first seen, seconds last."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return ["epoch", "lr"] + [c for c in columns if c not in ("epoch", "lr", "seconds")] + ["seconds"]


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """All rows to ``path``, atomically (actx.files.write_csv)."""
    files.write_csv(path, rows, csv_columns(rows))


def _finished_run(out_dir: Path, ident: dict, settings: TrainSettings, model: nn.Module) -> History | None:
    """Load-or-compute: a complete run of the same settings in ``out_dir`` -> its History (weights loaded)."""
    path = out_dir / FINAL
    if not path.exists():
        return None
    ckpt = checkpoint.load(path)
    checkpoint.check_compatible(ckpt, ident, path)
    if ckpt["epoch"] < settings.epochs:
        return None  # more epochs asked for: continue from last.pt
    if ckpt["epoch"] > settings.epochs:
        raise checkpoint.CheckpointMismatch(f"{path} holds a finished run of {ckpt['epoch']} epochs, more "
                                            f"than the {settings.epochs} asked for; use another folder")
    model.load_state_dict(ckpt["model"])
    return History(rows=ckpt["history"], out_dir=out_dir, resumed_from=ckpt["epoch"])


def fit(model: nn.Module, objective: Objective, train_set: Any, settings: TrainSettings,
        out_dir: str | os.PathLike, device: str | torch.device = "cpu", eval_fn: EvalFn | None = None,
        progress: bool = True, callback: Callback | None = None, time_keys: tuple[str, ...] = ()) -> History:
    """Train ``model`` on ``train_set`` with ``objective``; resume from ``out_dir/last.pt`` when it is there.

    train_set  any torch Dataset of sample dicts ({"f": (D, T, H, W), "y": (C,), optionally "cf", ...})
    settings   schedule and options (:class:`TrainSettings`)
    out_dir    gets last.pt after every epoch, metrics.csv, and final.pt at the end. A folder holding a
               finished run of the same settings returns at once with the weights loaded (load-or-compute); a
               folder from other settings or another model raises :class:`checkpoint.CheckpointMismatch`
    device     "cpu", "cuda" (under torchrun: cuda:LOCAL_RANK), ...
    eval_fn    ``eval_fn(model, epoch) -> {name: float}``, run on rank 0 every ``settings.eval_every`` epochs
               and after the last one; its values go to the CSV (e.g. test mAP via :func:`actx.train.predict`)
    callback   ``callback(epoch, row)`` on every rank after each epoch's checkpoint (an exception stops
               training; the run resumes from that checkpoint)
    time_keys  further sample keys of per-time-step inputs, (T, ...) per sample over the steps of "f" (actor
               boxes, keypoints): the temporal crop cuts them with "f"

    Raises :class:`TrainingDiverged` on a non-finite loss; the last good last.pt stays. An epoch cut short is
    redone from its start on resumption; a resumed run's weights are bit-identical to an uninterrupted run's
    (same device and library versions). The initial weights are the caller's: seed before building the head.
    """
    out_dir = Path(out_dir)
    reuse_freed_memory()  # no page faults on every step's tensors (actx.runtime.MMAP_THRESHOLD)
    ctx = runtime.init(device)
    model.to(ctx.device)
    ident = checkpoint.identity(settings.result_dict(), model)
    done = _finished_run(out_dir, ident, settings, model)
    if done is not None:
        return done
    if settings.batch_size % ctx.world_size:
        raise ValueError(f"batch_size {settings.batch_size} (the global batch) must be divisible by the "
                         f"{ctx.world_size} processes")

    amp_dtype = precision.autocast_dtype(settings.amp, ctx.device)
    optimizer = make_optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(settings.milestones), settings.gamma)
    scaler = precision.grad_scaler(ctx.device, amp_dtype)
    start, rows = 0, []
    last_path = out_dir / LAST
    if last_path.exists():
        ckpt = checkpoint.load(last_path)
        checkpoint.check_compatible(ckpt, ident, last_path)
        if ckpt["epoch"] > settings.epochs:
            raise checkpoint.CheckpointMismatch(f"{last_path} is at epoch {ckpt['epoch']}, beyond the "
                                                f"{settings.epochs} asked for; use another output folder")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start, rows = ckpt["epoch"], list(ckpt["history"])

    step_module = _ObjectiveModule(model, objective)
    if ctx.distributed:
        # DDP copies rank 0's weights to every rank here. find_unused_parameters: ablations leave branches of
        # a head unused (e.g. ActX without S_att), and DDP would otherwise wait for their gradients.
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            find_unused_parameters=True)
    data = IndexedDataset(train_set)
    if len(data) == 0:
        raise ValueError("the training set is empty")
    # DistributedSampler also in one process: the permutation of epoch e is randperm(seed + e), the same
    # whatever the number of processes, and each rank takes every world_size-th index of it.
    sampler = DistributedSampler(data, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=settings.seed)
    loader = DataLoader(data, batch_size=settings.batch_size // ctx.world_size, sampler=sampler,
                        collate_fn=collate_maps, num_workers=settings.num_workers,
                        pin_memory=ctx.device.type == "cuda")
    groups = {**CROP_GROUPS, "mask": {**CROP_GROUPS["mask"], **{k: 1 for k in time_keys}}}
    crop = TemporalCrop(settings.crop, seed=settings.seed, groups=groups) if settings.crop else None
    params = [p for p in model.parameters() if p.requires_grad]

    bar = tqdm(total=settings.epochs * len(loader), initial=start * len(loader), unit="step",
               desc=f"train {out_dir.name}", disable=not (progress and ctx.is_main), dynamic_ncols=True)
    try:
        for epoch in range(start + 1, settings.epochs + 1):
            t0 = time.perf_counter()
            seed_epoch(settings.seed, epoch, ctx.rank)
            sampler.set_epoch(epoch)
            if hasattr(train_set, "set_epoch"):  # data sets that crop on reading (actx.features)
                train_set.set_epoch(epoch)
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            sums: dict[str, torch.Tensor] = {}
            count = 0
            for step, batch in enumerate(loader, 1):
                if crop is not None:
                    batch = crop(batch, epoch)
                batch = to_device(batch, ctx.device)
                with precision.autocast(ctx.device, amp_dtype):
                    parts = step_module(batch)
                loss = joint_loss(parts, settings.loss_weights)
                value = float(loss.detach())  # the step's one wait for the device
                if ctx.any_true(not math.isfinite(value)):
                    raise TrainingDiverged(epoch, step, value, last_path if last_path.exists() else None)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if settings.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, settings.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                n = len(batch["index"])
                logged = {"loss": loss, **{k: v for k, v in parts.items()
                                           if k != "loss" and isinstance(v, torch.Tensor) and v.dim() == 0}}
                for k, v in logged.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * n
                count += n
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{value:.4f}", refresh=False)
            scheduler.step()

            keys = ["loss"] + sorted(k for k in sums if k != "loss")
            n_seen = torch.tensor(float(count), device=ctx.device)
            totals = ctx.sum(torch.stack([sums[k] for k in keys] + [n_seen]))  # (K + 1,) summed over ranks
            row: dict[str, Any] = {"epoch": epoch, "lr": lr}
            row.update({k: float(totals[i] / totals[-1]) for i, k in enumerate(keys)})
            if eval_fn is not None and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
                metrics = dict(eval_fn(model, epoch)) if ctx.is_main else None
                row.update({k: float(v) for k, v in ctx.broadcast(metrics).items()})
            row["seconds"] = round(time.perf_counter() - t0, 3)
            rows.append(row)
            if ctx.is_main:
                out_dir.mkdir(parents=True, exist_ok=True)
                write_csv(rows, out_dir / METRICS)
                checkpoint.save_atomic({
                    "format": checkpoint.FORMAT, "epoch": epoch, "identity": ident, "history": rows,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}, last_path)
            ctx.barrier()
            if callback is not None:
                callback(epoch, row)
    finally:
        bar.close()

    if ctx.is_main:
        write_csv(rows, out_dir / METRICS)
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "epoch": settings.epochs, "identity": ident,
                                "history": rows, "model": model.state_dict()}, out_dir / FINAL)
    ctx.barrier()
    return History(rows=rows, out_dir=out_dir, resumed_from=start)


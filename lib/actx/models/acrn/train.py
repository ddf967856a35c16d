"""ACRN's own training loop and evaluation (detection does not fit the clip-classification loop).

:func:`fit` leaves what actx.train.fit leaves (``last.pt`` after every epoch, ``metrics.csv``, ``final.pt`` with
"model") and resumes exactly from ``last.pt``: the epoch's shuffle comes from (seed, epoch), the optimiser and
schedule states are restored. Schedule (002 section 4.1): a linear warm-up from lr / 100 to lr over the first
WARMUP_SHARE of the steps, then cosine decay to 0 (per step); SGD with momentum (the paper's asynchronous SGD on
one machine). Batch norm is frozen by the head.

:func:`evaluate` gives per-proposal predictions of one split; :func:`score` turns them into frame-AP.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from actx.train import checkpoint
from actx.train.loop import FINAL, LAST, METRICS, TrainingDiverged, make_optimizer, seed_epoch, to_device, write_csv

from .data import collate
from .heads import decode, encode

# Share of all steps spent warming up (002: 40K of 200K steps on J-HMDB = 0.2; we keep that share).
WARMUP_SHARE = 0.2
WARMUP_START = 0.01  # the warm-up starts at lr * this (002: 0.00001 -> 0.001)


def schedule(step: int, total: int) -> float:
    """The learning-rate factor at ``step`` of ``total``: linear warm-up, then cosine decay (002 section 4.1)."""
    warm = max(1, int(round(WARMUP_SHARE * total)))
    if step < warm:
        return WARMUP_START + (1.0 - WARMUP_START) * step / warm
    return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def detection_loss(out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], box_weight: float
                   ) -> dict[str, torch.Tensor]:
    """Sigmoid cross-entropy summed over classes and averaged over proposals (multi-label, background = all
    zero), plus ``box_weight`` x smooth-L1 of the offsets of proposals matched to a person."""
    labels = batch["labels"].float()
    cls = F.binary_cross_entropy_with_logits(out["logits"], labels, reduction="sum") / max(1, len(labels))
    matched = batch["matched"].bool()
    if bool(matched.any()):
        rois = batch["rois"][matched, 1:]
        box = F.smooth_l1_loss(out["deltas"][matched], encode(rois, batch["targets"][matched].float()))
    else:
        box = out["deltas"].sum() * 0.0
    return {"loss": cls + box_weight * box, "class": cls, "box": box}


def forward(head: nn.Module, batch: Mapping[str, Any], maps: bool = False) -> dict[str, torch.Tensor]:
    return head(batch["f16"], batch["rois"], batch.get("f8"), size=batch["size"], maps=maps)


def fit(head: nn.Module, objective: Callable, train_set, settings, out_dir, device: str = "cpu",
        eval_fn=None, progress: bool = True, time_keys=()) -> None:
    """Train ``head`` on ``train_set`` (a KeyFrameSet) with ``objective(head, batch)``; see the module doc.

    Runs with torch's deterministic algorithms (restored afterwards): ROI-align's backward accumulates into the
    map by index, which CPU threads otherwise sum in a varying order, and a resumed run would then not repeat an
    uninterrupted one bit for bit."""
    import torch.utils.deterministic as deterministic

    before, fill = torch.are_deterministic_algorithms_enabled(), deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    deterministic.fill_uninitialized_memory = False  # filling every new tensor cost a quarter of a step
    try:
        _fit(head, objective, train_set, settings, out_dir, device, eval_fn, progress)
    finally:
        torch.use_deterministic_algorithms(before)
        deterministic.fill_uninitialized_memory = fill


def _fit(head, objective, train_set, settings, out_dir, device, eval_fn, progress) -> None:
    out_dir = Path(out_dir)
    device = torch.device(device)
    head.to(device)
    ident = checkpoint.identity(settings.result_dict(), head)
    if (out_dir / FINAL).exists():
        ckpt = checkpoint.load(out_dir / FINAL)
        checkpoint.check_compatible(ckpt, ident, out_dir / FINAL)
        head.load_state_dict(ckpt["model"])
        return
    gen = torch.Generator()
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    optimizer = make_optimizer(head, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s, total))
    start, rows = 0, []
    if (out_dir / LAST).exists():
        ckpt = checkpoint.load(out_dir / LAST)
        checkpoint.check_compatible(ckpt, ident, out_dir / LAST)
        head.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start, rows = ckpt["epoch"], list(ckpt["history"])
    bar = tqdm(total=total, initial=start * steps_per_epoch, unit="step", desc=f"train {out_dir.parent.name}",
               disable=not progress)
    for epoch in range(start + 1, settings.epochs + 1):
        t0 = time.perf_counter()
        seed_epoch(settings.seed, epoch, 0)
        gen.manual_seed(settings.seed * 100003 + epoch)
        loader = DataLoader(train_set, batch_size=settings.batch_size, shuffle=True, generator=gen,
                            collate_fn=collate)
        head.train()
        lr = optimizer.param_groups[0]["lr"]
        sums: dict[str, float] = {}
        count = 0
        for step, batch in enumerate(loader, 1):
            batch = to_device(batch, device)
            parts = objective(head, batch)
            value = float(parts["loss"].detach())
            if not math.isfinite(value):
                raise TrainingDiverged(epoch, step, value, out_dir / LAST if (out_dir / LAST).exists() else None)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            scheduler.step()
            n = len(batch["index"])
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * n
            count += n
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{value:.3f}", refresh=False)
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, **{k: v / count for k, v in sums.items()}}
        if eval_fn is not None and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
            row.update({k: float(v) for k, v in eval_fn(head, epoch).items()})
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(rows, out_dir / METRICS)
        checkpoint.save_atomic({"format": checkpoint.FORMAT, "epoch": epoch, "identity": ident, "history": rows,
                                "model": head.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict()}, out_dir / LAST)
    bar.close()
    write_csv(rows, out_dir / METRICS)
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "epoch": settings.epochs, "identity": ident,
                            "history": rows, "model": head.state_dict()}, out_dir / FINAL)


@torch.no_grad()
def evaluate(head: nn.Module, dataset, device: str = "cpu", batch_size: int = 8) -> dict[str, np.ndarray]:
    """Per-proposal predictions of a KeyFrameSet: "probs" (K, C) sigmoid, "labels" (K, C) assigned labels,
    "ids" (K,) clip ids, "frame" (K,), "boxes" (K, 4) regressed boxes, "proposals" (K, 4), "scores" (K,) proposal
    scores; and the ground truth: "gt_ids", "gt_frame", "gt_labels" (G, C), "gt_boxes" (G, 4)."""
    head.to(device).eval()
    parts: dict[str, list] = {k: [] for k in ("probs", "labels", "ids", "frame", "boxes", "proposals", "scores")}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in loader:
        batch = to_device(batch, torch.device(device))
        out = forward(head, batch)
        rois = batch["rois"]
        keys = [dataset.keys[int(i)] for i in batch["index"]]
        which = rois[:, 0].long().cpu().numpy()
        parts["probs"].append(torch.sigmoid(out["logits"]).cpu().numpy())
        parts["labels"].append(batch["labels"].cpu().numpy())
        parts["ids"].append(np.array([keys[b].clip for b in which], dtype=str))
        parts["frame"].append(np.array([keys[b].frame for b in which], np.int64))
        parts["boxes"].append(decode(rois[:, 1:], out["deltas"]).cpu().numpy())
        parts["proposals"].append(rois[:, 1:].cpu().numpy())
        parts["scores"].append(batch["scores"].cpu().numpy())
    preds = {k: np.concatenate(v) for k, v in parts.items()}
    gt = [(k.clip, k.frame, lab, box) for k in dataset.keys for lab, box in zip(k.labels, k.boxes) if lab.any()]
    preds["gt_ids"] = np.array([g[0] for g in gt], dtype=str)
    preds["gt_frame"] = np.array([g[1] for g in gt], np.int64)
    preds["gt_labels"] = np.array([g[2] for g in gt], np.uint8).reshape(-1, len(dataset.classes))
    preds["gt_boxes"] = np.array([g[3] for g in gt], np.float32).reshape(-1, 4)
    return preds


def detections(preds: Mapping[str, np.ndarray], classes, min_score: float = 0.0) -> pd.DataFrame:
    """The det table of actx.metrics.frame_ap: one row per (proposal, class), score = sigmoid(logit) x the
    proposal's score (an actor-ness times an action probability, as two-stage detectors score)."""
    probs = preds["probs"] * preds["scores"][:, None]  # (K, C)
    k, c = np.nonzero(probs >= min_score)
    boxes = preds["boxes"][k]
    return pd.DataFrame({"video": preds["ids"][k], "frame": preds["frame"][k], "label": np.array(classes)[c],
                         "score": probs[k, c], "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2],
                         "y2": boxes[:, 3]})


def gt_table(preds: Mapping[str, np.ndarray], classes) -> pd.DataFrame:
    g, c = np.nonzero(preds["gt_labels"])
    boxes = preds["gt_boxes"][g]
    return pd.DataFrame({"video": preds["gt_ids"][g], "frame": preds["gt_frame"][g], "label": np.array(classes)[c],
                         "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3]})


def score(preds: Mapping[str, np.ndarray], classes) -> dict[str, float]:
    """Frame-AP (actx.metrics.frame_ap, IoU 0.5) of one split's predictions: "mAP" (fraction) over the classes
    with ground truth, and "AP/<class>" per class (NaN where a class has none)."""
    from actx.metrics import frame_ap

    out = frame_ap(detections(preds, classes), gt_table(preds, classes), classes=classes)
    return {"mAP": out["mAP"], **{f"AP/{c}": float(v) for c, v in out["per_class"].items()}}

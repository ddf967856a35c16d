"""The HACS-30 backbone, fine-tuned (ActX 000 section 4.2, Table 3 "Backbone"; 001 section 2.4).

The method trains the *top* of the inflated EfficientNet-Lite0 (actx.backbones.inflate: blocks [SPLIT, 16) and
the head conv) with a new K + 1-way classifier, on the cached outputs of its frozen bottom part (the run's feature
store holds those, stride 4 in time: ``FEATURES``). Its head is that top: ``forward(f, mask)`` maps the frozen
part's output to the fine-tuned (1280, T/8, H/32, W/32) map (``"fmap"``), averages it and classifies it; the
HACS chapter writes the fine-tuned maps of every clip into a store for the attention heads.

Schedule (001 section 2.4), scaled to the benchmark (``fit``): SGD with momentum 0.9, batch norm frozen, the
weighted cross entropy of :func:`weighted_cross_entropy` (0.01 for negatives, 1.0 for positives); first the last
layer alone ("last_layer": lr 1e-3 for 20 epochs), then the whole trainable network ("network": lr 1e-4 for 15
epochs). The learning rates are the paper's (LR_SCALE = 1); the epochs come from the profile
(actx.experiments.hacs30.SCHEDULE).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from actx.backbones.inflate import SPLIT, TIME_STRIDE, inflated_efficientnet_lite0
from actx.models.classify import classification_loss, head_inputs
from actx.models.pooling import uniform_maps

# The frozen part's output has time stride TIME_STRIDE / 2 (the stride-32 stage strides time once more).
FEATURES = {"time_stride": TIME_STRIDE // 2}
# The paper's schedule takes about 100x more SGD steps per epoch than ours (about 30,000 training clips in batches
# of 64 vs a few hundred in batches of 16), which argues for larger rates; but our pooled maps are large vectors
# (ReLU6 activations, L2 norm about 25), so one SGD step at lr 1e-3 already moves a logit by about
# lr x |x|^2 = 0.6, ten times that with momentum 0.9, and lr 1e-2 would make the classifier oscillate. We keep
# the paper's rates: scale 1.
LR_SCALE = 1.0
NEGATIVE_WEIGHT = 0.01  # 001 section 2.4: "weight 0.01 for negative clips and 1.0 for positive clips"
BACKGROUND = "background"  # the K + 1-th class: negatives (HACS-30's "negative background class")

PARAMS = {"negative_weight": NEGATIVE_WEIGHT, "last_layer_lr": 1e-3 * LR_SCALE, "last_layer_epochs": 20,
          "network_lr": 1e-4 * LR_SCALE, "network_epochs": 15, "split": SPLIT}
WHY = {
    "negative_weight": "paper (001 section 2.4): weighted cross entropy, 0.01 for negatives",
    "last_layer_lr": "paper's 1e-3 (001 section 2.4) x LR_SCALE (1: see its comment)",
    "last_layer_epochs": "paper: 20; the HACS chapter sets the profile's value (hacs30.SCHEDULE)",
    "network_lr": "paper's 1e-4 (001 section 2.4) x LR_SCALE",
    "network_epochs": "paper: 15; the HACS chapter sets the profile's value (hacs30.SCHEDULE)",
    "split": "open: blocks [0, 11) frozen and cached, the stride-32 stage and head fine-tuned (inflate.SPLIT)",
}


class FinetunedTop(nn.Module):
    """The trainable top of the inflated network and its K + 1-way classifier.

    forward(f (B, C_split, T, h, w) frozen-part output, mask (B, T)) -> {"logits" (B, K+1), "fmap" (B, 1280,
    T/2, h/2, w/2), "S", "C" uniform over f's voxels (the backbone has no attention)}. Every clip has the same
    length (HACS clips: 32 frames), so a padded step in ``mask`` is an error, not something to pool around.
    """

    def __init__(self, in_channels: int, num_classes: int, split: int = SPLIT):
        super().__init__()
        net = inflated_efficientnet_lite0(num_classes=num_classes, split=split)
        self.net = net
        expected = net._blocks[split].expand and net._blocks[split]._expand_conv.weight.shape[1]
        if expected and expected != in_channels:
            raise ValueError(f"the frozen part of split {split} gives {expected} channels, the maps have "
                             f"{in_channels}: the store was made with another split")
        # the frozen bottom is not part of this module's parameters: its outputs are the inputs
        net._conv_stem, net._bn0 = None, None
        net._blocks = nn.ModuleList([*([nn.Identity()] * split), *net._blocks[split:]])

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if mask is not None and not bool(mask.all()):
            raise ValueError("FinetunedTop: every clip must fill its map (HACS clips have one length); the batch "
                             "has padded time steps")
        fmap = self.net.forward_top(f)  # (B, 1280, T', h', w')
        return {"logits": self.net.classify(fmap), "fmap": fmap, **uniform_maps(f, mask)}

    def train(self, mode: bool = True) -> "FinetunedTop":
        super().train(mode)
        self.net.train(mode)  # batch norm stays in eval mode (InflatedEfficientNet.train)
        return self

    def classifier_parameters(self) -> list[nn.Parameter]:
        return list(self.net._fc.parameters())

    def network_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter: the top's convolutions (batch norm frozen) and the classifier."""
        return self.net.top_parameters() + self.classifier_parameters()


def build_head(in_channels: int, num_classes: int, params: Mapping[str, Any], base=None) -> FinetunedTop:
    head = FinetunedTop(in_channels, num_classes, int(params["split"]))
    head.params = dict(params)  # the schedule its own fit reads
    return head


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor, negative_weight: float = NEGATIVE_WEIGHT
                           ) -> torch.Tensor:
    """Cross entropy with per-sample weights (001 section 2.4): ``negative_weight`` for samples of the last class
    (the background, BACKGROUND), 1 for the others; the weighted mean sum_i w_i CE_i / sum_i w_i (PyTorch's
    convention for class weights). logits (B, K+1), y (B, K+1) one-hot. The attention heads of the HACS rows use
    the same loss (actx.models.classify.classification_loss with ``negative_weight``)."""
    return classification_loss(logits, y, False, float(negative_weight))


def weighted_objective(model: nn.Module, batch: dict, negative_weight: float = NEGATIVE_WEIGHT,
                       inputs: tuple[str, ...] = ()) -> dict:
    out = model(batch["f"], batch.get("mask"), **head_inputs(batch, inputs))
    cls = weighted_cross_entropy(out["logits"], batch["y"], negative_weight)
    return {"loss": cls, "class": cls}


def build_objective(params: Mapping[str, Any], multi_label: bool = False, inputs: tuple[str, ...] = ()):
    if multi_label:
        raise ValueError("the HACS-30 backbone is trained single-label (K actions + background)")
    return functools.partial(weighted_objective, negative_weight=float(params["negative_weight"]),
                             inputs=tuple(inputs))


def fit(head: FinetunedTop, objective, train_set, settings, out, device="cpu", eval_fn=None, progress=True,
        time_keys=()):
    """The two fine-tuning phases of 001 section 2.4, each in its own sub-folder of ``out`` (resumable): first
    "last_layer" (only the classifier trains, on the top's pooled output, which is fixed in this phase and so
    computed once), then "network" (every trainable parameter, with actx.train.fit). SGD with momentum 0.9, no
    decay within a phase; batch size, weight decay and seed from ``settings``. Leaves ``final.pt`` and
    ``metrics.csv`` (both phases, a "phase" column) in ``out``, as actx.train.fit does. The parameters come from
    ``head.params`` (:func:`build_head` keeps the run's recipe there)."""
    from actx.train import fit as train_fit
    from actx.train.checkpoint import FORMAT, save_atomic
    from actx.train.loop import FINAL, METRICS, write_csv

    p = {**PARAMS, **getattr(head, "params", {})}
    out = Path(out)
    s = dataclasses.replace(settings, optimizer="sgd", momentum=0.9, milestones=(), crop=None)
    rows = [{"phase": "last_layer", **r} for r in _last_layer(head, train_set, s, p, out / "last_layer", device,
                                                              eval_fn, progress)]
    head.requires_grad_(False)
    for q in head.network_parameters():
        q.requires_grad_(True)
    epochs = int(p["network_epochs"])
    s = dataclasses.replace(s, lr=float(p["network_lr"]), epochs=epochs, eval_every=epochs)
    history = train_fit(head, objective, train_set, s, out / "network", device=device, eval_fn=eval_fn,
                        progress=progress)
    rows += [{"phase": "network", **r} for r in history.rows]
    head.requires_grad_(False)
    write_csv(rows, out / METRICS)
    save_atomic({"format": FORMAT, "epoch": epochs, "model": head.state_dict(), "history": rows}, out / FINAL)
    return rows


def _last_layer(head: FinetunedTop, train_set, settings, p: Mapping[str, Any], out: Path, device, eval_fn,
                progress: bool) -> list[dict]:
    """Phase 1: the classifier alone, SGD on the (fixed) pooled fine-tuning maps of the training clips, with
    dropout as in the network's forward; load-or-compute in ``out`` (final.pt with the head and the rows)."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from actx.train import checkpoint, collate_maps
    from actx.train.loop import FINAL, METRICS, seed_epoch, write_csv

    path = Path(out) / FINAL
    if path.exists():
        ckpt = checkpoint.load(path)
        head.load_state_dict(ckpt["model"])
        return ckpt["history"]
    head.to(device).eval()
    pooled, labels = [], []
    with torch.no_grad():
        loader = DataLoader(train_set, batch_size=settings.batch_size, shuffle=False, collate_fn=collate_maps)
        for batch in tqdm(loader, desc="last layer: pooled maps", unit="batch", disable=not progress):
            pooled.append(head.net.forward_top(batch["f"].float().to(device)).mean(dim=(2, 3, 4)))  # (B, 1280)
            labels.append(batch["y"].float().to(device))
    x, y = torch.cat(pooled), torch.cat(labels)  # (N, 1280), (N, K+1)
    fc = head.net._fc
    head.requires_grad_(False)
    fc.requires_grad_(True)
    opt = torch.optim.SGD(fc.parameters(), lr=float(p["last_layer_lr"]), momentum=settings.momentum,
                          weight_decay=settings.weight_decay)
    rows = []
    head.train()
    for epoch in range(1, int(p["last_layer_epochs"]) + 1):
        t0 = time.perf_counter()
        seed_epoch(settings.seed, epoch, 0)
        order = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), settings.batch_size):
            idx = order[i:i + settings.batch_size]
            loss = weighted_cross_entropy(fc(head.net._dropout(x[idx])), y[idx], float(p["negative_weight"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if not math.isfinite(total):
            raise RuntimeError(f"{out}: the last-layer phase diverged at epoch {epoch} (loss {total}); lower "
                               "last_layer_lr")
        rows.append({"epoch": epoch, "lr": float(p["last_layer_lr"]), "loss": total / len(x),
                     "class": total / len(x), "seconds": round(time.perf_counter() - t0, 3)})
    head.eval()
    if eval_fn is not None:
        rows[-1].update({k: float(v) for k, v in eval_fn(head, len(rows)).items()})
    head.requires_grad_(False)
    Path(out).mkdir(parents=True, exist_ok=True)
    write_csv(rows, Path(out) / METRICS)
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "epoch": len(rows), "model": head.state_dict(),
                            "history": rows}, path)
    return rows

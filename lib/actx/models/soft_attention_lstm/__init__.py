"""Sharma, Kiros and Salakhutdinov 2015, "Action recognition using visual attention": the "Visual attention" row of
paper 003's Table 1. A soft spatial attention over the cells of each frame's map feeds an LSTM, one frame per step:

    l_t = softmax_k(e_tk),  x_t = sum_k l_tk X_t,k,  (h_t, c_t) = LSTM(x_t, (h_{t-1}, c_{t-1}))
    h_0, c_0 = MLPs of the mean feature over frames and cells;  logits = FC(mean_t h_t)
    loss = CE + lambda sum_k (1 - sum_t l_tk)^2      (their "doubly stochastic" attention penalty, lambda = 1)

Their energies depend on h_{t-1} alone (a linear map to the K = 7 x 7 locations of a fixed grid). Our grids vary
with the profile (2 x 3 on ci, 4 x 6 on default), so the energy is additive over the cell's feature too,
e_tk = v . tanh(W_h h_{t-1} + W_x X_t,k), as in the show-attend-tell model theirs derives from. They average the
per-step predictions; we classify the mean hidden state, as the ConvLSTM model does. The same n frames per clip
(actx.models.where_when.sample_steps), the same features and the same own training routine.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import torch
import torch.nn as nn

from actx.models.classify import classification_loss, head_inputs
from actx.models.where_when import EVAL_EVERY, FRAMES, fit, sample_steps, schedule

# Sharma et al. 2015, section 3: lambda = 1 for the attention penalty.
ATTENTION_PENALTY = 1.0

PARAMS: dict[str, Any] = {"frames": FRAMES, "hidden": 32, "in_dim": 32, "att_dim": 32,
                          "penalty": ATTENTION_PENALTY, "lr": 1e-3, "weight_decay": 1e-4, "epochs": 10,
                          "batch_size": 16}
WHY: dict[str, str] = {
    "frames": "as the ConvLSTM model (where_when.FRAMES); Sharma et al. use 30",
    "hidden": "Sharma et al. 512 (three layers); one layer of 32 named for the CPU profiles",
    "in_dim": "as the ConvLSTM model: a 1x1 projection to 32 channels first",
    "att_dim": "open: width of the additive attention's hidden layer, 32",
    "penalty": "Sharma et al.: lambda = 1 (ATTENTION_PENALTY)",
    "lr": "the ConvLSTM model's value, chosen on val (notebook 13); the same budget",
    "weight_decay": "as the ConvLSTM model",
    "epochs": "as the ConvLSTM model",
    "batch_size": "as the ConvLSTM model",
}
__all__ = ["SoftAttentionLSTM", "PARAMS", "WHY", "build_head", "build_objective", "fit", "EVAL_EVERY"]


class SoftAttentionLSTM(nn.Module):
    """``forward(f, mask=None)`` -> {"logits" (B, C), "S" (B, L, h, w) the attention at the sampled steps (0
    elsewhere), "att" (B, n, h w) the attention of each step, "steps" (B, n)}."""

    def __init__(self, in_channels: int, num_classes: int, frames: int = FRAMES, hidden: int = 32,
                 in_dim: int = 32, att_dim: int = 32):
        super().__init__()
        self.frames = int(frames)
        self.proj = nn.Conv2d(in_channels, in_dim, 1)
        self.init_h = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh())
        self.init_c = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh())
        self.att_h, self.att_x = nn.Linear(hidden, att_dim), nn.Linear(in_dim, att_dim)
        self.att_v = nn.Linear(att_dim, 1)
        self.lstm = nn.LSTMCell(in_dim, hidden)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b, _, steps, h, w = f.shape
        mask = torch.ones(b, steps, dtype=torch.bool, device=f.device) if mask is None else mask.bool()
        idx = sample_steps(mask, self.frames)  # (B, n)
        rows = torch.arange(b, device=f.device)[:, None]
        x = f.float()[rows, :, idx]  # (B, n, D, h, w)
        n = x.shape[1]
        x = self.proj(x.flatten(0, 1)).view(b, n, -1, h * w).transpose(2, 3)  # (B, n, K, d)
        mean = x.mean((1, 2))  # (B, d)
        hid, cell = self.init_h(mean), self.init_c(mean)
        keys = self.att_x(x)  # (B, n, K, a)
        hs, atts = [], []
        for t in range(n):
            e = self.att_v(torch.tanh(keys[:, t] + self.att_h(hid)[:, None])).squeeze(-1)  # (B, K)
            lt = torch.softmax(e, 1)
            hid, cell = self.lstm((lt[:, :, None] * x[:, t]).sum(1), (hid, cell))
            hs.append(hid)
            atts.append(lt)
        att = torch.stack(atts, 1)  # (B, n, K)
        s = f.new_zeros(b, steps, h * w, dtype=att.dtype)
        s[rows.expand_as(idx), idx] = att  # the attention at each sampled step
        return {"logits": self.classifier(torch.stack(hs, 1).mean(1)), "S": s.view(b, steps, h, w),
                "att": att, "steps": idx}


def build_head(in_channels: int, num_classes: int, params: Mapping[str, Any], base=None) -> SoftAttentionLSTM:
    head = SoftAttentionLSTM(in_channels, num_classes, params["frames"], params["hidden"], params["in_dim"],
                             params["att_dim"])
    head.schedule = schedule(params)
    return head


def attention_penalty(att: torch.Tensor) -> torch.Tensor:
    """Sharma et al.'s penalty sum_k (1 - sum_t l_tk)^2 (att (B, n, K)), batch mean."""
    return ((1 - att.sum(1)) ** 2).sum(1).mean()


def objective(model: nn.Module, batch: dict, multi_label: bool, inputs: tuple[str, ...], penalty: float) -> dict:
    out = model(batch["f"], batch.get("mask"), **head_inputs(batch, inputs))
    ce = classification_loss(out["logits"], batch["y"], multi_label)
    att = attention_penalty(out["att"])
    return {"loss": ce + penalty * att, "class": ce, "attention": att}


def build_objective(params: Mapping[str, Any], multi_label: bool, inputs: tuple[str, ...] = ()):
    return functools.partial(objective, multi_label=multi_label, inputs=tuple(inputs),
                             penalty=float(params["penalty"]))

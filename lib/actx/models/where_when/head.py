"""Paper 003's model on per-frame 2D maps: a spatial mask per frame, temporal attention over the frames and a
ConvLSTM (section 3, appendix B.2).

    X~_i = X_i * M_i                                       (Eq. 1)  M_i: three 3x3 convs, the last with a sigmoid
    e_ti = Phi_h(H_{t-1}) + Phi_x(X~_i),  w_ti = softmax_i (Eq. 2, 3)
    Y_t  = (1/n) sum_i w_ti X~_i                           (Eq. 4)  the ConvLSTM's input at step t
    C_0 = g_c(mean_i X_i),  H_0 = g_h(mean_i X_i)          (Eq. 5)  two-layer conv nets with batch norm
    logits = FC(mean_t H_t)                                (Eq. 6)

A note on Eq. 2: with Phi_h and Phi_x each giving one number, Phi_h(H_{t-1}) is the same for every frame i, and
softmax over i removes it: w_ti does not depend on t or on H. We implement the paper as written (so does the
authors' code, whose two energies are linear maps to one number each) and test the consequence.

The map is (B, D, L, h, w) over the L stored steps of a clip; ``frames`` of them (n) are sampled uniformly
(:func:`sample_steps`), the paper's T = n frames. The spatial mask is computed on every stored step, so the
runner's "S" covers the whole window (B, L, h, w); the regularisers use the sampled frames' masks.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from actx.models.pooling import masked_average

from .convlstm import ConvLSTMCell


def sample_steps(mask: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) indices of n steps spread uniformly over each row's real steps: the centre of each of n equal
    segments, floor((i + 1/2) L / n) for a clip of L real steps (steps repeat when L < n). mask (B, L) bool,
    real steps first (the padding of actx.train.collate_maps)."""
    if n < 1:
        raise ValueError(f"the number of sampled frames must be >= 1, got {n}")
    lengths = mask.sum(1).clamp_min(1).to(torch.float64)  # (B,)
    centres = (torch.arange(n, dtype=torch.float64, device=mask.device) + 0.5) / n  # (n,)
    return (centres[None] * lengths[:, None]).floor().long()  # (B, n)


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class WhereWhenHead(nn.Module):
    """``forward(f, mask=None, n_frames=None)`` -> {"logits" (B, C), "S" (B, L, h, w) the spatial mask on every
    step (1 where spatial attention is off, 0 at padding; in eval mode only: training computes the sampled
    frames' alone), "masks" (B, n, h, w) the sampled frames' masks,
    "w" (B, T, n) temporal attention, "steps" (B, n) the sampled steps}.

    in_channels  D of the maps; num_classes C
    frames       n = T, frames sampled per clip (``n_frames`` overrides it, e.g. every step of an untrimmed video)
    hidden       ConvLSTM hidden channels (paper: 512)
    mask_widths  channels of the mask net's two hidden convs (paper: 1024, 512)
    in_dim       a 1x1 conv from D to this width before everything (None: none, as in the paper)
    spatial      False: M = 1 ("w/o spatial attention")
    temporal     False: Y_t = X~_t, frame t at step t ("w/o temporal attention": a ConvLSTM over the frames)
    """

    def __init__(self, in_channels: int, num_classes: int, frames: int = 8, hidden: int = 32,
                 mask_widths: tuple[int, int] = (32, 16), in_dim: int | None = 32, spatial: bool = True,
                 temporal: bool = True, kernel: int = 3):
        super().__init__()
        self.frames, self.spatial, self.temporal = int(frames), bool(spatial), bool(temporal)
        d = in_dim or in_channels
        self.proj = nn.Conv2d(in_channels, d, 1) if in_dim else nn.Identity()
        w1, w2 = mask_widths
        self.mask_net = nn.Sequential(*_conv_bn(d, w1), *_conv_bn(w1, w2), nn.Conv2d(w2, 1, 3, padding=1),
                                      nn.Sigmoid()) if spatial else None
        self.phi_x = nn.Linear(d, 1)  # Phi_x: one energy per masked frame (on its spatial average)
        self.phi_h = nn.Linear(hidden, 1)  # Phi_h: one energy from H_{t-1} (cancels in softmax_i, see above)
        self.init_c = nn.Sequential(*_conv_bn(d, hidden), nn.Conv2d(hidden, hidden, 3, padding=1))
        self.init_h = nn.Sequential(*_conv_bn(d, hidden), nn.Conv2d(hidden, hidden, 3, padding=1))
        self.cell = ConvLSTMCell(d, hidden, kernel)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None, n_frames: int | None = None
                ) -> dict[str, torch.Tensor]:
        if f.dim() != 5:
            raise ValueError(f"f must be (B, D, L, h, w), got shape {tuple(f.shape)}")
        b, _, steps, h, w = f.shape
        mask = torch.ones(b, steps, dtype=torch.bool, device=f.device) if mask is None else mask.bool()
        n = int(n_frames or self.frames)
        idx = sample_steps(mask, n)  # (B, n)
        rows = torch.arange(b, device=f.device)[:, None]
        # training needs the sampled frames only; evaluation maps every stored step (the runner's "S")
        pick = idx if self.training else torch.arange(steps, device=f.device).expand(b, steps)  # (B, L')
        x = self.proj(f.float()[rows, :, pick].flatten(0, 1))  # (B L', d, h, w)
        m = self.mask_net(x) if self.mask_net is not None else x.new_ones(x.shape[0], 1, h, w)  # (B L', 1, h, w)
        x, m = x.view(b, pick.shape[1], -1, h, w), m.view(b, pick.shape[1], h, w)
        xs, ms = (x, m) if self.training else (x[rows, idx], m[rows, idx])  # (B, n, d, h, w), (B, n, h, w)
        xt = xs * ms[:, :, None]  # X~_i (Eq. 1)
        mean_x = xs.mean(1)  # (B, d, h, w): mean_i X_i for Eq. 5
        hid, cell = self.init_h(mean_x), self.init_c(mean_x)
        energy_x = self.phi_x(xt.mean((3, 4))).squeeze(-1)  # (B, n) Phi_x(X~_i)
        hs, ws = [], []
        for t in range(n):
            if self.temporal:
                e = energy_x + self.phi_h(hid.mean((2, 3)))  # (B, n) Eq. 2 (Phi_h broadcast over i)
                wt = torch.softmax(e, 1)  # (B, n) Eq. 3
                y = (wt[:, :, None, None, None] * xt).sum(1) / n  # (B, d, h, w) Eq. 4
            else:
                wt = F.one_hot(torch.full((b,), t, device=f.device), n).to(xt.dtype)  # frame t only
                y = xt[:, t]
            hid, cell = self.cell(y, (hid, cell))
            hs.append(hid)
            ws.append(wt)
        pooled = torch.stack(hs, 1).mean((1, 3, 4))  # (B, hidden): mean_t H_t (Eq. 6), then its spatial mean
        out = {"logits": self.classifier(pooled), "masks": ms, "w": torch.stack(ws, 1), "steps": idx}
        if not self.training:
            out["S"] = m * mask[:, :, None, None].to(m.dtype)  # (B, L, h, w)
        return out

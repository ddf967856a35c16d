"""The convolutional LSTM cell (Shi et al. 2015), as paper 003 section 3.3 uses it: every gate is a convolution of
the input and the previous hidden state, so states keep their spatial layout.

    [i, f, o, g] = conv([Y_t, H_{t-1}])        i, f, o = sigmoid, g = tanh
    C_t = f * C_{t-1} + i * g,   H_t = o * tanh(C_t)
"""

from __future__ import annotations

import torch
import torch.nn as nn

# Gate kernel size: 003 does not give it; 3 x 3 is Shi et al.'s smallest spatial kernel and keeps a 4 x 6 grid's
# neighbourhoods.
KERNEL = 3


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: ``cell(y, (h, c)) -> (h, c)``; y (B, D, H, W), h and c (B, hidden, H, W)."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = KERNEL):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd (same-size padding), got {kernel}")
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, y: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        if h.shape[1] != self.hidden or h.shape != c.shape or h.shape[2:] != y.shape[2:]:
            raise ValueError(f"state {tuple(h.shape)} / {tuple(c.shape)} does not fit input {tuple(y.shape)} "
                             f"and hidden size {self.hidden}")
        i, f, o, g = self.gates(torch.cat([y, h], 1)).chunk(4, 1)  # each (B, hidden, H, W)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

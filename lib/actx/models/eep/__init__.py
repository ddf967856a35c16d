"""Eigen Evolution Pooling (EEP; Wang, Tran and Hoai, ICCV 2017), the "EEP + I3D" and "EEP + ActX-I3D" rows of
ActX Table 2: "EEP uses a set of basis functions learned from data using PCA to encode the evolution of
features over time" (ActX 4.2).

A sequence of per-time-step feature vectors x_1 .. x_T (each D) is resampled to a fixed length L by linear
interpolation. Every feature dimension d then gives one evolution curve r_d in R^L; the basis functions are
the top-k eigenvectors u_1 .. u_k of the L x L second-moment matrix sum over training sequences and dimensions
of r_d r_d^T (uncentred PCA, so that u_1 comes out close to a constant, i.e. average pooling, and the next
ones encode how features rise and fall). A sequence is encoded as the k projections (1 / sqrt(L)) sum_t u_j(t)
x_t, each in R^D, concatenated: (B, k * D). The 1 / sqrt(L) makes the projection on a constant basis equal the
plain average.

:class:`EEP` is fitted, not learnt (its basis is a buffer, saved in the state dict). :class:`EEPHead` puts a
linear classifier on EEP features of either per-step spatial averages (on top of the average-pooling baseline)
or per-step F_s and F_c of a trained, frozen ActX head.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from actx import ops
from actx.models.actx.head import ActXHead, step_features
from actx.models.classify import classification_builder
from actx.models.pooling import spatial_average_sequence, uniform_maps

# Basis functions kept. 3 keeps the average-like first function and the two next "evolution" functions (rise,
# rise-and-fall); at D = 1024 it gives a 3072-d feature, small enough for a linear classifier on a few
# thousand clips.
EEP_K = 3

# Fixed length every sequence is resampled to before projecting: 16 steps, the temporal size of an I3D map of
# a 128-frame clip (ActX 4.1.2), so full-profile test clips are barely resampled.
EEP_LENGTH = 16

# The registry's parameters (actx.experiments.METHODS["eep_avgpool"], ["eep_actx"]): EEP's two open values.
PARAMS = {"k": EEP_K, "length": EEP_LENGTH}
WHY = {"k": "3 basis functions: the average-like first and two evolution functions (see EEP_K)",
       "length": "16 steps, the temporal size of an I3D map of a 128-frame clip (see EEP_LENGTH)"}


def _prefix_lengths(seq: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Number of real steps per sample, checking that the real steps come first (padding at the end)."""
    b, t = seq.shape[:2]
    if mask is None:
        return torch.full((b,), t, dtype=torch.long, device=seq.device)
    if mask.dtype != torch.bool or tuple(mask.shape) != (b, t):
        raise ValueError(f"mask must be a bool tensor of shape (B, T) = {(b, t)}, got {mask.dtype} "
                         f"{tuple(mask.shape)}")
    lengths = mask.sum(1)
    prefix = torch.arange(t, device=mask.device)[None, :] < lengths[:, None]
    if not bool((prefix == mask).all()):
        raise ValueError("EEP needs padding at the end of each sequence (mask True then False)")
    if not bool((lengths > 0).all()):
        raise ValueError("EEP: a sequence has no real time step")
    return lengths


def resample(seq: torch.Tensor, mask: torch.Tensor | None = None, length: int = EEP_LENGTH) -> torch.Tensor:
    """Linear interpolation of each sequence's real steps onto ``length`` evenly spaced points.

    seq (B, T, D), mask (B, T) with padding at the end -> (B, length, D). The first and last real steps are
    kept exactly; a one-step sequence becomes constant.
    """
    if seq.dim() != 3:
        raise ValueError(f"expected sequences (B, T, D), got shape {tuple(seq.shape)}")
    lengths = _prefix_lengths(seq, mask).to(seq.dtype)  # (B,)
    grid = torch.linspace(0.0, 1.0, length, dtype=seq.dtype, device=seq.device) if length > 1 else \
        torch.zeros(1, dtype=seq.dtype, device=seq.device)
    pos = grid[None, :] * (lengths[:, None] - 1)  # (B, L) fractional step index
    i0 = pos.floor().long()
    i1 = torch.minimum(i0 + 1, lengths[:, None].long() - 1)
    w = (pos - i0.to(seq.dtype))[..., None]  # (B, L, 1)
    d = seq.shape[2]
    x0 = seq.gather(1, i0[..., None].expand(-1, -1, d))  # (B, L, D)
    x1 = seq.gather(1, i1[..., None].expand(-1, -1, d))  # (B, L, D)
    return (1 - w) * x0 + w * x1  # (B, L, D)


class EEP(nn.Module):
    """Eigen Evolution Pooling with k basis functions over sequences resampled to ``length`` steps.

    fit(sequences, masks) -> self; forward / transform(sequences (B, T, D), masks (B, T)) -> (B, k * D), the
    k projections concatenated basis by basis. ``basis`` (k, length) and ``eigenvalues`` (k,) are buffers.
    """

    def __init__(self, k: int = EEP_K, length: int = EEP_LENGTH):
        super().__init__()
        if not 1 <= k <= length:
            raise ValueError(f"EEP needs 1 <= k <= length, got k={k}, length={length}")
        self.k, self.length = int(k), int(length)
        self.register_buffer("basis", torch.zeros(k, length))
        self.register_buffer("eigenvalues", torch.zeros(k))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def moments(self, sequences: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """sum over samples and dimensions of r r^T for one batch: (length, length), float64."""
        r = resample(sequences.detach().to(torch.float64), masks, self.length)  # (B, L, D)
        return torch.einsum("bsd,btd->st", r, r)  # (L, L)

    def fit(self, sequences: torch.Tensor | list[torch.Tensor], masks: torch.Tensor | None = None) -> "EEP":
        """Fit the basis on one batch (B, T, D) with masks (B, T), or on a list of (T_i, D) sequences."""
        if isinstance(sequences, (list, tuple)):
            return self.fit_batches(((s[None], None) for s in sequences), progress=False)
        return self.fit_batches([(sequences, masks)], progress=False)

    def fit_batches(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], progress: bool = True
                    ) -> "EEP":
        """Fit the basis on an iterable of (sequences (B, T, D), masks (B, T) or None) batches."""
        total, n = torch.zeros(self.length, self.length, dtype=torch.float64), 0
        for seq, mask in tqdm(batches, desc="EEP fit", disable=not progress, leave=False):
            total = total + self.moments(seq, mask).cpu()
            n += seq.shape[0]
        if n == 0:
            raise ValueError("EEP.fit got no sequences")
        vals, vecs = torch.linalg.eigh(total / n)  # ascending
        vals, vecs = vals.flip(0)[: self.k], vecs.flip(1)[:, : self.k].T  # (k,), (k, L) largest first
        # An eigenvector's sign is arbitrary: make each one's largest-magnitude entry positive
        # (deterministic).
        peak = vecs.abs().argmax(1, keepdim=True)
        vecs = vecs * vecs.gather(1, peak).sign()
        self.basis.copy_(vecs.to(self.basis.dtype))
        self.eigenvalues.copy_(vals.to(self.eigenvalues.dtype))
        self.fitted.fill_(True)
        return self

    def forward(self, sequences: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        if not bool(self.fitted):
            raise RuntimeError("EEP is not fitted: call fit(...) on the training set's sequences first")
        r = resample(sequences, masks, self.length)  # (B, L, D)
        coef = torch.einsum("kl,bld->bkd", self.basis.to(r.dtype), r) / math.sqrt(self.length)  # (B, k, D)
        return coef.flatten(1)  # (B, k * D)

    transform = forward


class EEPHead(nn.Module):
    """A linear classifier on EEP features (ActX Table 2).

    base=None: EEP over per-time-step spatial averages of the backbone map ("EEP + I3D"; sequence width D).
    base=a trained ActXHead: EEP over its per-time-step [F_s(t), F_c(t)] ("EEP + ActX"; width 2D); the head is
    frozen (its parameters get requires_grad=False) and its maps are returned as "S" and "C".
    Call :meth:`fit` on training batches before training the classifier.
    forward(f (B, D, T, H, W), mask (B, T)) -> {"logits" (B, C), "eep" (B, k * width), "S", "C"}.
    """

    def __init__(self, in_channels: int, num_classes: int, k: int = EEP_K, length: int = EEP_LENGTH,
                 base: ActXHead | None = None):
        super().__init__()
        if base is not None:
            if not isinstance(base, ActXHead):
                raise TypeError(f"base must be None (average pooling) or a trained ActXHead, got "
                                f"{type(base).__name__}")
            if base.in_channels != in_channels:
                raise ValueError(f"the base ActXHead takes {base.in_channels} channels, EEPHead got "
                                 f"{in_channels}")
            base.requires_grad_(False)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.base = base
        width = in_channels if base is None else 2 * in_channels
        self.eep = EEP(k, length)
        self.classifier = nn.Linear(k * width, num_classes)

    def _sequence(self, f: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
        mask = ops.time_mask(f, mask)
        if self.base is None:
            return spatial_average_sequence(f, mask), uniform_maps(f, mask)
        out = self.base(f, mask)
        return step_features(out), {"S": out["S"], "C": out["C"]}  # (B, T, 2D)

    def sequence(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The per-time-step sequence EEP encodes: (B, T, D) or (B, T, 2D)."""
        return self._sequence(f, mask)[0]

    @torch.no_grad()
    def fit(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], progress: bool = True
            ) -> "EEPHead":
        """Fit the EEP basis on training batches of (f (B, D, T, H, W), mask (B, T))."""
        self.eep.fit_batches(((self.sequence(f, m), m) for f, m in batches), progress=progress)
        return self

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        seq, maps = self._sequence(f, mask)
        feats = self.eep(seq, mask)  # (B, k * width)
        return {"logits": self.classifier(feats), "eep": feats, **maps}


def build_head(in_channels: int, num_classes: int, params: dict, base: ActXHead | None = None) -> EEPHead:
    """EEP on the baseline's per-step averages (base None) or on a trained ActX head's [F_s(t), F_c(t)]."""
    return EEPHead(in_channels, num_classes, k=int(params["k"]), length=int(params["length"]), base=base)


build_objective = classification_builder  # classification only (the basis is fitted, not learnt)

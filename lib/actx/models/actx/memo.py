"""The cosines of ActX Eq. 3-4 on backbone maps, computed once per window pair and then looked up.

With ``loss_features="backbone"`` (the default), Eq. 3-4 compare the action sample's and the conjugate's backbone
voxels, X = F(a) and Z = F(c): the per-voxel cosine cos(eta(x_i, X), eta(x_i, Z)) (Eq. 2) is a function of the two
cropped windows and gamma alone, and no gradient flows through it. A default-profile training set has about 450
distinct (action crop, conjugate crop) pairs, and every run draws 12 epochs x 192 of them: the batched matrix
products behind the cosines took 10 of an ActX run's 24 s (cProfile of a default RGB run), mostly recomputing what
an earlier epoch or an earlier run (another seed, another xi or loss weight of the same features) had computed.

A batch row is identified by its pair key (``WindowSamples`` adds ``"key"``: the store, stream, feature transform,
both clips and their windows, hashed) and the crop the training loop cut (``"mask_start"``, ``"cmask_start"`` from
``TemporalCrop``) with the real voxel counts. Rows without a key (-1) are always computed. Rows are kept, in the
order first computed, until ``MEMO_BYTES`` is spent (never evicted, like the window cache of WindowSamples).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from actx.losses import cross_video_cosine

# Bytes of memoised cosine rows per process: a default-profile stream's ~800 pairs take about 1 MB, so this holds
# every stream, conjugate kind and gamma of the course many times over.
MEMO_BYTES = 256 << 20


class CosineMemo:
    """Per-row memo of :func:`actx.losses.cross_video_cosine` on backbone maps (see the module docstring)."""

    def __init__(self, max_bytes: int = MEMO_BYTES):
        self.max_bytes, self.held = int(max_bytes), 0
        self.rows: dict[tuple, torch.Tensor] = {}
        self.hits = self.misses = 0

    def clear(self) -> None:
        self.rows.clear()
        self.held = self.hits = self.misses = 0

    def cosines(self, batch: Mapping[str, Any], x: torch.Tensor, z: torch.Tensor, gamma: float,
                x_mask: torch.Tensor, z_mask: torch.Tensor, chunk: int | None) -> torch.Tensor:
        """cross_video_cosine(x, z, gamma, x_mask, z_mask) (B, N), rows looked up where ``batch`` identifies them.

        x (B, N, D), z (B, M, D) backbone voxels; x_mask (B, N), z_mask (B, M) bool.
        """
        keys = self._row_keys(batch, x_mask, z_mask, gamma)
        if keys is None or x.requires_grad or z.requires_grad:
            return cross_video_cosine(x, z, gamma, x_mask, z_mask, chunk)
        out = torch.zeros(x.shape[:2], dtype=torch.float32, device=x.device)  # (B, N): 0 at padded voxels
        missing = [b for b, k in enumerate(keys) if k is None or k not in self.rows]
        for b, k in enumerate(keys):
            if k is not None and k in self.rows:
                out[b, x_mask[b]] = self.rows[k]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            idx = torch.tensor(missing, device=x.device)
            fresh = cross_video_cosine(x[idx], z[idx], gamma, x_mask[idx], z_mask[idx], chunk)  # (b, N)
            out[idx] = fresh.to(out.dtype)
            for row, b in zip(fresh, missing):
                k = keys[b]
                value = row[x_mask[b]].detach().float().clone()  # (n_b,) the real voxels only
                if k is not None and self.held + value.numel() * 4 <= self.max_bytes:
                    self.rows[k], self.held = value, self.held + value.numel() * 4
        return out.to(torch.promote_types(x.dtype, torch.float32))

    @staticmethod
    def _row_keys(batch: Mapping[str, Any], x_mask: torch.Tensor, z_mask: torch.Tensor, gamma: float
                  ) -> list[tuple | None] | None:
        """Per row (pair key, action crop start, real voxels, conjugate crop start, real voxels, gamma), None for a
        row without a pair key; None for all when the batch does not identify its rows."""
        if "key" not in batch:
            return None
        pair = batch["key"].tolist()
        zeros = [0] * len(pair)
        starts = batch["mask_start"].tolist() if "mask_start" in batch else zeros
        cstarts = batch["cmask_start"].tolist() if "cmask_start" in batch else zeros
        n, m = x_mask.sum(1).tolist(), z_mask.sum(1).tolist()
        return [None if p < 0 else (p, s, a, cs, c, float(gamma))
                for p, s, a, cs, c in zip(pair, starts, n, cstarts, m)]


MEMO = CosineMemo()  # the process's memo, shared by every ActX run it trains

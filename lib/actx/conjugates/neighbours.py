"""Nearest-neighbour conjugates (ActX section 4.2, HACS-30): each positive clip's top-k nearest negative clips.

"Given a positive action sample, we consider its top three nearest neighbors in the negative data pool as the
conjugate samples", with distances between backbone embeddings. We use cosine similarity of the clips' globally
averaged feature maps. The search is blocked over both queries and pool, keeping a running top-k, so memory is
``query_chunk x pool_chunk`` however many clips there are: tens of thousands of clips never need an N x N matrix.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..data import Record
from .pairs import make_pairs

TOP_K = 3  # ActX section 4.2: "top three nearest neighbors"


def nearest_neighbours(query: np.ndarray | torch.Tensor, pool: np.ndarray | torch.Tensor, k: int = TOP_K,
                       query_chunk: int = 1024, pool_chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine neighbours of each query row among the pool rows.

    query (N, D), pool (M, D) -> indices (N, k) int64 and similarities (N, k) float32, best first. Ties keep the
    lower pool index first. Holds at most one (query_chunk, pool_chunk + k) block at a time.
    """
    q = _unit(torch.as_tensor(np.asarray(query), dtype=torch.float32))  # (N, D)
    p = _unit(torch.as_tensor(np.asarray(pool), dtype=torch.float32))   # (M, D)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise ValueError(f"query {tuple(q.shape)} and pool {tuple(p.shape)} must be (N, D) and (M, D)")
    if not 0 < k <= p.shape[0]:
        raise ValueError(f"k={k} neighbours asked for from a pool of {p.shape[0]}")
    out_idx = torch.empty(q.shape[0], k, dtype=torch.int64)
    out_sim = torch.empty(q.shape[0], k, dtype=torch.float32)
    for i in range(0, q.shape[0], query_chunk):
        qi = q[i:i + query_chunk]                                            # (n, D)
        best_sim = torch.full((qi.shape[0], 0), -2.0)
        best_idx = torch.empty((qi.shape[0], 0), dtype=torch.int64)
        for j in range(0, p.shape[0], pool_chunk):
            sim = qi @ p[j:j + pool_chunk].T                                 # (n, m)
            idx = torch.arange(j, j + sim.shape[1]).expand_as(sim)
            cand_sim, cand_idx = torch.cat([best_sim, sim], 1), torch.cat([best_idx, idx], 1)
            # sort by (-similarity, index) so equal similarities keep the lower index: deterministic ties
            order = torch.argsort(cand_idx, dim=1, stable=True)
            cand_sim, cand_idx = cand_sim.gather(1, order), cand_idx.gather(1, order)
            top = torch.argsort(-cand_sim, dim=1, stable=True)[:, :k]
            best_sim, best_idx = cand_sim.gather(1, top), cand_idx.gather(1, top)
        out_idx[i:i + query_chunk], out_sim[i:i + query_chunk] = best_idx, best_sim
    return out_idx.numpy(), out_sim.numpy()


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def neighbour_conjugates(positives: Sequence[Record], negatives: Sequence[Record], pos_emb: np.ndarray,
                         neg_emb: np.ndarray, k: int = TOP_K, **chunks) -> pd.DataFrame:
    """Pairs each positive with its k nearest negatives *of the same split* (a conjugate never crosses splits).

    Embeddings are rows aligned with the record lists. Each window is the whole clip.
    """
    if len(positives) != len(pos_emb) or len(negatives) != len(neg_emb):
        raise ValueError("embeddings must have one row per record")
    rows = []
    for split in sorted({r.split for r in positives}):
        qi = [i for i, r in enumerate(positives) if r.split == split]
        pi = [j for j, r in enumerate(negatives) if r.split == split]
        if not pi:
            raise ValueError(f"no negative clips in split {split!r} to mine conjugates from")
        idx, sim = nearest_neighbours(pos_emb[qi], neg_emb[pi], min(k, len(pi)), **chunks)
        for a, row_idx, row_sim in zip(qi, idx, sim):
            sample = positives[a]
            for rank, (j, s) in enumerate(zip(row_idx, row_sim), 1):
                conj = negatives[pi[j]]
                rows.append(dict(sample_id=sample.id, sample_split=split, label=";".join(sample.labels),
                                 sample_start=0, sample_end=_frames(sample), conjugate_id=conj.id,
                                 conjugate_split=conj.split, conjugate_start=0, conjugate_end=_frames(conj),
                                 kind="neighbour", side=f"nn{rank}", action_overlap=0.0 if not conj.labels else 1.0,
                                 similarity=float(s), conjugate_path=""))
    return make_pairs(rows)


def _frames(record: Record) -> int:
    frames = int(record.extra.get("frames", 0))
    if frames <= 0:
        raise ValueError(f"record {record.id!r} has no extra['frames']")
    return frames

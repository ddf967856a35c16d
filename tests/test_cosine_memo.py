"""The memo of ActX's backbone cosines (actx.models.actx.memo): the same numbers, computed once per window pair."""

import torch

from actx.losses import cross_video_cosine
from actx.models.actx.memo import CosineMemo
from actx.train import TemporalCrop


def _batch(keys, starts, cstarts, n_steps=(2, 1, 2), m_steps=(1, 2, 2), cells=3, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, t, tc = len(keys), max(n_steps), max(m_steps)
    x = torch.randn(b, t * cells, d, generator=g)
    z = torch.randn(b, tc * cells, d, generator=g)
    xm = torch.tensor([[i < n * cells for i in range(t * cells)] for n in n_steps])  # real steps first
    zm = torch.tensor([[i < m * cells for i in range(tc * cells)] for m in m_steps])
    batch = {"key": torch.tensor(keys), "mask_start": torch.tensor(starts), "cmask_start": torch.tensor(cstarts)}
    return batch, x * xm[..., None], z * zm[..., None], xm, zm


def test_memo_gives_the_direct_cosines_and_computes_each_row_once():
    memo = CosineMemo()
    batch, x, z, xm, zm = _batch([11, 12, -1], [0, 1, 0], [0, 0, 1])
    direct = cross_video_cosine(x, z, 10.0, xm, zm)
    first = memo.cosines(batch, x, z, 10.0, xm, zm, None)
    torch.testing.assert_close(first, direct, rtol=1e-6, atol=1e-6)
    assert (memo.hits, memo.misses) == (0, 3) and len(memo.rows) == 2  # the keyless row is not kept
    again = memo.cosines(batch, x, z, 10.0, xm, zm, None)
    torch.testing.assert_close(again, direct, rtol=1e-6, atol=1e-6)
    assert (memo.hits, memo.misses) == (2, 4)  # the keyless row is computed every time
    assert (again[0, 2 * 3:] == 0).all() and (again[1, 1 * 3:] == 0).all()  # padded voxels stay 0


def test_another_crop_or_gamma_is_another_row():
    memo = CosineMemo()
    batch, x, z, xm, zm = _batch([11, 12, 13], [0, 1, 0], [0, 0, 1])
    memo.cosines(batch, x, z, 10.0, xm, zm, None)
    moved = {**batch, "mask_start": torch.tensor([1, 1, 0])}  # row 0's action crop starts elsewhere
    memo.cosines(moved, x, z, 10.0, xm, zm, None)
    assert (memo.hits, memo.misses) == (2, 4)
    out = memo.cosines(batch, x, z, 3.0, xm, zm, None)  # another gamma: all new, and its own numbers
    assert memo.misses == 7
    torch.testing.assert_close(out, cross_video_cosine(x, z, 3.0, xm, zm), rtol=1e-6, atol=1e-6)


def test_memo_steps_aside_without_keys_with_gradients_and_when_full():
    batch, x, z, xm, zm = _batch([11, 12, 13], [0, 0, 0], [0, 0, 0])
    memo = CosineMemo()
    memo.cosines({}, x, z, 10.0, xm, zm, None)  # a batch that does not identify its rows
    xg = x.clone().requires_grad_(True)
    out = memo.cosines(batch, xg, z, 10.0, xm, zm, None)  # theta features: gradients flow, nothing is kept
    assert out.requires_grad and not memo.rows and memo.hits == memo.misses == 0
    small = CosineMemo(max_bytes=4 * 7)  # room for one row of 6 voxels, not two
    small.cosines(batch, x, z, 10.0, xm, zm, None)
    assert len(small.rows) == 1 and small.held == 4 * 6


def test_temporal_crop_tells_where_each_window_starts():
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    batch = {"f": torch.arange(2 * 6.0).reshape(2, 1, 6, 1, 1), "mask": mask, "index": torch.tensor([0, 1]),
             "cf": torch.zeros(2, 1, 2, 1, 1), "cmask": torch.ones(2, 2, dtype=torch.bool)}
    out = TemporalCrop(3, seed=0)(batch, epoch=1)
    starts = out["mask_start"].tolist()
    assert starts[1] == 0 and 0 <= starts[0] <= 3  # a 3-step map is kept whole
    assert out["f"][0, 0, :, 0, 0].tolist() == [float(s) for s in range(starts[0], starts[0] + 3)]
    assert out["cmask_start"].tolist() == [0, 0]  # the 2-step conjugate maps were not cut

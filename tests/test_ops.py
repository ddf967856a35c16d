"""actx.ops: AttNorm, Percent, eta (ActX Eq. 2, 7) and the voxel helpers."""

import pytest
import torch

from actx import ops


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_attnorm_zero_mean_unit_std_per_sample():
    x = torch.randn(3, 4, 5, 6, generator=_gen()) * 7 + 3
    y = ops.attnorm(x, (1, 2, 3))
    assert torch.allclose(y.mean((1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((1, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)


def test_attnorm_constant_input_gives_zeros_and_finite_gradient():
    x = torch.full((2, 3, 4, 4), 5.0, requires_grad=True)
    y = ops.attnorm(x, (1, 2, 3))
    (y * torch.arange(y.numel()).view_as(y)).sum().backward()
    assert torch.equal(y.detach(), torch.zeros_like(y))
    assert torch.isfinite(x.grad).all()


def test_attnorm_ignores_padding_and_zeroes_it():
    x = torch.randn(1, 5, 3, 3, generator=_gen(1))
    mask = torch.tensor([True, True, True, False, False])[None, :, None, None]  # (1, T, 1, 1)
    garbage = x.clone()
    garbage[:, 3:] = float("nan")
    y = ops.attnorm(garbage, (1, 2, 3), mask)
    assert torch.allclose(y[:, :3], ops.attnorm(x[:, :3], (1, 2, 3)), atol=1e-6)
    assert torch.equal(y[:, 3:], torch.zeros_like(y[:, 3:]))


@pytest.mark.parametrize("rho", [0.0, 10.0, 30.0, 50.0, 77.0, 100.0])
def test_percent_leaves_rho_percent_positive(rho):
    x = torch.randn(4, 6, 7, 9, generator=_gen(2))  # 378 distinct values per sample
    y = ops.percent(x, rho, (1, 2, 3))
    n = 6 * 7 * 9
    assert ((y > 0).sum((1, 2, 3)) == round(rho / 100 * n)).all()
    assert torch.allclose(y - x, (y - x)[:, :1, :1, :1].expand_as(x))  # a pure shift per sample


def test_percent_respects_mask():
    x = torch.randn(2, 5, 4, 4, generator=_gen(3))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)[:, :, None, None]
    garbage = torch.where(mask, x, torch.tensor(1e6))
    y = ops.percent(garbage, 30.0, (1, 2, 3), mask)
    assert (y > 0).sum().item() == round(0.3 * 80) + round(0.3 * 32)
    assert torch.equal(y[1, 2:], torch.zeros(3, 4, 4))
    assert torch.allclose(y[1, :2], ops.percent(x[1:2, :2], 30.0, (1, 2, 3))[0])


def test_percent_rejects_bad_rho():
    with pytest.raises(ValueError, match="rho"):
        ops.percent(torch.zeros(1, 3), 120.0, 1)


def test_eta_shape_and_gamma_zero_is_masked_mean():
    x, z = torch.randn(2, 5, 3, generator=_gen(4)), torch.randn(2, 7, 3, generator=_gen(5))
    zm = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    out = ops.eta(x, z, 0.0, zm)
    assert out.shape == (2, 5, 3)
    assert torch.allclose(out[1], z[1, :4].mean(0).expand(5, 3), atol=1e-6)


def test_eta_large_gamma_returns_most_similar_voxel():
    x, z = torch.randn(1, 6, 8, generator=_gen(6)), torch.randn(1, 10, 8, generator=_gen(7))
    cos = torch.nn.functional.normalize(x, dim=-1) @ torch.nn.functional.normalize(z, dim=-1).transpose(1, 2)
    best = cos.argmax(-1)[0]  # (6,)
    assert torch.allclose(ops.eta(x, z, 1e4)[0], z[0, best], atol=1e-5)


def test_eta_padding_garbage_changes_nothing():
    x, z = torch.randn(1, 4, 3, generator=_gen(8)), torch.randn(1, 5, 3, generator=_gen(9))
    zp = torch.cat([z, torch.full((1, 3, 3), 1e30)], 1)
    zm = torch.tensor([[1] * 5 + [0] * 3], dtype=torch.bool)
    assert torch.allclose(ops.eta(x, zp, 10.0, zm), ops.eta(x, z, 10.0), atol=1e-6)


def test_eta_chunked_equals_unchunked_values_and_gradients():
    x = torch.randn(2, 37, 4, generator=_gen(10), requires_grad=True)
    z = torch.randn(2, 11, 4, generator=_gen(11), requires_grad=True)
    w = torch.randn(2, 37, 4, generator=_gen(12))
    ref = ops.eta(x, z, 5.0, chunk=None)
    gx, gz = torch.autograd.grad((ref * w).sum(), (x, z))
    out = ops.eta(x, z, 5.0, chunk=8)
    cx, cz = torch.autograd.grad((out * w).sum(), (x, z))
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(cx, gx, atol=1e-5) and torch.allclose(cz, gz, atol=1e-5)


def test_eta_rejects_empty_conjugate():
    with pytest.raises(ValueError, match="all False"):
        ops.eta(torch.randn(1, 2, 3), torch.randn(1, 2, 3), 1.0, torch.zeros(1, 2, dtype=torch.bool))


def test_voxel_helpers_match_order():
    f = torch.arange(2 * 3 * 2 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2, 2)  # (B, D, T, H, W)
    v = ops.to_voxels(f)
    assert v.shape == (2, 8, 3)
    assert torch.equal(v[1, 5], f[1, :, 1, 0, 1])  # voxel 5 = (t=1, h=0, w=1)
    m = ops.voxel_mask(torch.tensor([[True, False], [True, True]]), f.shape)
    assert m.tolist()[0] == [True] * 4 + [False] * 4 and m[1].all()


@pytest.mark.parametrize("m", [9, 15])
def test_eta_cosine_is_the_cosine_of_the_two_poolings_with_masks_chunks_and_gradients(m):
    # chunk None or >= max(N, M): the Gram-matrix path; 4: rows of x in chunks; 13 with M = 15: x in one
    # chunk, norms from its own dot products
    x = torch.randn(2, 13, 6, generator=_gen(20), dtype=torch.float64, requires_grad=True)
    z = torch.randn(2, m, 6, generator=_gen(21), dtype=torch.float64, requires_grad=True)
    xm = torch.tensor([[1] * 13, [1] * 10 + [0] * 3], dtype=torch.bool)
    zm = torch.tensor([[1] * m, [1] * 5 + [0] * (m - 5)], dtype=torch.bool)
    w = torch.rand(2, 13, generator=_gen(22), dtype=torch.float64)
    xr = torch.where(xm[..., None], x, 0.0)  # the reference: padded rows of X are zeros, never attended to
    own, other = ops.eta(xr, xr, 4.0, xm), ops.eta(xr, z, 4.0, zm)
    ref = torch.nn.functional.cosine_similarity(own, other, dim=-1) * xm
    gx, gz = torch.autograd.grad((ref * w).sum(), (x, z))
    for chunk in (None, 4, 13, 15):
        out = ops.eta_cosine(x, z, 4.0, xm, zm, chunk=chunk)
        cx, cz = torch.autograd.grad((out * w).sum(), (x, z))
        assert torch.allclose(out, ref, atol=1e-12)
        assert torch.allclose(cx, gx, atol=1e-10) and torch.allclose(cz, gz, atol=1e-10)
    assert bool((out[1, 10:] == 0).all())


def test_eta_cosine_gram_path_keeps_float32_precision_on_backbone_like_maps():
    # the Gram path forms quadratic forms instead of pooled vectors; on non-negative float32 maps (cosines near 1,
    # where rounding would show) it must agree with the pooled-vector path, a zero voxel included
    x = torch.randn(2, 24, 256, generator=_gen(25)).clamp(0, 6)
    z = torch.randn(2, 30, 256, generator=_gen(26)).clamp(0, 6)
    x[0, 3] = 0.0
    gram, rows = ops.eta_cosine(x, z, 10.0, chunk=None), ops.eta_cosine(x, z, 10.0, chunk=8)
    ref = ops.eta_cosine(x.double(), z.double(), 10.0, chunk=8)
    assert torch.allclose(gram.double(), ref, atol=2e-6) and torch.allclose(rows.double(), ref, atol=2e-6)
    assert bool(torch.isfinite(gram).all())


def test_row_cosine_matches_torch_including_zero_vectors():
    a, b = torch.randn(3, 5, 7, generator=_gen(23)), torch.randn(3, 5, 7, generator=_gen(24))
    a[0, 0] = 0.0
    ref = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert torch.allclose(ops.row_cosine(a, b), ref, atol=1e-6)
    assert ops.row_cosine(a, b)[0, 0] == 0.0


def test_eta_zero_vector_is_similar_to_nothing():
    x = torch.zeros(1, 1, 4)
    z = torch.tensor([[[1.0, 0, 0, 0], [0, 5.0, 0, 0]]])
    assert torch.allclose(ops.eta(x, z, 100.0), z.mean(1, keepdim=True))  # uniform weights, no NaN


@pytest.mark.parametrize("rho", [0.0, 12.5, 30.0, 50.0, 100.0])
def test_unmasked_fast_paths_equal_the_masked_rule(rho):
    x = torch.randn(3, 2, 5, 4, generator=_gen(25), dtype=torch.float64)
    garbage = torch.full((3, 2, 1, 4), 1e6, dtype=torch.float64)
    padded = torch.cat([x, garbage], 2)  # (3, 2, 6, 4): one padded time step
    mask = torch.ones(3, 1, 6, 1, dtype=torch.bool)
    mask[:, :, 5] = False
    for op in (lambda v, m: ops.attnorm(v, (1, 2, 3), m), lambda v, m: ops.percent(v, rho, (1, 2, 3), m)):
        fast = op(x, None)
        assert torch.allclose(fast, op(x, torch.ones(1, 1, 5, 1, dtype=torch.bool)), atol=1e-12)
        assert torch.allclose(fast, op(padded, mask)[:, :, :5], atol=1e-12)
    with pytest.raises(ValueError, match="broadcast"):
        ops.attnorm(x, 1, torch.ones(2, 2, dtype=torch.bool))

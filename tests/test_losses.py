"""actx.losses: ActX Eq. 3 and 4 against a literal per-voxel implementation, padding, chunking, limits."""

import math

import pytest
import torch

from actx import losses


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _reference(x, z, s, c, gamma, xi):
    """ActX Eq. 2-4 for one sample, written voxel by voxel with python loops."""
    def eta(xi_, rows):
        w = [math.exp(gamma * torch.nn.functional.cosine_similarity(xi_, r, dim=0).item()) for r in rows]
        return sum(wj * r for wj, r in zip(w, rows)) / sum(w)

    num_s = num_c = 0.0
    for i in range(len(x)):
        cos = torch.nn.functional.cosine_similarity(eta(x[i], x), eta(x[i], z), dim=0).item()
        num_s += s[i].item() * max(0.0, cos - xi)
        num_c += c[i].item() * (1.0 - cos)
    return num_s / s.sum().item(), num_c / c.sum().item()


def test_losses_match_literal_equations_and_average_the_batch():
    x, z = torch.randn(2, 6, 4, generator=_gen(1)).double(), torch.randn(2, 5, 4, generator=_gen(2)).double()
    s, c = torch.rand(2, 6, generator=_gen(3)).double(), torch.rand(2, 6, generator=_gen(4)).double()
    refs = [_reference(x[b], z[b], s[b], c[b], 3.0, 0.2) for b in range(2)]
    l_sim = losses.action_similarity_loss(x, z, s, 3.0, 0.2)
    l_diff = losses.context_difference_loss(x, z, c, 3.0)
    assert l_sim.item() == pytest.approx(sum(r[0] for r in refs) / 2, rel=1e-9)
    assert l_diff.item() == pytest.approx(sum(r[1] for r in refs) / 2, rel=1e-9)


def test_identical_maps_cost_nothing_for_context_and_one_minus_xi_for_action():
    x = torch.randn(3, 8, 5, generator=_gen(5))
    w = torch.rand(3, 8, generator=_gen(6))
    assert losses.context_difference_loss(x, x.clone(), w, 10.0).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.action_similarity_loss(x, x.clone(), w, 10.0, 0.3).item() == pytest.approx(0.7, abs=1e-6)


def test_losses_separate_action_from_context_voxels():
    # X: 4 context voxels also present in Z, 4 action voxels orthogonal to everything in Z.
    eye = torch.eye(8)
    x = eye[None]  # (1, 8, 8)
    z = torch.cat([eye[:4], eye[:4] * 2.0])[None]  # (1, 8, 8): only the first 4 directions
    on_context = torch.tensor([[1.0] * 4 + [0.0] * 4])
    on_action = 1.0 - on_context
    gamma = 50.0
    assert losses.context_difference_loss(x, z, on_context, gamma) < 1e-6
    assert losses.context_difference_loss(x, z, on_action, gamma) > 0.9
    assert losses.action_similarity_loss(x, z, on_action, gamma, 0.5) < \
        losses.action_similarity_loss(x, z, on_context, gamma, 0.5)


def test_padding_with_garbage_changes_nothing():
    x, z = torch.randn(1, 5, 4, generator=_gen(7)), torch.randn(1, 6, 4, generator=_gen(8))
    s, c = torch.rand(1, 5, generator=_gen(9)), torch.rand(1, 5, generator=_gen(10))
    xp = torch.cat([x, torch.full((1, 3, 4), 1e20)], 1)
    zp = torch.cat([z, torch.full((1, 2, 4), -1e20)], 1)
    sp, cp = torch.cat([s, torch.full((1, 3), 9.0)], 1), torch.cat([c, torch.full((1, 3), 9.0)], 1)
    xm = torch.tensor([[1] * 5 + [0] * 3], dtype=torch.bool)
    zm = torch.tensor([[1] * 6 + [0] * 2], dtype=torch.bool)
    for fn, w, wp, extra in [(losses.action_similarity_loss, s, sp, (0.1,)),
                             (losses.context_difference_loss, c, cp, ())]:
        ref = fn(x, z, w, 4.0, *extra)
        got = fn(xp, zp, wp, 4.0, *extra, x_mask=xm, z_mask=zm)
        assert torch.isfinite(got) and got.item() == pytest.approx(ref.item(), abs=1e-6)


def test_weights_are_scale_free_and_chunking_is_exact():
    x, z = torch.randn(2, 30, 4, generator=_gen(11)), torch.randn(2, 9, 4, generator=_gen(12))
    s = torch.rand(2, 30, generator=_gen(13))
    ref = losses.action_similarity_loss(x, z, s, 5.0, 0.0, chunk=None)
    got = losses.action_similarity_loss(x, z, s * 1e-6, 5.0, 0.0, chunk=7)
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)


def test_gradient_reaches_the_weights_and_zero_weights_are_safe():
    x, z = torch.randn(1, 6, 3, generator=_gen(14)), torch.randn(1, 6, 3, generator=_gen(15))
    s = torch.rand(1, 6, generator=_gen(16), requires_grad=True)
    losses.action_similarity_loss(x, z, s, 5.0, 0.0).backward()
    assert s.grad.abs().sum() > 0
    zero = losses.context_difference_loss(x, z, torch.zeros(1, 6), 5.0)
    assert zero.item() == 0.0


def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match="voxel weights"):
        losses.context_difference_loss(torch.randn(1, 4, 3), torch.randn(1, 4, 3), torch.rand(1, 5), 1.0)

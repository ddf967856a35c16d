"""actx.models: the ActX head's stated properties (ActX Eq. 5-7), the baselines, EEP and the objectives."""

import functools

import pytest
import torch

import actx.models as M
from actx import ops

B, D, T, H, W, C = 2, 6, 4, 3, 5, 3


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _batch(seed=0, t=T, tc=3):
    g = _gen(seed)
    f = torch.rand(B, D, t, H, W, generator=g)  # (B, D, T, H, W), non-negative like a ReLU backbone
    mask = torch.ones(B, t, dtype=torch.bool)
    mask[1, t - 1:] = False
    y = torch.zeros(B, C)
    y[0, 1] = y[1, 2] = 1.0
    cf = torch.rand(B, D, tc, H, W, generator=g)
    return {"f": f, "mask": mask, "y": y, "cf": cf, "cmask": torch.ones(B, tc, dtype=torch.bool)}


def _head(**kw):
    torch.manual_seed(0)
    return M.ActXHead(D, C, **kw)


def _pad(f, mask, extra=2, value=float("nan")):
    """Append `extra` garbage time steps."""
    garbage = torch.full((*f.shape[:2], extra, *f.shape[3:]), value)
    return torch.cat([f, garbage], 2), torch.cat([mask, torch.zeros(len(mask), extra, dtype=torch.bool)], 1)


# --- ActX head
# -------------------------------------------------------------------------------------------------

def test_actx_outputs_shapes_and_s_att_sums_to_one():
    b = _batch()
    out = _head()(b["f"], b["mask"])
    for k in ("S", "C", "S_act", "S_att"):
        assert out[k].shape == (B, T, H, W)
        assert (out[k][1, T - 1] == 0).all()  # padded step: 0
    assert out["logits"].shape == (B, C) and out["theta"].shape == (B, D, T, H, W)
    assert out["voxel_mask"].shape == (B, T * H * W) and out["voxel_mask"].sum().item() == (2 * T - 1) * H * W
    assert torch.allclose(out["S_att"].sum((1, 2, 3)), torch.ones(B), atol=1e-6)
    assert torch.allclose(out["S"], out["S_act"] * out["S_att"])
    assert torch.allclose(out["C"][0], 1 - out["S_act"][0])


@pytest.mark.parametrize("dense", [False, True])
def test_maps_and_theta_follow_eq_5_to_7(dense):
    b = _batch(12)
    head = _head(dense_theta=dense, rho=40.0, alpha=2.0, beta=3.0)
    torch.nn.init.normal_(head.theta_conv.weight, std=0.3)
    torch.nn.init.normal_(head.theta_conv.bias, std=0.3)
    f = b["f"][:1]
    out = head(f)
    dims = (1, 2, 3)
    s_act = torch.sigmoid(2.0 * ops.percent(ops.attnorm(head.phi(f)[:, 0], dims), 40.0, dims))
    s_att = torch.softmax(3.0 * ops.attnorm(head.psi(f)[:, 0], dims).flatten(1), 1).view_as(s_act)
    theta = torch.relu(f + head.theta_conv(f))
    assert torch.allclose(out["S_act"], s_act, atol=1e-5) and torch.allclose(out["S_att"], s_att, atol=1e-5)
    assert torch.allclose(out["theta"], theta, atol=1e-5)
    f_s = (theta * out["S"][:, None]).sum((2, 3, 4)) / out["S"].sum()
    assert torch.allclose(out["F_s"], f_s, atol=1e-5)


@pytest.mark.parametrize("kernel,size", [((3, 3, 3), (4, 4, 6)), ((1, 3, 3), (2, 3, 1)), ((5, 1, 3), (1, 2, 7)),
                                         ((1, 1, 1), (3, 2, 2))])
def test_few_channel_conv3d_is_conv3d_with_same_padding(kernel, size):
    from actx.models.actx.fused import few_channel_conv3d
    g = torch.Generator().manual_seed(30)
    f = torch.randn(3, 5, *size, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 5, *kernel, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.conv3d(f, w, b, padding=tuple(k // 2 for k in kernel))
    out = few_channel_conv3d(f, w, b)
    probe = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    grads_ref = torch.autograd.grad((ref * probe).sum(), (f, w, b))
    grads = torch.autograd.grad((out * probe).sum(), (f, w, b))
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-12)
    assert all(torch.allclose(a, r, atol=1e-12) for a, r in zip(grads, grads_ref))


def test_pool_of_several_maps_is_each_map_pooled():
    from actx.models.actx import pool
    g = torch.Generator().manual_seed(31)
    theta, w = torch.rand(2, 4, 3, 2, 2, generator=g), torch.rand(2, 2, 3, 2, 2, generator=g)
    both = pool(theta, w)  # (B, 2, D)
    for k in range(2):
        ref = (theta * w[:, k, None]).sum((2, 3, 4)) / w[:, k].sum((1, 2, 3))[:, None]
        assert torch.allclose(both[:, k], ref, atol=1e-6) and torch.allclose(pool(theta, w[:, k]), ref, atol=1e-6)


def test_alpha_zero_gives_half_and_beta_zero_gives_average_pooling():
    b = _batch()
    out = _head(alpha=0.0, beta=0.0)(b["f"], b["mask"])
    real = b["mask"][:, :, None, None].expand(B, T, H, W)
    assert torch.allclose(out["S_act"][real], torch.full_like(out["S_act"][real], 0.5))
    n = real.sum((1, 2, 3)).float()
    assert torch.allclose(out["S_att"][0], torch.full((T, H, W), 1 / n[0].item()))
    att1 = out["S_att"][1][real[1]]
    assert torch.allclose(att1, torch.full_like(att1, 1 / n[1].item()))
    theta = out["theta"].flatten(2).sum(2) / n[:, None]  # average pooling of theta(F)
    assert torch.allclose(out["F_s"], theta, atol=1e-6) and torch.allclose(out["F_c"], theta, atol=1e-6)


def test_large_alpha_makes_rho_percent_action():
    b = _batch(1)
    out = _head(alpha=1e4, rho=30.0)(b["f"])
    share = (out["S_act"] > 0.5).float().mean((1, 2, 3))
    assert torch.allclose(share, torch.full((B,), round(0.3 * T * H * W) / (T * H * W)))


def test_without_s_att_the_action_map_is_s_act():
    b = _batch()
    out = _head(use_s_att=False)(b["f"], b["mask"])
    assert torch.equal(out["S"], out["S_act"])


def test_padding_with_garbage_changes_nothing():
    b = _batch(2)
    head = _head()
    f1, m1 = b["f"][:1, :, :T - 1], b["mask"][:1, :T - 1]
    ref = head(f1, m1)
    fp, mp = _pad(f1, m1, extra=3)
    got = head(fp, mp)
    assert torch.isfinite(got["logits"]).all()
    assert torch.allclose(got["logits"], ref["logits"], atol=1e-5)
    for k in ("S", "C", "S_act", "S_att"):
        assert torch.allclose(got[k][:, :T - 1], ref[k], atol=1e-6)
        assert (got[k][:, T - 1:] == 0).all()


def _reference_forward(head, f, mask):
    """ActX Eq. 5-7 with the library's plain operators only: conv3d for phi / psi, relu(F + conv(F)), einsum
    pooling. The head's fused paths (few_channel_conv3d, _ThetaPool) must give the same values and
    gradients."""
    m = mask[:, :, None, None]
    fz = f * mask[:, None, :, None, None]
    dims = (1, 2, 3)
    pad = tuple(k // 2 for k in head.phi.kernel_size)
    phi = torch.nn.functional.conv3d(fz, head.phi.weight, head.phi.bias, padding=pad)[:, 0]
    psi = torch.nn.functional.conv3d(fz, head.psi.weight, head.psi.bias, padding=pad)[:, 0]
    s_act = torch.sigmoid(head.alpha * ops.percent(ops.attnorm(phi, dims, m), head.rho, dims, m)) * m
    e = (head.beta * ops.attnorm(psi, dims, m)).masked_fill(~m, float("-inf"))
    s = s_act * e.flatten(1).softmax(1).view_as(e)
    c = (1 - s_act) * m
    theta = torch.relu(fz + head.theta_conv(fz)) * mask[:, None, :, None, None]
    f_s = torch.einsum("bdthw,bthw->bd", theta, s) / s.flatten(1).sum(1, keepdim=True)
    f_c = torch.einsum("bdthw,bthw->bd", theta, c) / c.flatten(1).sum(1, keepdim=True)
    return {"logits": head.classifier(torch.cat([f_s, f_c], 1)), "theta": theta, "S": s}


@pytest.mark.parametrize("uses", ["logits", "logits+theta", "logits+input"])
def test_fused_head_paths_match_plain_autograd(uses):
    b = _batch(13)
    head = _head(rho=40.0).double()
    torch.nn.init.normal_(head.theta_conv.weight, std=0.5)  # some channels' scale 1 + w turns negative
    torch.nn.init.normal_(head.theta_conv.bias, std=0.3)
    f = (b["f"].double() - 0.3).requires_grad_(uses == "logits+input")  # mixed signs: relu is active both ways
    probe = torch.randn(B, D, T, H, W, generator=_gen(14), dtype=torch.float64)

    def loss(out):
        value = (out["logits"] ** 2).sum() + (out["S"] * probe[:, 0]).sum()
        return value + ((out["theta"] * probe).sum() if uses == "logits+theta" else 0.0)

    params = [p for p in head.parameters()] + ([f] if f.requires_grad else [])
    got = torch.autograd.grad(loss(head(f, b["mask"])), params)
    ref = torch.autograd.grad(loss(_reference_forward(head, f, b["mask"])), params)
    for g, r in zip(got, ref):
        assert torch.allclose(g, r, atol=1e-10, rtol=1e-8)


def test_constant_map_gives_no_nan():
    head = _head()
    f = torch.full((1, D, T, H, W), 0.7, requires_grad=True)
    out = head(f)
    out["logits"].sum().backward()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert torch.isfinite(f.grad).all()


@pytest.mark.parametrize("loss_features", ["backbone", "theta"])
def test_gradients_reach_phi_psi_theta(loss_features):
    head = _head()  # theta's convolution starts at zero (theta = relu(F)); its gradient must not be zero
    res = M.actx_objective(head, _batch(3), loss_features=loss_features)
    res["loss"].backward()
    for name in ("phi", "psi", "theta_conv", "classifier"):
        grads = [p.grad for p in getattr(head, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    assert set(res) == {"loss", "class", "sim", "diff"}
    assert res["loss"].item() == pytest.approx((res["class"] + res["sim"] + res["diff"]).item(), rel=1e-6)


def test_factorization_losses_alone_train_the_maps():
    head = _head()
    res = M.actx_objective(head, _batch(4), sim_weight=1.0, diff_weight=1.0)
    (res["sim"] + res["diff"]).backward()
    assert head.phi.weight.grad.abs().sum() > 0 and head.psi.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("d,backbone", [(1280, 4.65e6), (1024, 12.3e6)])  # EfficientNet-Lite0, I3D
def test_added_parameters_are_negligible(d, backbone):
    """ActX Table 1 lists 13.4 M parameters for both I3D and ActX-I3D: what ActX adds over the average-pooling
    baseline (whose classifier every head has) stays below the table's 0.1 M resolution."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    head, base = count(M.ActXHead(d, 13)), count(M.AvgPoolHead(d, 13))
    dense = count(M.ActXHead(d, 13, dense_theta=True))
    added = head - base
    print(f"\nActX head at D={d}: {head / 1e3:.1f} k parameters, {added / 1e3:.1f} k more than avg pooling "
          f"= {100 * added / backbone:.2f} % of the {backbone / 1e6:.2f} M backbone "
          f"(with a dense theta: {(dense - base) / 1e6:.2f} M = {100 * (dense - base) / backbone:.1f} %)")
    assert added < 0.1e6 and added < 0.02 * backbone
    assert dense - head == d * d - d


# --- baselines
# --------------------------------------------------------------------------------------------------

def test_avgpool_is_masked_mean_with_uniform_maps():
    b = _batch(5)
    head = M.AvgPoolHead(D, C)
    out = head(*_pad(b["f"], b["mask"]))
    ref = torch.stack([b["f"][0].mean((1, 2, 3)), b["f"][1, :, :T - 1].mean((1, 2, 3))])
    assert torch.allclose(out["pooled"], ref, atol=1e-6)
    assert torch.allclose(out["logits"], head.classifier(ref), atol=1e-6)
    assert torch.allclose(out["S"].sum((1, 2, 3)), torch.ones(B))
    real = out["C"] > 0
    assert torch.allclose(out["S"][0], out["S"][0].max().expand(T + 2, H, W) * real[0])


def test_attentional_pooling_is_rank_one_bilinear():
    b = _batch(6)
    torch.manual_seed(0)
    head = M.AttentionalPoolingHead(D, C)
    out = head(b["f"], b["mask"])
    x = b["f"][0].flatten(1).T  # (N, D) sample 0, all real
    a, ab = head.top_down.weight.view(C, D), head.top_down.bias
    bb, b0 = head.bottom_up.weight.view(D), head.bottom_up.bias
    ref = ((x @ a.T + ab) * (x @ bb + b0)[:, None]).mean(0)  # (C,)
    assert torch.allclose(out["logits"][0], ref, atol=1e-5)
    assert torch.allclose(out["S"].sum((1, 2, 3)), torch.ones(B), atol=1e-6)
    assert (out["S"][1, T - 1] == 0).all()
    got = head(*_pad(b["f"][1:], b["mask"][1:]))
    assert torch.allclose(got["logits"], out["logits"][1:], atol=1e-5)


def test_acf_objective_terms():
    b = _batch(7)
    torch.manual_seed(0)
    head = M.ACFHead(D, C, dim=8)
    same = dict(b, cf=b["f"], cmask=b["mask"])
    res = M.acf_objective(head, same, xi=0.25)
    assert res["diff"].item() == pytest.approx(0.0, abs=1e-6)
    assert res["sim"].item() == pytest.approx(0.75, abs=1e-6)
    res = M.acf_objective(head, b)
    res["loss"].backward()
    assert head.action[0].weight.grad.abs().sum() > 0 and head.context[0].weight.grad.abs().sum() > 0


# --- EEP
# --------------------------------------------------------------------------------------------------------

def test_resample_is_linear_interpolation_with_padding_at_the_end():
    seq = torch.tensor([[0.0, 1.0, 2.0, 3.0, 99.0]]).unsqueeze(-1)  # (1, 5, 1), last step padded
    mask = torch.tensor([[True, True, True, True, False]])
    out = M.resample(seq, mask, 7)[0, :, 0]
    assert torch.allclose(out, torch.linspace(0, 3, 7))
    assert torch.allclose(M.resample(seq[:, :1], None, 4)[0, :, 0], torch.zeros(4))
    with pytest.raises(ValueError, match="padding at the end"):
        M.resample(seq, torch.tensor([[False, True, True, True, True]]), 4)


def test_eep_basis_and_transform():
    g = _gen(8)
    level = torch.rand(20, 1, 5, generator=g) + 0.5
    trend = torch.randn(20, 1, 5, generator=g) * 0.2
    seqs = level + trend * torch.linspace(-1, 1, 9)[None, :, None]  # (20, 9, 5): constant + linear evolution
    eep = M.EEP(k=2, length=8).fit(seqs)
    u = eep.basis
    assert torch.allclose(u @ u.T, torch.eye(2), atol=1e-5)  # orthonormal
    assert torch.allclose(u[0], torch.full((8,), 8 ** -0.5), atol=0.02)  # first: nearly constant (average)
    assert (u[1][1:] - u[1][:-1]).sign().unique().numel() == 1  # second: monotone (the trend)
    const = torch.full((1, 6, 5), 2.0)
    feat = eep(const)
    assert feat.shape == (1, 10)
    assert torch.allclose(feat[0, :5], torch.full((5,), 2.0) * u[0].sum() / 8 ** 0.5)
    # Fitting on a list of variable-length sequences works and is deterministic.
    lst = [seqs[i, : 5 + i % 4] for i in range(20)]
    assert torch.equal(M.EEP(2, 8).fit(lst).basis, M.EEP(2, 8).fit(lst).basis)
    with pytest.raises(RuntimeError, match="not fitted"):
        M.EEP()(const)


def test_eep_heads_on_average_pooling_and_on_actx():
    b = _batch(9)
    for base in (None, _head()):
        head = M.EEPHead(D, C, k=2, length=4, base=base)
        head.fit([(b["f"], b["mask"])], progress=False)
        out = head(b["f"], b["mask"])
        width = D if base is None else 2 * D
        assert out["eep"].shape == (B, 2 * width) and out["logits"].shape == (B, C)
        assert out["S"].shape == (B, T, H, W)
        res = M.classification_objective(head, b)
        res["loss"].backward()
        assert head.classifier.weight.grad is not None
        if base is not None:
            assert all(p.grad is None for p in base.parameters())  # frozen
        state = head.state_dict()
        fresh = M.EEPHead(D, C, k=2, length=4, base=None if base is None else _head())
        fresh.load_state_dict(state)
        assert torch.allclose(fresh(b["f"], b["mask"])["logits"], out["logits"])


def test_actx_sequence_pools_each_step_with_the_maps():
    b = _batch(10)
    head = _head(alpha=0.0, beta=0.0)  # uniform maps: per-step F_s = F_c = spatial mean of theta
    seq = head.sequence(b["f"], b["mask"])
    th = head.theta(b["f"], b["mask"]).mean((3, 4)).transpose(1, 2)  # (B, T, D)
    assert seq.shape == (B, T, 2 * D)
    assert torch.allclose(seq[..., :D], th, atol=1e-6) and torch.allclose(seq[..., D:], th, atol=1e-6)


# --- objectives
# -------------------------------------------------------------------------------------------------

def test_classification_loss_choices():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert M.classification_loss(logits, y, multi_label=False).item() == pytest.approx(ce.item())
    assert M.classification_loss(logits, y, multi_label=True).item() == pytest.approx(bce.item())
    with pytest.raises(ValueError, match="exactly one label"):
        M.classification_loss(logits, torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]), multi_label=False)


def test_missing_conjugate_and_bound_objective():
    b = _batch(11)
    del b["cf"]
    with pytest.raises(KeyError, match="conjugate"):
        M.actx_objective(_head(), b)
    configured = functools.partial(M.actx_objective, gamma=2.0, xi=0.1, sim_weight=0.0, diff_weight=0.0)
    res = configured(_head(), _batch(11))
    assert res["loss"].item() == pytest.approx(res["class"].item())


@pytest.mark.parametrize("loss_features", ["backbone", "theta"])
def test_actx_step_runs_under_mixed_precision(loss_features):
    # CUDA trains under bfloat16 autocast (actx.train.precision); CPU autocast routes the same ops (bmm, conv)
    # to bfloat16, so the fused nodes' dtype handling is checked here without a GPU
    head = _head()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = M.actx_objective(head, _batch(15), loss_features=loss_features)
    res["loss"].backward()
    assert torch.isfinite(res["loss"]).all()
    for p in head.parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()

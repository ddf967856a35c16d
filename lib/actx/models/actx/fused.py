"""The ActX head's fused kernels: phi / psi as one matrix product plus a shift gather, and theta(F) with ActX
Eq. 6 pooling in one autograd node (so the backward pass never builds theta's (B, D, N) gradient when only the
pooled features are used). Numerically the same as the plain autograd versions (tests/test_models.py checks both).
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=64)
def _shift_index(size: tuple[int, int, int], kernel: tuple[int, int, int], device: str
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each kernel offset reads, for a (T, H, W) map (N = T*H*W voxels, K = kt*kh*kw offsets in conv3d's
    (kt, kh, kw) order, responses laid out (k*N + n)-flat):

    src (N, K): for output voxel n and offset k, the response it adds, K*N (a zero slot) in the padding;
    dst (K*N,): for each response, the output voxel it is added to, N (a zero slot) when none. For a fixed
    offset the shift is one-to-one, so every response feeds at most one output and dst is well defined.
    """
    grids = torch.meshgrid(*(torch.arange(n) for n in size), indexing="ij")  # 3 x (T, H, W)
    n, k_all, cols = math.prod(size), math.prod(kernel), []
    for k, offset in enumerate(itertools.product(*(range(-(s // 2), s // 2 + 1) for s in kernel))):
        src = [g + o for g, o in zip(grids, offset)]
        inside = torch.stack([(p >= 0) & (p < lim) for p, lim in zip(src, size)]).all(0)
        flat = (src[0] * size[1] + src[1]) * size[2] + src[2] + k * n
        cols.append(torch.where(inside, flat, k_all * n).flatten())
    src = torch.stack(cols, 1)  # (N, K)
    dst = torch.full((k_all * n + 1,), n, dtype=torch.long)
    dst[src.flatten()] = torch.arange(n).repeat_interleave(k_all)  # padding reads all land in the extra slot
    return src.to(device), dst[:-1].to(device)


class ShiftSum(torch.autograd.Function):
    """out[..., n] = sum_k y[..., src[n, k]] (zero where src is the padding slot), y (..., K*N) -> (..., N).

    The backward pass is a gather as well (grad_y[..., p] = grad_out[..., dst[p]]), not a scatter-add."""

    @staticmethod
    def forward(ctx, y, src, dst):
        ctx.save_for_backward(dst)
        padded = torch.cat([y, y.new_zeros(*y.shape[:-1], 1)], -1)  # (..., K*N + 1)
        return padded[..., src].sum(-1)  # (..., N)

    @staticmethod
    def backward(ctx, g):
        (dst,) = ctx.saved_tensors
        padded = torch.cat([g, g.new_zeros(*g.shape[:-1], 1)], -1)  # (..., N + 1)
        return padded[..., dst], None, None


def few_channel_conv3d(f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """F.conv3d(f, weight, bias) with 'same' zero padding, for very few output channels (phi and psi).

    f (B, D, T, H, W), weight (O, D, kt, kh, kw) with odd sizes, bias (O,) -> (B, O, T, H, W). One
    matrix product (a 1x1 convolution with O*K outputs) gives every voxel's response to every kernel offset,
    y (B, O*K, N) with K = kt*kh*kw, and each output voxel sums the K responses of its neighbours (a gather).
    The arithmetic is conv3d's; a library convolution with O = 2 output channels runs far below the
    matrix-product rate (2x slower on CPU here).
    """
    b, d, t, h, w = f.shape
    o, kernel = weight.shape[0], tuple(weight.shape[2:])
    k, n = math.prod(kernel), t * h * w
    w2 = weight.flatten(2).transpose(1, 2).reshape(o * k, d)  # (O*K, D), rows (o, kt, kh, kw)
    y = F.conv1d(f.flatten(2), w2[:, :, None]).view(b, o, k * n)  # (B, O, K*N): response per offset
    out = ShiftSum.apply(y, *_shift_index((t, h, w), kernel, str(f.device)))  # (B, O, N)
    return (out + bias.view(1, o, 1)).view(b, o, t, h, w)


class ThetaPool(torch.autograd.Function):
    """theta = relu(scale * f + bias) (the channel-wise theta of ActX 3.3) and the weighted sums
    sum_n w_kn theta_n (Eq. 6 with normalised weights), in one autograd node.

    f (B, D, N) with zeros at padded voxels, scale and bias (D,), w (B, K, N) non-negative and 0 at padded
    voxels, real (B, 1, N) 1. at real voxels and 0. at padded ones (or None) -> theta (B, D, N), 0 at padded
    voxels, and the sums (B, D, K).

    When only the pooled numerators are used (the ActX training step), the backward pass never builds the
    (B, D, N) gradient of theta: with live = theta > 0 (relu's gradient mask),
      d scale_d = sum_{b,k} g_bdk sum_n w_bkn live_bdn f_bdn,
      d bias_d = sum_{b,k} g_bdk sum_n w_bkn live_bdn,
    two batched products with w. Otherwise (theta's gradient is used too, or f needs one) the gradient goes
    through theta as plain autograd would send it.
    """

    @staticmethod
    def forward(ctx, f, scale, bias, w, real):
        # scale * f + bias as a product then an in-place add: addcmul with these (D, 1) broadcasts runs 3x slower
        theta = (f * scale[:, None]).add_(bias[:, None]).clamp_min_(0.0)  # (B, D, N)
        if real is not None:
            theta = theta.mul_(real)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(f, scale, w, theta)
        return theta, torch.bmm(theta, w.transpose(1, 2))  # (B, D, N), (B, D, K)

    @staticmethod
    def backward(ctx, g_theta, g_num):
        f, scale, w, theta = ctx.saved_tensors
        need_f, need_scale, need_bias, need_w = ctx.needs_input_grad[:4]
        g_f = g_scale = g_bias = g_w = None
        if g_num is not None and need_w:
            g_w = torch.bmm(g_num.transpose(1, 2), theta)  # (B, K, N)
        # relu's gradient mask as 0. / 1.: theta >= 0, so sign(theta) is 1 exactly where theta > 0 (a float
        # mask: element-wise work with bool tensors runs 5-30x slower on CPU)
        live = torch.sign(theta)  # (B, D, N)
        if g_theta is None and not need_f:
            if g_num is None:
                return None, None, None, g_w, None
            wt = w.transpose(1, 2)  # (B, N, K)
            if need_bias:
                g_bias = (g_num * torch.bmm(live, wt)).sum((0, 2))  # per map (B, D, K), summed
            if need_scale:  # live * f in live's own memory (it is not needed after this)
                g_scale = (g_num * torch.bmm(live.mul_(f), wt)).sum((0, 2))
            return None, g_scale, g_bias, g_w, None
        g_pre = g_theta if g_theta is not None else torch.zeros_like(theta)
        if g_num is not None:
            g_pre = g_pre + torch.bmm(g_num, w)  # (B, D, N)
        g_pre = g_pre * live
        if need_scale:
            g_scale = (g_pre * f).sum((0, 2))
        if need_bias:
            g_bias = g_pre.sum((0, 2))
        if need_f:
            g_f = g_pre * scale[:, None]
        return g_f, g_scale, g_bias, g_w, None

"""The ActX head: attentive action and context factorization on a backbone map (paper 000, sections 3.3-3.4).

    S_act = sigmoid(alpha * Percent_rho(AttNorm_{t,h,w}(phi(F))))          (ActX Eq. 7)
    S_att = softmax_{t,h,w}(beta * AttNorm_{t,h,w}(psi(F)))                (ActX Eq. 7)
    S = S_act * S_att,   C = 1 - S_act                                     (ActX Eq. 5)
    F_s = sum_i s_i theta(F)_i / sum_i s_i,  F_c likewise with c_i         (ActX Eq. 6)
    theta(F) = relu(F + conv3d_1x1x1(F)),    logits = Linear([F_s, F_c])   (ActX section 3.3)

Which features the losses compare (ActX Eq. 3-4). Section 3.2 says "Let X = F(a) be the 4D feature map for an
action sample and Z = F(c) the feature map for the corresponding conjugate": X and Z are the backbone maps F,
not theta(F). That reading also matches the paper's purpose: the losses are meant to ground action and context
in voxels (learn S and C), "which is different from the goal of learning factorized feature embeddings in the
ACF framework"; with X = F the losses reach the model only through the weights s_i and c_i, so they shape phi
and psi and cannot be lowered by deforming the features. The forward pass also returns ``"theta"`` (and the
flat ``"voxel_mask"``), so the training objective can use theta(F) instead (``loss_features="theta"`` in
:func:`actx.models.actx.actx_objective`), the alternative reading in which f(v) = theta(F) is learnt.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from actx import ops
from actx.models.actx.fused import ThetaPool, few_channel_conv3d

# phi and psi (ActX section 3.4, "3D convolutional layers" to one channel): 3x3x3, the smallest 3D kernel that
# sees each voxel's neighbours in time and space, so the maps are locally smooth; it costs 27 * D weights each
# (55 k for both at D = 1024, 0.5 % of I3D). 'same' padding keeps the map's T x H x W.
MAP_KERNEL = (3, 3, 3)

# theta's 1x1x1 convolution is channel-wise (groups = D, 2 * D parameters) by default: a dense D x D
# convolution adds D^2 parameters (1.05 M at D = 1024, 8.5 % of I3D; 1.64 M at D = 1280, 35 % of
# EfficientNet-Lite0), which contradicts the paper's "negligible" (its Table 1 lists the same 13.4 M for I3D
# and ActX-I3D) and would let the head overfit a small training set. dense_theta=True gives the dense D x D
# version.
DENSE_THETA = False


def pool(theta: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted average pooling (ActX Eq. 6): sum_i w_i theta_i / sum_i w_i.

    theta (B, D, T, H, W), w (B, T, H, W) -> (B, D); or several maps at once, w (B, K, T, H, W) -> (B, K, D)
    (one batched product for S and C instead of two matrix-vector products).

    Weights are non-negative and 0 at padded voxels; the denominator is floored at the dtype's smallest normal
    number, so a sample with no weight at all pools to 0.
    """
    many = w.dim() == theta.dim()
    wk = w.flatten(2) if many else w.flatten(1)[:, None]  # (B, K, N)
    # theta's own (B, D, N) layout on the left: the backward pass then writes theta's gradient in that layout
    # too (a transposed gradient makes the element-wise backward passes through relu several times slower)
    num = torch.bmm(theta.flatten(2), wk.transpose(1, 2)).transpose(1, 2)  # (B, K, D)
    den = wk.sum(2, keepdim=True)  # (B, K, 1)
    out = num / den.clamp_min(torch.finfo(den.dtype).tiny)
    return out if many else out[:, 0]


def pool_per_step(theta: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Eq. 6 within each time step: sum_{h,w} w theta / sum_{h,w} w -> (B, T, D) (0 at padded steps)."""
    num = torch.einsum("bdthw,bthw->btd", theta, w)  # (B, T, D)
    den = w.flatten(2).sum(2)[..., None]  # (B, T, 1)
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


class ActXHead(nn.Module):
    """Attentive action and context factorization head (ActX Eq. 5-7), one linear classifier on [F_s, F_c].

    in_channels: D of the backbone map; num_classes: C. rho, alpha, beta: ActX Eq. 7 (the paper's defaults,
    "a good default starting point is rho = 30.0, alpha = beta = 1"). use_s_att=False is the paper's ablation
    "ActX w/o S_att" (S = S_act). map_kernel: phi's and psi's kernel (see MAP_KERNEL). dense_theta: see
    DENSE_THETA.

    forward(f (B, D, T, H, W), mask (B, T) True where a step is real) returns a dict:
      "logits" (B, C); "S", "C", "S_act", "S_att" (B, T, H, W), all 0 at padded steps, S_att summing to 1 per
      sample; "F_s", "F_c" (B, D); "theta" theta(F) (B, D, T, H, W); "voxel_mask" (B, T*H*W) for the losses.
    """

    def __init__(self, in_channels: int, num_classes: int, rho: float = 30.0, alpha: float = 1.0,
                 beta: float = 1.0, use_s_att: bool = True, map_kernel: tuple[int, int, int] = MAP_KERNEL,
                 dense_theta: bool = DENSE_THETA):
        super().__init__()
        if not 0.0 <= rho <= 100.0:
            raise ValueError(f"rho is a percentage in [0, 100], got {rho}")
        if any(k % 2 == 0 for k in map_kernel):
            raise ValueError(f"map_kernel must have odd sizes (for 'same' padding), got {map_kernel}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.rho, self.alpha, self.beta = float(rho), float(alpha), float(beta)
        self.use_s_att = bool(use_s_att)
        pad = tuple(k // 2 for k in map_kernel)
        self.phi = nn.Conv3d(in_channels, 1, map_kernel, padding=pad)  # action confidence phi(F)
        self.psi = nn.Conv3d(in_channels, 1, map_kernel, padding=pad)  # attention confidence psi(F)
        self.theta_conv = nn.Conv3d(in_channels, in_channels, 1, groups=1 if dense_theta else in_channels)
        # theta starts as relu(F), i.e. F itself for the non-negative maps of ReLU backbones (I3D,
        # EfficientNet): training then starts from the baseline's features.
        nn.init.zeros_(self.theta_conv.weight)
        nn.init.zeros_(self.theta_conv.bias)
        self.classifier = nn.Linear(2 * in_channels, num_classes)

    def theta(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """theta(F) = relu(F + conv3d_1x1x1(F)) (ActX section 3.3). (B, D, T, H, W), 0 at padded steps."""
        mask, padded = self._check(f, mask)
        return self._theta(ops.zero_padding(f, mask) if padded else f, mask, padded)[0]

    def maps(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """S_act, S_att, S and C (ActX Eq. 5, 7), each (B, T, H, W) and 0 at padded time steps."""
        mask, padded = self._check(f, mask)
        return self._maps(ops.zero_padding(f, mask) if padded else f, mask, padded)

    @staticmethod
    def _check(f: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, bool]:
        """The checked (B, T) time mask and whether any step is padded (asked once per call: on a GPU every
        such question waits for the device)."""
        mask = ops.time_mask(f, mask)
        return mask, not bool(mask.all())

    def _theta(self, f: torch.Tensor, mask: torch.Tensor, padded: bool, w: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """theta(F) (B, D, T, H, W), 0 at padded steps, and with maps w (B, K, T, H, W) also Eq. 6's pooled
        features (B, K, D) (None without maps)."""
        conv = self.theta_conv
        if conv.groups == 1:  # dense 1x1x1 convolution
            theta = ops.zero_padding(F.relu(f + conv(f)), mask)
            return theta, None if w is None else pool(theta, w)
        # channel-wise: f + (w f + b) = (1 + w) f + b
        d = f.shape[1]
        scale, bias = (1.0 + conv.weight.view(d)).to(f.dtype), conv.bias.to(f.dtype)
        if w is None:  # theta alone: plain autograd
            theta = (f * scale.view(1, d, 1, 1, 1) + bias.view(1, d, 1, 1, 1)).relu()
            return ops.zero_padding(theta, mask), None
        # with pooling: one autograd node (ThetaPool) on Eq. 6's normalised weights w_i / sum_i w_i, so that
        # the pooled products are F_s and F_c
        real = ops.voxel_mask(mask, f.shape)[:, None].to(f.dtype) if padded else None  # (B, 1, N)
        maps = w.flatten(2)  # (B, K, N)
        weights = maps / maps.sum(2, keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)
        # under mixed precision the node runs in f's dtype: autocast would give its products another dtype
        # than the tensors its backward pass combines them with (a K = 2 product gains nothing from it anyway)
        with torch.autocast(f.device.type, enabled=False):
            theta, pooled = ThetaPool.apply(f.flatten(2), scale, bias, weights.to(f.dtype), real)
        return theta.view(f.shape), pooled.transpose(1, 2)  # (B, D, T, H, W), (B, K, D)

    def _maps(self, f: torch.Tensor, mask: torch.Tensor, padded: bool) -> dict[str, torch.Tensor]:
        m = mask[:, :, None, None]  # (B, T, 1, 1)
        real = m if padded else None  # the statistics' mask: None takes their unmasked paths
        dims = (1, 2, 3)  # (t, h, w): the whole video volume of one sample
        weight = torch.cat([self.phi.weight, self.psi.weight])  # (2, D, kt, kh, kw): phi and psi together
        bias = torch.cat([self.phi.bias, self.psi.bias])  # (2,)
        conf = few_channel_conv3d(f, weight, bias)  # (B, 2, T, H, W)
        a = ops.percent(ops.attnorm(conf[:, 0], dims, real), self.rho, dims, real)  # (B, T, H, W)
        s_act = torch.sigmoid(self.alpha * a) * m  # (B, T, H, W)
        e = (self.beta * ops.attnorm(conf[:, 1], dims, real)).masked_fill(~m, float("-inf"))
        s_att = e.flatten(1).softmax(1).view_as(e)  # (B, T, H, W), unit sum per sample
        s = s_act * s_att if self.use_s_att else s_act
        return {"S": s, "C": (1.0 - s_act) * m, "S_act": s_act, "S_att": s_att}

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mask, padded = self._check(f, mask)
        f = ops.zero_padding(f, mask) if padded else f
        out = self._maps(f, mask, padded)
        maps = torch.stack([out["S"], out["C"]], 1)  # (B, 2, T, H, W)
        th, pooled = self._theta(f, mask, padded, maps)  # (B, D, T, H, W), (B, 2, D)
        f_s, f_c = pooled.unbind(1)  # Eq. 6: (B, D) each
        out.update(logits=self.classifier(pooled.reshape(len(f), -1)),  # on [F_s, F_c]
                   F_s=f_s, F_c=f_c, theta=th, voxel_mask=ops.voxel_mask(mask, f.shape))
        return out

    def sequence(self, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-time-step [F_s(t), F_c(t)] with this head's maps (Eq. 6 within each step): (B, T, 2D)."""
        return step_features(self(f, mask))


def step_features(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """[F_s(t), F_c(t)] per time step from an ActXHead output: (B, T, 2D), 0 at padded steps."""
    return torch.cat([pool_per_step(out["theta"], out["S"]), pool_per_step(out["theta"], out["C"])], -1)

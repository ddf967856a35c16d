"""The Base-Model and the relation modules of 002 (section 3, Fig. 3, Table 1a), on stored stride-8/16 maps.

    head = DetectionHead(num_classes, relation="acrn", context=10)
    out = head(f16, rois, f8=None, size=(H, W))
    out["logits"] (K, C) multi-label; out["deltas"] (K, 4) box offsets; out["cam"] (K, C, h', w') with maps=True

f16 (B, 112, N, h, w) are EfficientNet-Lite0 stage-5 maps (stride 16) of the N frames around each key frame, f8
(B, 40, N, 2h, 2w) the stage-3 maps (stride 8); rois (K, 5) = (key frame in the batch, x1, y1, x2, y2) pixels.
"""

from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from actx.models.roi import roi_align

RELATIONS = ("none", "concat", "santoro", "acrn")
CHANNELS = {5: 112, 3: 40}  # EfficientNet-Lite0 stage -> output channels
STRIDES = {5: 16, 3: 8}
ACTOR_DIM = 320  # stage 7's output: the actor feature after average pooling (the 1 x 1 x 1024 of 002)
CLASSIFIER_FIRST_STAGE = 6  # stages 6-7 (stride 16 -> 32) stand in for Mixed_5b / 5c


def classification_network(repeats: int = 3) -> nn.Sequential:
    """EfficientNet-Lite0 stages 6-7, initialised from the ImageNet weights (002: Mixed_5b-5c from Kinetics):
    stage 6's first block (stride 2, 112 -> 192 channels), ``repeats`` (0-3) of its three residual blocks, and
    stage 7 (192 -> 320). Dropping residual blocks keeps a valid pretrained chain at a fraction of the cost."""
    if not 0 <= repeats <= 3:
        raise ValueError(f"repeats must lie in 0..3 (stage 6's residual blocks), got {repeats}")
    blocks = _pretrained_blocks()  # 4 blocks of stage 6, 1 of stage 7
    return copy.deepcopy(nn.Sequential(*blocks[: 1 + repeats], blocks[-1]))


@functools.lru_cache(maxsize=1)
def _pretrained_blocks() -> tuple[nn.Module, ...]:
    """The pretrained stage 6-7 blocks, read once per process (classification_network hands out copies)."""
    from actx.backbones.efficientnet import efficientnet_lite0

    return tuple(efficientnet_lite0().stage_blocks(CLASSIFIER_FIRST_STAGE))


class GradScale(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``scale`` (002 section 4.1: "a gradient multiplier of 0.01
    to gradients from RN to the feature map")."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scaled_unit(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """x L2-normalised along ``dim`` and multiplied by sqrt(size of dim): every part of a concatenation gets unit
    root-mean-square per channel, the amplitude of the batch-normed activations the pretrained blocks expect
    (our choice of the scale 002 leaves open: "normalize and scale the features", refs [1, 29, 46])."""
    return F.normalize(x, dim=dim) * math.sqrt(x.shape[dim])


class TimeFlatten(nn.Module):
    """A t x 1 x 1 convolution flattening N frames to one map (002 section 3.1), initialised to the mean over
    time so that the pretrained maps pass through unchanged at the start."""

    def __init__(self, channels: int, frames: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, (frames, 1, 1))
        with torch.no_grad():
            self.conv.weight.zero_()
            idx = torch.arange(channels)
            self.conv.weight[idx, idx] = 1.0 / frames
            self.conv.bias.zero_()

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.conv(f).squeeze(2)  # (B, C, N, h, w) -> (B, C, h, w)


class DetectionHead(nn.Module):
    """Base-Model (002 section 3.1) with an optional relation module (section 3.2, Table 1a).

    relation  "none" (Base-Model), "concat" (Resize+Concat), "santoro" (Santoro et al.: g_theta, average, FC),
              "acrn" (tiled actor feature + scene + box + location, g_theta 1x1 conv, f_phi = a second copy of
              the classification network, average pooling)
    context   frames N of the input maps (002 Table 1b)
    relation_stage  5 (stride 16) or 3 (stride 8): the layer the relation module reads (Table 1c)
    relation_scale  the relation input map resized by this factor (Table 1c's scale 0.5 / 1.0)
    grad_mult the gradient multiplier from the relation branch into the feature map (002: 0.01)
    repeats   stage 6's residual blocks kept in the classification network and f_phi (0-3)
    """

    def __init__(self, num_classes: int, relation: str = "acrn", context: int = 10, roi: int = 7,
                 relation_stage: int = 5, relation_scale: float = 1.0, grad_mult: float = 0.01, repeats: int = 3):
        super().__init__()
        if relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
        if relation_stage not in CHANNELS:
            raise ValueError(f"relation_stage must be one of {sorted(CHANNELS)}, got {relation_stage}")
        self.relation, self.roi, self.grad_mult = relation, roi, grad_mult
        self.relation_stage, self.relation_scale = relation_stage, relation_scale
        c16, cr = CHANNELS[5], CHANNELS[relation_stage]
        self.flatten = TimeFlatten(c16, context)
        self.classifier_net = classification_network(repeats)  # (K, 112, 7, 7) -> (K, 320, 4, 4)
        feat = ACTOR_DIM
        if relation != "none":
            self.flatten_relation = TimeFlatten(cr, context) if relation_stage != 5 else None
        if relation == "concat":  # 1x1 conv back to f_a's channels, starting as the identity on f_a
            self.reduce = nn.Conv2d(c16 + cr, c16, 1)
            with torch.no_grad():
                self.reduce.weight.mul_(0.1)
                self.reduce.weight[:, :c16, 0, 0] = torch.eye(c16)
                self.reduce.bias.zero_()
        elif relation in ("santoro", "acrn"):
            g_in = ACTOR_DIM + cr + 4 + 2  # actor, scene cell, box b_i, location l = (j / H, k / W)  (002 Eq. 2)
            g_out = ACTOR_DIM if relation == "santoro" else c16  # acrn: what f_phi's first block expects
            self.g_theta = nn.Conv2d(g_in, g_out, 1)
            if relation == "santoro":
                self.f_phi = nn.Linear(ACTOR_DIM, ACTOR_DIM)
            else:
                self.f_phi = classification_network(repeats)  # its own weights, the same initialisation
            feat = 2 * ACTOR_DIM
        self.cls = nn.Linear(feat, num_classes)
        self.box = nn.Linear(feat, 4)
        with torch.no_grad():
            self.box.weight.zero_()
            self.box.bias.zero_()
        # The pretrained block chains run channels_last: their depthwise and 1x1 convolutions are 20-30 % faster
        # forward and backward on a CPU in that layout (benchmarks/acrn_speed.py); the same numbers up to the
        # order of float sums. Parameters keep their names and shapes (checkpoints load either way).
        for chain in (self.classifier_net, getattr(self, "f_phi", None)):
            if isinstance(chain, nn.Sequential):
                chain.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> "DetectionHead":
        """Batch norm stays frozen (002 section 4.1: "the batch-norm updates are disabled")."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def _scene(self, f16: torch.Tensor, f8: torch.Tensor | None, flat16: torch.Tensor) -> torch.Tensor:
        """The relation input (B, Cr, h', w'): the flattened map of the chosen layer, resized, with the
        gradient multiplier on its way back into the feature map."""
        if self.relation_stage == 5:
            scene = flat16
        else:
            if f8 is None:
                raise ValueError("relation_stage 3 needs the stride-8 maps f8")
            scene = self.flatten_relation(f8)
        if self.relation_scale != 1.0:
            scene = F.interpolate(scene, scale_factor=self.relation_scale, mode="bilinear", align_corners=False)
        return GradScale.apply(scene, self.grad_mult)

    def _g_theta(self, a: torch.Tensor, scene: torch.Tensor, rois: torch.Tensor, size: tuple[int, int]
                 ) -> torch.Tensor:
        """g_theta (a 1 x 1 convolution) on every (actor, cell) pair of 002 Eq. 2: the concatenation
        [tile(a_i), scene, tile(b_i), l] (each part scaled_unit) -> (K, D, h', w').

        Computed part by part, W [x; y] = W_x x + W_y y with the slices of the one convolution's weight: the
        scene's part once per key frame (not once per actor), the actor's and box's once per actor (a tiled
        vector is constant over the cells, and so is its scaled_unit), the location's once. The same function
        as the convolution of the concatenation, without building the (K, 320 + Cr + 6, h', w') input."""
        b, cr, h, w = scene.shape
        hh, ww = size
        box = rois[:, 1:] / rois.new_tensor([ww, hh, ww, hh])  # (K, 4) b_i in frame fractions
        jj = torch.arange(h, device=scene.device, dtype=scene.dtype) / h
        kk = torch.arange(w, device=scene.device, dtype=scene.dtype) / w
        loc = torch.stack(torch.meshgrid(jj, kk, indexing="ij"))[None]  # (1, 2, h', w') l = (j / H, k / W)
        weight = self.g_theta.weight[:, :, 0, 0]  # (D, 320 + Cr + 6), in the order of the concatenation
        w_a, w_s, w_b, w_l = torch.split(weight, [a.shape[1], cr, 4, 2], 1)
        per_actor = scaled_unit(a) @ w_a.T + scaled_unit(box) @ w_b.T + self.g_theta.bias  # (K, D)
        per_frame = F.conv2d(scaled_unit(scene), w_s[:, :, None, None])  # (B, D, h', w')
        per_cell = F.conv2d(scaled_unit(loc), w_l[:, :, None, None])  # (1, D, h', w')
        return per_frame[rois[:, 0].long()] + per_cell + per_actor[:, :, None, None]

    def forward(self, f16: torch.Tensor, rois: torch.Tensor, f8: torch.Tensor | None = None,
                size: tuple[int, int] | None = None, maps: bool = False) -> dict[str, torch.Tensor]:
        flat = self.flatten(f16)  # (B, 112, h, w)
        crops = roi_align(flat, rois, self.roi, spatial_scale=1.0 / STRIDES[5])  # (K, 112, 7, 7)
        if self.relation == "concat":  # Resize+Concat: the scene map resized to the crop, then the classifier
            scene = F.interpolate(self._scene(f16, f8, flat), size=crops.shape[-2:], mode="bilinear",
                                  align_corners=False)[rois[:, 0].long()]  # (K, Cr, 7, 7)
            norm = crops.flatten(1).norm(dim=1).clamp_min(1e-6)[:, None, None, None]  # |f_a| per actor
            both = torch.cat([F.normalize(crops.flatten(1), dim=1).view_as(crops),
                              F.normalize(scene.flatten(1), dim=1).view_as(scene)], 1)
            both = both / math.sqrt(2.0) * norm  # the concatenation rescaled to the L2 norm of f_a (002 4.2)
            crops = self.reduce(both)
        a = self.classifier_net(crops.contiguous(memory_format=torch.channels_last)).mean((2, 3))  # (K, 320) f_a
        out: dict[str, torch.Tensor] = {}
        feat = a
        if self.relation in ("santoro", "acrn"):
            if size is None:
                raise ValueError("the relation modules need size=(H, W), the frame size, for the box embedding")
            g = self._g_theta(a, self._scene(f16, f8, flat), rois, size)  # (K, D, h', w')
            if self.relation == "santoro":
                r = F.relu(self.f_phi(F.relu(g).mean((2, 3))))  # average over locations, then one FC
            else:
                rmap = self.f_phi(g.contiguous(memory_format=torch.channels_last))  # (K, 320, h'', w'')
                r = rmap.mean((2, 3))
                if maps:  # class activation maps (002 section 4.4): the classifier as a 1x1 conv on rmap
                    w_r = self.cls.weight[:, ACTOR_DIM:]  # (C, 320)
                    out["cam"] = torch.einsum("cd,kdhw->kchw", w_r, rmap)
            feat = torch.cat([a, r], 1)  # (K, 640)
        out["logits"] = self.cls(feat)
        out["deltas"] = self.box(feat)
        return out


# --- box regression (Faster R-CNN's parametrisation) -----------------------------------------------------------
def encode(proposals: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(K, 4) xyxy proposals and targets -> (K, 4) offsets (dx, dy, log dw, log dh) relative to the proposal."""
    pw, ph = proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]
    tw, th = targets[:, 2] - targets[:, 0], targets[:, 3] - targets[:, 1]
    px, py = proposals[:, 0] + pw / 2, proposals[:, 1] + ph / 2
    tx, ty = targets[:, 0] + tw / 2, targets[:, 1] + th / 2
    return torch.stack([(tx - px) / pw, (ty - py) / ph, torch.log(tw / pw), torch.log(th / ph)], 1)


def decode(proposals: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`encode`: boxes (K, 4) xyxy."""
    pw, ph = proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]
    px, py = proposals[:, 0] + pw / 2, proposals[:, 1] + ph / 2
    cx, cy = px + deltas[:, 0] * pw, py + deltas[:, 1] * ph
    w, h = pw * torch.exp(deltas[:, 2].clamp(max=4.0)), ph * torch.exp(deltas[:, 3].clamp(max=4.0))
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)

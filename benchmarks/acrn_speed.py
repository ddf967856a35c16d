"""One ACRN training step (002: forward, multi-label loss, backward, SGD) before and after the speed-ups of issue 14.

    PYTHONPATH=lib .venv/bin/python benchmarks/acrn_speed.py [--reps 20] [--warmup 3]

Sizes are the default profile's training step: a batch of 8 key frames, 10 frames each of stage-5 maps (112
channels, 8 x 11 cells for 128 x 176 frames) and stage-3 maps (40 channels, 16 x 22), 3 actor boxes per key frame
(the stand-in proposals give 3.0 on average), 20 classes; random maps, so no data set is needed.

"before" is the head as it was: ROI-align gathering the four neighbours of every sample point (its backward a
scatter into the map), the pretrained block chains (the classification network and f_phi) in the default
contiguous layout, g_theta a 1 x 1 convolution of the concatenation [tile(a), scene, tile(b), l] built per actor.
"after" is actx.models.acrn.DetectionHead now: ROI-align as two separable matrix products per box
(actx.models.roi), the block chains channels_last, g_theta computed part by part (the scene's part once per key
frame). Both compute the same function: the script first checks, in float64, that their outputs and every
parameter's gradient agree (relative difference printed), then times them in turns in one run (``--warmup``
untimed rounds, then ``--reps`` timed ones; fastest and median step), under torch's deterministic algorithms as
actx.models.acrn.fit trains.

Rows: the Base-Model (relation "none"), ACRN at stage 5 scale 1.0 (Table 1a), ACRN at stage 3 scale 1.0 (Table
1c's most expensive row). The last line is ``acrn_speed ratio <before / after of ACRN's median step>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from actx.models.acrn import heads as H
from actx.models.acrn.heads import DetectionHead, scaled_unit

BATCH, FRAMES, BOXES_PER_FRAME, CLASSES = 8, 10, 3, 20
SIZE = (128, 176)  # the default profile's frames: stage 5 is 8 x 11 cells, stage 3 16 x 22


def gather_roi_align(f: torch.Tensor, boxes: torch.Tensor, output_size: int, spatial_scale: float,
                     sampling_ratio: int = 2) -> torch.Tensor:
    """ROI-align as actx.models.roi computed it before: every sample point's four neighbours gathered from the
    (B, H, W, C) map and weighted (the same rule; ``aligned=True``)."""
    from actx.models.roi import _axis, _corners

    oh = ow = output_size
    k, (b, c, h, w) = boxes.shape[0], f.shape
    index = boxes[:, 0].long()
    x1, y1, x2, y2 = (boxes[:, i].to(f.dtype) * spatial_scale - 0.5 for i in range(1, 5))
    y_lo, y_hi, y_w, y_ok = _corners(_axis(y1, y2 - y1, oh, sampling_ratio), h)
    x_lo, x_hi, x_w, x_ok = _corners(_axis(x1, x2 - x1, ow, sampling_ratio), w)
    maps = f.permute(0, 2, 3, 1)
    at = lambda ys, xs: maps[index[:, None, None], ys[:, :, None], xs[:, None, :]]  # noqa: E731
    wy, wx = y_w[:, :, None, None], x_w[:, None, :, None]
    values = ((1 - wy) * (1 - wx) * at(y_lo, x_lo) + (1 - wy) * wx * at(y_lo, x_hi)
              + wy * (1 - wx) * at(y_hi, x_lo) + wy * wx * at(y_hi, x_hi))
    values = values * (y_ok[:, :, None] & x_ok[:, None, :])[..., None].to(values.dtype)
    values = values.view(k, oh, sampling_ratio, ow, sampling_ratio, c).mean((2, 4))
    return values.permute(0, 3, 1, 2).contiguous()


def _tile(v: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return v[:, :, None, None].expand(-1, -1, h, w)  # (K, D) -> (K, D, h, w)


class BeforeHead(DetectionHead):
    """DetectionHead as it computed before issue 14 (see the module doc); the same parameters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for chain in (self.classifier_net, getattr(self, "f_phi", None)):
            if isinstance(chain, nn.Sequential):
                chain.to(memory_format=torch.contiguous_format)

    def forward(self, f16, rois, f8=None, size=None, maps=False):
        flat = self.flatten(f16)
        crops = gather_roi_align(flat, rois, self.roi, 1.0 / H.STRIDES[5])
        if self.relation == "concat":
            raise NotImplementedError("the benchmark times none and acrn")
        a = self.classifier_net(crops).mean((2, 3))
        out, feat = {}, a
        if self.relation == "acrn":
            scene = self._scene(f16, f8, flat)[rois[:, 0].long()]
            k, _, h, w = scene.shape
            hh, ww = size
            box = rois[:, 1:] / rois.new_tensor([ww, hh, ww, hh])
            jj = torch.arange(h, dtype=scene.dtype) / h
            kk = torch.arange(w, dtype=scene.dtype) / w
            loc = torch.stack(torch.meshgrid(jj, kk, indexing="ij"))[None].expand(k, -1, -1, -1)
            g_in = torch.cat([scaled_unit(_tile(a, h, w)), scaled_unit(scene), scaled_unit(_tile(box, h, w)),
                              scaled_unit(loc)], 1)
            r = self.f_phi(self.g_theta(g_in)).mean((2, 3))
            feat = torch.cat([a, r], 1)
        out["logits"] = self.cls(feat)
        out["deltas"] = self.box(feat)
        return out


def inputs(dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    f16 = torch.randn(BATCH, 112, FRAMES, 8, 11, generator=g, dtype=dtype).relu()
    f8 = torch.randn(BATCH, 40, FRAMES, 16, 22, generator=g, dtype=dtype).relu()
    k = BATCH * BOXES_PER_FRAME
    xy = torch.rand(k, 2, generator=g, dtype=dtype) * torch.tensor([130.0, 80.0], dtype=dtype)
    wh = 16 + torch.rand(k, 2, generator=g, dtype=dtype) * 40
    frame = torch.arange(BATCH, dtype=dtype).repeat_interleave(BOXES_PER_FRAME)[:, None]
    labels = (torch.rand(k, CLASSES, generator=g) < 0.1).to(dtype)
    return f16, f8, torch.cat([frame, xy, xy + wh], 1), labels


def pair(relation: str, stage: int, scale: float, dtype=torch.float32):
    """The before and after heads with the same weights."""
    kw = dict(relation=relation, context=FRAMES, relation_stage=stage, relation_scale=scale, repeats=0)
    torch.manual_seed(0)
    after = DetectionHead(CLASSES, **kw).to(dtype)
    before = BeforeHead(CLASSES, **kw).to(dtype)
    before.load_state_dict(after.state_dict())
    return before.train(), after.train()


def loss_of(head, batch) -> torch.Tensor:
    f16, f8, rois, labels = batch
    out = head(f16, rois, f8, size=SIZE)
    return F.binary_cross_entropy_with_logits(out["logits"], labels, reduction="sum") / len(labels) \
        + out["deltas"].pow(2).mean()


def agreement(relation: str, stage: int, scale: float) -> float:
    """Largest relative difference between before and after, over the loss and every gradient (float64)."""
    before, after = pair(relation, stage, scale, torch.float64)
    batch = inputs(torch.float64)
    worst = 0.0
    grads = []
    for head in (before, after):
        head.zero_grad()
        value = loss_of(head, batch)
        value.backward()
        grads.append([value.detach()] + [p.grad.clone() for p in head.parameters() if p.grad is not None])
    for u, v in zip(*grads):
        worst = max(worst, float((u - v).abs().max() / v.abs().max().clamp_min(1e-30)))
    return worst


def step_fn(head):
    opt = torch.optim.SGD(head.parameters(), lr=1e-4, momentum=0.9)
    batch = inputs()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_of(head, batch).backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True, warn_only=True)
    import torch.utils.deterministic as deterministic

    deterministic.fill_uninitialized_memory = False  # as actx.models.acrn.fit trains
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); batch {BATCH} key frames x "
          f"{BOXES_PER_FRAME} boxes, {FRAMES} frames, maps 8 x 11 (stage 5) / 16 x 22 (stage 3)")
    rows = (("Base-Model", "none", 5, 1.0), ("ACRN stage 5, scale 1.0", "acrn", 5, 1.0),
            ("ACRN stage 3, scale 1.0", "acrn", 3, 1.0))
    ratio = None
    for name, relation, stage, scale in rows:
        diff = agreement(relation, stage, scale)
        steps = dict(zip(("before", "after"), (step_fn(h) for h in pair(relation, stage, scale))))
        times: dict[str, list[float]] = {k: [] for k in steps}
        for rep in range(args.warmup + args.reps):
            for k, fn in steps.items():  # in turns, so that a burst of load hits both
                t = time.perf_counter()
                fn()
                if rep >= args.warmup:
                    times[k].append(1000 * (time.perf_counter() - t))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name:26s} before {med['before']:7.1f} ms (fastest {min(times['before']):6.1f})  after "
              f"{med['after']:7.1f} ms (fastest {min(times['after']):6.1f})  before/after "
              f"{med['before'] / med['after']:.2f}  float64 agreement {diff:.1e}")
        if name.startswith("ACRN stage 5"):
            ratio = med["before"] / med["after"]
    print(f"acrn_speed ratio {ratio:.2f}")


if __name__ == "__main__":
    main()

"""One ActX training step (forward, Eq. 1 with both losses Eq. 3-4, backward) against the matmul peak.

    .venv/bin/python benchmarks/heads.py [--device cpu|cuda|auto] [--reps 15] [--profile-ops]

Sizes are the default profile's training step, on random non-negative features (ReLU6-like, as the
backbone's): batch ``cfg.train["batch_size"]``, D = 1280 (EfficientNet-Lite0's head), the action sample and
its conjugate cropped to ``cfg.train["crop"]`` time steps (the training loop crops both; real batches of the
default profile have 2-3 step conjugates padded to the batch's longest, so this is the largest step
training runs), maps of ceil(128/32) x ceil(176/32) = 4 x 6 cells. No data set is needed.

Measured side by side in one run, in turns (peak, ActX step, average-pooling step; ``--warmup`` untimed
rounds, then ``--reps`` timed ones):

- peak: a large float32 matrix multiplication (``--peak-n`` squared), 2 n^3 floating-point operations;
- ActX: :func:`actx.models.actx_objective` on :class:`actx.models.ActXHead`, then ``loss.backward()``;
- average pooling: the "I3D" baseline's step (:class:`actx.models.AvgPoolHead`), for reference.

A step's operations are counted once with ``torch.utils.flop_counter.FlopCounterMode``: matrix products and
convolutions, forward and backward (and the eta recomputation of checkpointed chunks); element-wise work such
as normalisation and softmax counts 0. Achieved rate = counted operations / time, with each call's time taken
as the fastest of its rounds (timeit's rule: on a shared machine slower rounds measure interference, and a
burst of it can hit the 0.1 s peak call and the 30 ms step unequally, which moves a ratio of medians by
+-10 %); the ratio of medians is printed beside it.

Peak memory with and without eta chunking (:data:`actx.ops.ETA_CHUNK` rows vs ``chunk=None``) is measured on
one step over a long clip (``--long-steps`` for the sample and the conjugate, ``--long-batch`` samples), for
both readings of the loss features ("backbone" maps, and "theta" features whose chunks are checkpointed). On
CPU it comes from the allocation and free events of torch's CPU allocator that ``torch.profiler`` records
(``profile_memory=True``; tracemalloc cannot see torch's allocations), on CUDA from
``torch.cuda.max_memory_allocated``; both give the peak of memory allocated during the step on top of what
was allocated before it (inputs and weights excluded).

The last line printed is ``heads ratio <value>``: the ActX step's achieved rate over the peak, both from their fastest
rounds (target >= 0.5).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import time
from typing import Callable

import torch

from actx import ops
from actx.config import make_config, reuse_freed_memory
from actx.data.synthetic import CLASSES
from actx.models import ActXHead, AvgPoolHead, actx_objective, classification_objective

FEATURE_CHANNELS = 1280  # D of EfficientNet-Lite0's last 1x1 convolution, the default profile's backbone
BACKBONE_STRIDE = 32  # spatial stride of that map: 128 x 176 frames give 4 x 6 cells
LABEL_RATE = 0.1  # share of positive entries in the random multi-hot labels (about one of the 12 classes)
# Side of the peak matmul: large enough that the library reaches its best rate (a 2048^3 product takes about
# 0.2 s on 2 CPU cores; a GPU needs far more work per call to hide its launch overhead).
PEAK_N = {"cpu": 2048, "cuda": 8192}
LONG_STEPS = 64  # a long test-time clip (512 frames): N = 64 * 4 * 6 = 1536 rows, more than ETA_CHUNK
LONG_BATCH = 4  # samples of the memory run: peak memory grows linearly in it; 4 keeps the CPU run to seconds


def map_size(cfg) -> tuple[int, int]:
    """(h, w) of the backbone map at the profile's frame size."""
    height, width = cfg.features["size"]
    return math.ceil(height / BACKBONE_STRIDE), math.ceil(width / BACKBONE_STRIDE)


def step_sizes(cfg) -> dict[str, int]:
    """Batch, sample steps, conjugate steps, h, w of a training step: the training loop crops the sample and
    its conjugate to ``cfg.train["crop"]`` steps (actx.train.TemporalCrop crops both), so a conjugate holds
    at most that many, and at most a whole thread."""
    h, w = map_size(cfg)
    crop = int(cfg.train["crop"])
    thread = math.ceil(int(cfg.data["thread_frames"]) / int(cfg.features["time_stride"]))
    return dict(batch=int(cfg.train["batch_size"]), steps=crop, conj=min(crop, thread), h=h, w=w)


def random_batch(batch: int, channels: int, steps: int, conj_steps: int, hw: tuple[int, int], classes: int,
                 device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch of random non-negative maps, as actx.train.collate_maps gives it (all steps real)."""
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    f = torch.randn(batch, channels, steps, h, w, generator=g).clamp(0, 6)  # (B, D, T, H, W)
    cf = torch.randn(batch, channels, conj_steps, h, w, generator=g).clamp(0, 6)  # (B, D, T', H, W)
    y = (torch.rand(batch, classes, generator=g) < LABEL_RATE).float()  # (B, C)
    out = dict(f=f, cf=cf, y=y, mask=torch.ones(batch, steps, dtype=torch.bool),
               cmask=torch.ones(batch, conj_steps, dtype=torch.bool))
    return {k: v.to(device) for k, v in out.items()}


def training_step(model: torch.nn.Module, objective: Callable, batch: dict) -> Callable[[], None]:
    """A closure running one step: gradients cleared, objective forward, backward (no optimiser update)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step() -> None:
        for p in params:
            p.grad = None
        objective(model, batch)["loss"].backward()

    return step


def peak_matmul(n: int, device: str) -> tuple[Callable[[], None], int]:
    """A closure multiplying two random float32 n x n matrices, and its operation count 2 n^3."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(n, n, generator=g).to(device)  # (n, n)
    b = torch.randn(n, n, generator=g).to(device)  # (n, n)
    return (lambda: torch.mm(a, b)), 2 * n ** 3


def count_flops(fn: Callable[[], None]) -> int:
    """Floating-point operations of one call, as FlopCounterMode counts them (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def interleaved_times(fns: dict[str, Callable[[], None]], reps: int, warmup: int, device: str
                      ) -> dict[str, list[float]]:
    """Seconds per call of each closure over ``reps`` rounds, timed in turns (one call of each per round)
    after ``warmup`` untimed rounds."""
    from tqdm.auto import tqdm

    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in tqdm(range(warmup + reps), desc="timing", leave=False):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def peak_memory(fn: Callable[[], None], device: str) -> int:
    """Peak bytes allocated during one call on top of what was allocated before it (module docstring)."""
    if device.startswith("cuda"):
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == DeviceType.CPU)  # +alloc, -free
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def op_profile(fn: Callable[[], None], device: str, calls: int = 5, rows: int = 20) -> str:
    """torch.profiler's table of the ops (per input shapes) with the most self time over ``calls`` calls."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(calls):
            fn()
        sync(device)
    key = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    return prof.key_averages(group_by_input_shape=True).table(
        sort_by=key, row_limit=rows, max_name_column_width=30, max_shapes_column_width=60)


def rates(cfg, reps: int, warmup: int, peak_n: int) -> tuple[dict, dict, dict]:
    """Operations counted, seconds of every timed round, and the closures of the peak matmul, ActX and
    pooling steps."""
    z = step_sizes(cfg)
    d, classes = FEATURE_CHANNELS, len(CLASSES)
    torch.manual_seed(0)
    batch = random_batch(z["batch"], d, z["steps"], z["conj"], (z["h"], z["w"]), classes, cfg.device)
    peak_fn, peak_flops = peak_matmul(peak_n, cfg.device)
    actx_head, avg_head = ActXHead(d, classes).to(cfg.device), AvgPoolHead(d, classes).to(cfg.device)
    steps = {"peak": peak_fn, "actx": training_step(actx_head, actx_objective, batch),
             "avgpool": training_step(avg_head, classification_objective, batch)}
    flops = {"peak": peak_flops, "actx": count_flops(steps["actx"]), "avgpool": count_flops(steps["avgpool"])}
    return flops, interleaved_times(steps, reps, warmup, cfg.device), steps


def memory_table(cfg, long_steps: int, long_batch: int) -> dict[str, dict[int | None, int]]:
    """Peak bytes of one ActX step on a long clip, per loss-feature reading, with and without eta chunks."""
    z = step_sizes(cfg)
    d, classes = FEATURE_CHANNELS, len(CLASSES)
    torch.manual_seed(0)
    head = ActXHead(d, classes).to(cfg.device)
    long = random_batch(long_batch, d, long_steps, long_steps, (z["h"], z["w"]), classes, cfg.device, seed=1)
    table = {}
    for features in ("backbone", "theta"):
        table[features] = {}
        for chunk in (ops.ETA_CHUNK, None):
            objective = functools.partial(actx_objective, loss_features=features, chunk=chunk)
            table[features][chunk] = peak_memory(training_step(head, objective, long), cfg.device)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", help="the actx.config profile whose sizes are used")
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    parser.add_argument("--reps", type=int, default=15, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--peak-n", type=int, default=None,
                        help="side of the peak matmul (default: per device)")
    parser.add_argument("--long-steps", type=int, default=LONG_STEPS, help="time steps of the memory run")
    parser.add_argument("--long-batch", type=int, default=LONG_BATCH, help="samples of the memory run")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--allocator", choices=("reuse", "default"), default="reuse",
                        help="reuse: keep freed memory as actx.train.fit does (actx.config.reuse_freed_memory); "
                             "default: the C library's own settings")
    parser.add_argument("--profile-ops", action="store_true",
                        help="also print torch.profiler's op table of the ActX step")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    allocator = "the C library's defaults"
    if args.allocator == "reuse" and reuse_freed_memory():
        allocator = "glibc, freed memory kept for reuse as in training (actx.config.reuse_freed_memory)"
    cfg = make_config(args.profile, device=args.device)
    kind = "cuda" if cfg.device.startswith("cuda") else "cpu"
    peak_n = args.peak_n or PEAK_N[kind]
    z = step_sizes(cfg)
    where = torch.cuda.get_device_name(cfg.device) if kind == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"profile {args.profile}, {cfg.device} ({where}), torch {torch.__version__}, float32: batch "
          f"{z['batch']}, D {FEATURE_CHANNELS}, sample {z['steps']} x {z['h']} x {z['w']}, conjugate "
          f"{z['conj']} x {z['h']} x {z['w']}, {len(CLASSES)} classes; {args.reps} rounds in turns "
          f"after {args.warmup} warm-up; allocator: {allocator}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if kind == "cpu" and load > 0.5 * (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} cores: other processes compete for the "
              "CPU, so times are noisy (the ratio less so: peak and steps are timed in turns)")

    flops, times, steps = rates(cfg, args.reps, args.warmup, peak_n)
    rate = {how: {k: flops[k] / fn(t) for k, t in times.items()} for how, fn in
            (("best", min), ("median", statistics.median))}
    labels = {"peak": f"peak: float32 matmul {peak_n}^3", "actx": "ActX step (fwd, Eq. 1, 3, 4, bwd)",
              "avgpool": "average-pooling step (fwd, bwd)"}
    print(f"\n{'':<38}{'':>8}{'fastest round':>27}{'median round':>27}")
    print(f"{'step':<38}{'GFLOP':>8}" + f"{'ms':>9}{'GFLOP/s':>9}{'of peak':>9}" * 2)
    for k in flops:
        row = "".join(f"{flops[k] / r[k] * 1e3:>9.2f}{r[k] / 1e9:>9.1f}{r[k] / r['peak']:>9.3f}"
                      for r in rate.values())
        print(f"{labels[k]:<38}{flops[k] / 1e9:>8.3f}{row}")

    n = args.long_steps * z["h"] * z["w"]
    how = "torch.cuda.max_memory_allocated" if kind == "cuda" else "torch.profiler CPU allocator events"
    print(f"\npeak memory of one ActX step on a long clip: batch {args.long_batch}, sample and conjugate "
          f"{args.long_steps} steps (N = M = {n} rows); MiB allocated on top of inputs and weights ({how})")
    print(f"{'loss features':<38}{f'chunk {ops.ETA_CHUNK}':>14}{'no chunking':>14}{'ratio':>9}")
    for features, mem in memory_table(cfg, args.long_steps, args.long_batch).items():
        print(f"{features:<38}{mem[ops.ETA_CHUNK] / 2**20:>14.1f}{mem[None] / 2**20:>14.1f}"
              f"{mem[None] / max(mem[ops.ETA_CHUNK], 1):>9.2f}")

    if args.profile_ops:
        print("\ntorch.profiler, ActX step, 5 calls, ops by self time, grouped by input shapes:")
        print(op_profile(steps["actx"], cfg.device))
    print(f"\nheads ratio {rate['best']['actx'] / rate['best']['peak']:.3f}")


if __name__ == "__main__":
    main()

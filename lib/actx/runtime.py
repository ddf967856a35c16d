"""Where and how code runs: device choice, seeding, allocator tuning and the torch.distributed process group.

One module for feature extraction and training alike (actx.features.extract, actx.train.fit, the runner):

    ctx = runtime.init(cfg.device)      # joins the process group under torchrun (NCCL on CUDA, gloo on CPU)
    ctx.rank, ctx.world_size, ctx.device, ctx.is_main, ctx.barrier(), ctx.gather(obj), ctx.sum(t)

Launched by ``torchrun --nproc_per_node=N`` (env ``WORLD_SIZE`` > 1) each process takes one shard of the work and
one GPU (``LOCAL_RANK``); without a launcher everything runs in one process and the collectives do nothing.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from typing import Any

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def choose_device(name: str = "auto") -> str:
    """``"auto"`` picks ``"cuda"`` when a GPU is visible, else ``"cpu"``; an explicit name is checked."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"DEVICE={name!r} was asked for but torch {torch.__version__} sees no CUDA device; "
                           "use DEVICE='auto' or 'cpu'")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"DEVICE must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    return name


# glibc's malloc hands every freed block above its mmap threshold (128 KiB to start) back to the OS and maps
# fresh zeroed pages for the next one. A training step allocates and frees many tensors of a few MB, so each
# step page-faults its whole working set again: about 6,000 faults and 20-40 % of an ActX head step on this
# 2-core CPU (benchmarks/heads.py --allocator both prints it side by side). Raising both thresholds keeps
# freed memory in the process for reuse, the effect PyTorch's CPU performance guide gets by preloading
# jemalloc or tcmalloc. The cost: memory freed by a step is not returned to the OS until the process ends
# (the resident size stays at the step's peak).
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD = 2**30  # keep up to 1 GiB of free heap instead of returning it after each free
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers from glibc's <malloc.h>


def reuse_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process (see MMAP_THRESHOLD). Returns True when
    set, False where the C library is not glibc (macOS, Windows, musl), whose allocators need no such change.
    Idempotent; called by :func:`setup`, :func:`actx.train.fit`, feature extraction and the benchmarks."""
    import ctypes
    import ctypes.util

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD,
                                                                                TRIM_THRESHOLD) == 1
    if not ok:
        raise RuntimeError("glibc's mallopt refused the mmap / trim thresholds "
                           f"({MMAP_THRESHOLD}, {TRIM_THRESHOLD}); this C library is not the glibc expected")
    return True


# --- torch.distributed ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, CSV files and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.distributed:
            dist.barrier()

    def any_true(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (so that all ranks stop together)."""
        import torch
        import torch.distributed as dist

        if not self.distributed:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``values`` over ranks (a copy; unchanged in one process)."""
        import torch.distributed as dist

        values = values.to(self.device, copy=True)
        if self.distributed:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` in one process."""
        import torch.distributed as dist

        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        import torch.distributed as dist

        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init(device: str | torch.device = "cpu") -> Context:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); else a one-process context.

    Under torchrun a CUDA ``device`` becomes ``cuda:LOCAL_RANK`` (one GPU per process). The group is created
    once and kept for later calls (several heads trained in one script); :func:`shutdown` ends it.
    """
    import torch
    import torch.distributed as dist

    device = torch.device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(rank=0, world_size=1, device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != world:
        raise RuntimeError(f"WORLD_SIZE={world} but the process group has {dist.get_world_size()} processes")
    return Context(rank=dist.get_rank(), world_size=world, device=device)


def shutdown() -> None:
    """End the process group that :func:`init` started (call once at the end of a torchrun script)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

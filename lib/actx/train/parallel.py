"""torch.distributed data parallel: process group set-up under torchrun, and the few collectives the loop
needs.

Launched by ``torchrun --nproc_per_node=N`` (env ``WORLD_SIZE`` > 1) the loop joins the process group (NCCL on
CUDA, gloo on CPU), each process takes one shard of every epoch (DistributedSampler) and one GPU
(``LOCAL_RANK``); without a launcher everything runs in one process and these helpers do nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


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
        if self.distributed:
            dist.barrier()

    def any_true(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (so that all ranks stop together)."""
        if not self.distributed:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``values`` over ranks (a copy; unchanged in one process)."""
        values = values.to(self.device, copy=True)
        if self.distributed:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
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
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

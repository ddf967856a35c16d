"""Mixed precision on CUDA: which autocast dtype a run uses, and whether it needs a gradient scaler.

Default ("auto"): bfloat16 autocast on CUDA devices that support it (Ampere and newer, e.g. H100), else
float16 with a GradScaler; off on CPU. bfloat16 is preferred because it keeps float32's exponent range: a loss
or gradient cannot overflow or underflow, so no loss scaling is needed and a non-finite loss really means
divergence; its 8-bit mantissa is enough for the heads' convolutions and matmuls, and autocast keeps
reductions and losses in float32.
"""

from __future__ import annotations

import contextlib

import torch


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` ("auto", "off", "bf16", "fp16") on ``device``; None: plain float32."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None  # CPU runs stay in float32: exact, and comparable with the tests
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device (got {device}); use amp='off' or 'bf16' on CPU")
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A context manager: torch.autocast with ``dtype``, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler that is active only for float16 (bfloat16 and float32 need no loss scaling)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

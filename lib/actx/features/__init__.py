"""Feature maps on disk: optical flow, batch extraction into a feature store, and reading maps for training.

- :mod:`.flow`: dense optical flow (DIS or TV-L1), clipped and scaled as I3D's flow input.
- :mod:`.store`: :class:`FeatureStore`, float16 (D, T', h, w) arrays per clip and stream plus an index.
- :mod:`.extract`: :func:`extract` (resumable, overlapped decode / compute, torchrun shards) and
  :func:`ensure_features` (load-or-compute under ``cfg.cache / "features"``).
- :mod:`.reader`: :class:`FeatureDataset`, memory-mapped training samples, whole clips or time :class:`Window` s.

Command line (also under ``torchrun``): ``python -m actx.features --help``.
"""

from .extract import (BATCH_FRAMES, TIME_POOLS, TIME_STRIDE, middle_frames, step_frames, ExtractSummary, encode_clip, ensure_features, extract,
                      load_backbone, pool_time, prepare_backbone, steps_for, store_root)
from .flow import FLOW_BOUND, compute_flow, flow_to_rgb, raw_flow, scale_flow
from .reader import FeatureDataset, Window, frames_to_steps
from .store import FeatureStore

__all__ = ["BATCH_FRAMES", "TIME_POOLS", "TIME_STRIDE", "middle_frames", "step_frames", "ExtractSummary", "encode_clip", "ensure_features", "extract",
           "load_backbone", "pool_time", "prepare_backbone", "steps_for", "store_root", "FLOW_BOUND",
           "compute_flow", "flow_to_rgb", "raw_flow", "scale_flow", "FeatureDataset", "Window", "frames_to_steps",
           "FeatureStore"]

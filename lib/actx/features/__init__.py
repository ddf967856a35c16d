"""Feature maps on disk: optical flow, batch extraction into a feature store, and reading maps for training.

- :mod:`.flow`: dense optical flow (DIS or TV-L1), clipped and scaled as I3D's flow input.
- :mod:`.store`: :class:`FeatureStore`, float16 (D, T', h, w) arrays per clip and stream plus an index.
- :mod:`.extract`: :func:`extract` (resumable, overlapped decode / compute, torchrun shards) and
  :func:`ensure_features` (load-or-compute under ``cfg.cache / "features"``).
- :mod:`.geometry`: where each map cell sits on the frame (the backbone's real strides and padding).
- :mod:`.reader`: :class:`FeatureDataset`, memory-mapped training samples, whole clips or time :class:`Window` s.

Command line (also under ``torchrun``): ``python -m actx.features --help``.
"""

from .extract import (BATCH_FRAMES, TIME_POOLS, TIME_STRIDE, ExtractSummary, encode_clip, ensure_features, extract,
                      frames_per_step, load_backbone, mean_by_step, middle_frames, pool_time, prepare_backbone, sampled_frames,
                      step_frames, steps_for, store_root)
from .flow import FLOW_BOUND, compute_flow, compute_flow_at, flow_to_rgb, raw_flow, scale_flow
from .geometry import MapGeometry, backbone_geometry, map_geometry
from .reader import FeatureDataset, Window, frames_to_steps
from .store import FeatureStore

__all__ = ["BATCH_FRAMES", "TIME_POOLS", "TIME_STRIDE", "middle_frames", "step_frames", "sampled_frames",
           "frames_per_step", "mean_by_step", "ExtractSummary", "encode_clip", "ensure_features", "extract",
           "load_backbone", "pool_time", "prepare_backbone", "steps_for", "store_root", "FLOW_BOUND",
           "compute_flow", "compute_flow_at", "MapGeometry", "backbone_geometry", "map_geometry", "flow_to_rgb", "raw_flow", "scale_flow", "FeatureDataset", "Window", "frames_to_steps",
           "FeatureStore"]

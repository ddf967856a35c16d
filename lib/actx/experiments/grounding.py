"""Where a trained head looks: its maps S and C scored against the benchmark's actor masks.

The papers could not measure this (their data sets have no actor masks); the embedded benchmark renders them.
For every evaluated clip, the actor mask (``load_annotation(record)["actor_mask"]``, (T, H, W)) is cut to the
action window the maps cover, put on the map grid (:func:`actx.metrics.mask_to_grid`: the fraction of each
cell the actor covers) and scored with :func:`actx.metrics.grounding_metrics`: the share of S's mass on the
actor, the pointing game, and the share of C's mass on the background. Heads without attention (average
pooling, ACF, EEP on average pooling) return uniform maps, which score the chance level (the actor's area
fraction); heads without a context map (attentional pooling) get NaN for the context metric.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from actx.metrics import grounding_metrics, mask_to_grid

from .runner import RunResult

# Spatial stride of the stored maps in pixels of the backbone's input: EfficientNet-Lite0's last map and I3D's
# Mixed_5c both have stride 32 with "same" padding, so map cell j covers input pixels [32 j, 32 (j + 1)).
SPACE_STRIDE = 32


def space_stride(cfg: Any, mask_height: int) -> int:
    """The map cell in pixels of frames (or masks) of height ``mask_height``: SPACE_STRIDE scaled by how the
    frames are resized for the backbone (cfg.features["size"]); ValueError when that is not a whole number."""
    size = cfg.features.get("size")
    scale = 1.0 if not size else mask_height / float(size[0])
    stride = SPACE_STRIDE * scale
    if abs(stride - round(stride)) > 1e-6:
        raise ValueError(f"actor masks of height {mask_height} and backbone input height {size[0]} give a "
                         f"map stride of {stride:.3f} mask pixels, not a whole number; grounding needs masks "
                         "at a size whose ratio to the backbone input, times 32, is an integer")
    return int(round(stride))


def frame_window(record: Any, start: int, end: int, size: tuple[int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Frames [start, end) of a benchmark record and its actor mask on the same pixels: (T, H, W, 3) uint8 and
    (T, H, W) bool. ``size`` (H, W) resizes both (the mask by nearest neighbour), e.g. to the backbone's input."""
    import cv2

    from actx.data.synthetic import load_annotation
    from actx.video import read_video

    frames = read_video(record.video, size=size)[start:end]
    actor = load_annotation(record)["actor_mask"][start:end]
    if size is not None and actor.shape[1:] != tuple(size):
        h, w = size
        resize = lambda m: cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)  # noqa: E731
        actor = np.stack([resize(m) for m in actor]) > 0
    return frames, actor


def actor_grids(cfg: Any, result: RunResult, split: str, records: Sequence[Any]) -> np.ndarray:
    """(N, T, h, w) actor coverage of every map cell of ``result.maps[split]`` (0 at padded steps)."""
    from actx.data.synthetic import load_annotation

    maps = result.maps[split]
    n, t, h, w = maps["S"].shape
    by_id = {r.id: r for r in records}
    missing = [i for i in result.ids[split] if i not in by_id]
    if missing:
        raise KeyError(f"grounding: no record for clips {missing[:5]} of split {split!r}")
    stride = int(cfg.features["time_stride"])
    out = np.zeros((n, t, h, w))
    for i, clip in enumerate(result.ids[split]):
        actor = load_annotation(by_id[clip])["actor_mask"]  # (T_frames, H, W) bool
        a0, a1 = (int(v) for v in result.windows[split][i])
        steps = int(maps["mask"][i].sum())
        grid = mask_to_grid(actor[a0:a1], (steps, h, w), stride, space_stride(cfg, actor.shape[1]))
        out[i, :steps] = grid  # (T', h, w)
    return out


def _grid_key(result: RunResult, split: str) -> tuple:
    """What a run's actor grids depend on: its clips, their windows and the maps' shape (the same for every
    run on the same features)."""
    windows = np.asarray(result.windows[split])
    return (tuple(result.ids[split]), windows.tobytes(), tuple(result.maps[split]["S"].shape),
            np.asarray(result.maps[split]["mask"]).tobytes())


def grounding(cfg: Any, result: RunResult, split: str = "test", records: Sequence[Any] | None = None,
              per_sample: bool = False, grids: dict | None = None) -> dict[str, Any]:
    """Grounding metrics of a run's maps on ``split``: actx.metrics.grounding_metrics against the actor masks.

    Returns {"action_in_actor", "pointing", "context_on_background", "actor_fraction", "n"} (means over clips;
    with per_sample=True the (N,) arrays). ``records``: the split's records (default: the benchmark's).
    ``grids``: a dict that keeps the actor grids between calls, so runs on the same clips and windows load the
    annotations once (grounding_table passes one).
    """
    if split not in result.maps:
        raise KeyError(f"run {result.method} ({result.stream}) has no maps for split {split!r}; it has "
                       f"{sorted(result.maps)} (a late fusion has none)")
    if records is None:
        from .runner import benchmark_splits

        records = benchmark_splits(cfg, (split,))[split]
    maps = result.maps[split]
    grids = {} if grids is None else grids
    key = _grid_key(result, split)
    if key not in grids:
        grids[key] = actor_grids(cfg, result, split, records)
    return grounding_metrics(maps["S"], maps.get("C"), grids[key], maps["mask"], per_sample=per_sample)


def grounding_table(cfg: Any, results: Mapping[str, RunResult], split: str = "test",
                    records: Sequence[Any] | None = None, grids: dict | None = None):
    """One row of grounding metrics per named run (a pandas DataFrame); the actor masks are loaded once (pass
    the same ``grids`` dict to several calls to share them further, e.g. between streams)."""
    import pandas as pd

    if records is None:
        from .runner import benchmark_splits

        records = benchmark_splits(cfg, (split,))[split]
    grids = {} if grids is None else grids
    return pd.DataFrame({name: grounding(cfg, r, split, records, grids=grids) for name, r in results.items()}).T

"""Where a trained head looks: its maps S and C scored against the benchmark's actor masks.

The papers could not measure this (their data sets have no actor masks); the embedded benchmark renders them.
For every evaluated clip, the actor mask (``load_annotation(record)["actor_mask"]``, (T, H, W)) is cut to the
action window the maps cover, put on the map grid (:func:`actx.metrics.mask_to_grid`: the fraction of each
cell's footprint the actor covers, the footprints from the backbone's real padding and stride, :func:`map_cells`) and scored with :func:`actx.metrics.grounding_metrics`: the share of S's mass on the
actor, the pointing game, and the share of C's mass on the background. Heads without attention (average
pooling, ACF, EEP on average pooling) return uniform maps, which score the chance level (the actor's area
fraction); heads without a context map (attentional pooling) get NaN for the context metric.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from actx.features.geometry import MapGeometry, backbone_geometry
from actx.metrics import grounding_metrics, mask_to_grid

from .runner import RunResult

def map_cells(cfg: Any, frame_hw: tuple[int, int], cells: tuple[int, int] | None = None) -> MapGeometry:
    """Where the stored maps' cells sit on frames (or masks) of ``frame_hw`` (H, W): the geometry of
    cfg.features["backbone"] at its input size (cfg.features["size"]; the frames' own size when None), derived
    from the backbone's real strides and "SAME" padding (:func:`actx.features.geometry.map_geometry`) and scaled
    to these frames. ``cells``: the map's (h, w), checked against the backbone's. Its ``.bounds()`` are the cell
    footprints grounding scores; pass it as ``cell=`` to the heat-map plots of :mod:`actx.plots`."""
    size = tuple(cfg.features.get("size") or frame_hw)
    geometry = backbone_geometry(str(cfg.features["backbone"]), size)
    if cells is not None and tuple(cells) != geometry.cells:
        raise ValueError(f"maps of {tuple(cells)} cells do not match {cfg.features['backbone']} at {size}, which "
                         f"gives {geometry.cells}: were the maps extracted with another backbone or size?")
    return geometry.scaled_to(*frame_hw)


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
    maps = result.maps[split]
    return actor_coverage(cfg, result.ids[split], result.windows[split], maps["mask"], maps["S"].shape, records,
                          f" of split {split!r}")


def actor_coverage(cfg: Any, ids: Sequence[str], windows: Sequence[Sequence[int]], mask: np.ndarray,
                   shape: Sequence[int], records: Sequence[Any], where: str = "") -> np.ndarray:
    """(N, T, h, w) = ``shape`` actor coverage of every map cell for the clips ``ids`` over their action
    ``windows`` [a0, a1), ``mask`` (N, T) True at real steps (0 at padded steps); the actor masks from the
    clips' annotations in ``records`` (a KeyError names missing clips, ``where`` says where they were asked)."""
    from actx.data.synthetic import load_annotation

    n, t, h, w = (int(v) for v in shape)
    by_id = {r.id: r for r in records}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"grounding: no record for clips {missing[:5]}{where}")
    out = np.zeros((n, t, h, w))
    for i, clip in enumerate(ids):
        actor = load_annotation(by_id[clip])["actor_mask"]  # (T_frames, H, W) bool
        steps = int(mask[i].sum())
        out[i, :steps] = window_coverage(cfg, actor, windows[i], (steps, h, w))  # (T', h, w)
    return out


def window_coverage(cfg: Any, frames_mask: np.ndarray, window: Sequence[int], grid: Sequence[int]) -> np.ndarray:
    """The share of every map cell's footprint a pixel mask covers over an action window: frames [a0, a1) of
    ``frames_mask`` (T_frames, H, W) -> (T, h, w), with the backbone's cell footprints (:func:`map_cells`) and
    cfg.features["time_stride"] frames per step."""
    t, h, w = (int(g) for g in grid)
    a0, a1 = (int(v) for v in window)
    bounds = map_cells(cfg, frames_mask.shape[1:], (h, w)).bounds()
    return mask_to_grid(frames_mask[a0:a1], (t, h, w), int(cfg.features["time_stride"]), bounds=bounds)


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

"""Figures: frames with their ground truth, sample grids, clip viewers, co-occurrence and count plots.

Functions return matplotlib figures (or widgets) and never call ``plt.show()``; notebooks save what they keep with
:func:`save_figure`. Heavy imports (pyplot, seaborn, ipywidgets) happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

MASK_COLOUR = (0, 255, 80)  # RGB of the actor-mask tint
BOX_COLOURS = ((255, 230, 0), (0, 200, 255))  # actor boxes: first actor, second actor
SKELETON_COLOUR = (255, 60, 200)


def overlay(frame: np.ndarray, mask: np.ndarray | None = None, boxes: np.ndarray | None = None,
            keypoints: np.ndarray | None = None, bones: Sequence[tuple[int, int]] = (), alpha: float = 0.45,
            scale: int = 1) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 with a mask tint (H, W) bool, boxes (N, 4) xyxy and skeletons
    (P, K, 3) (x, y, visible) drawn on it, optionally enlarged ``scale`` times first (thin lines stay thin)."""
    img = frame.copy()
    if mask is not None:
        tint = np.asarray(MASK_COLOUR, np.float32)
        img[mask] = ((1 - alpha) * img[mask] + alpha * tint).astype(np.uint8)
    if scale != 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if keypoints is not None:
        for person in np.asarray(keypoints):
            for a, b in bones:
                if person[a, 2] > 0 and person[b, 2] > 0:
                    p, q = person[a, :2] * scale, person[b, :2] * scale
                    cv2.line(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), SKELETON_COLOUR, 1, cv2.LINE_AA)
    if boxes is not None:
        for i, box in enumerate(np.asarray(boxes, float).reshape(-1, 4)):
            if np.isfinite(box).all():
                x1, y1, x2, y2 = (box * scale).round().astype(int)
                cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), BOX_COLOURS[i % len(BOX_COLOURS)], 1)
    return img


def image_grid(images: Sequence[np.ndarray], rows: int, cols: int, titles: Sequence[str] | None = None,
               row_labels: Sequence[str] | None = None, size: float = 1.6):
    """A figure showing ``rows * cols`` RGB images (row-major), with optional titles and row labels."""
    import matplotlib.pyplot as plt

    h, w = images[0].shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size * w / h, rows * size), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if k < len(images):
            ax.imshow(images[k])
            if titles is not None:
                ax.set_title(titles[k], fontsize=7)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


def cooccurrence_heatmap(matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], ax=None, title: str = "",
                         normalise: bool = True):
    """Heat map of an (action x scene) count matrix, each row normalised to fractions when ``normalise``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = np.asarray(matrix, float)
    if normalise:
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(m, ax=ax, xticklabels=cols, yticklabels=rows, cmap="viridis", vmin=0, vmax=1 if normalise else None,
                cbar=True, square=True, linewidths=0.3, annot=False)
    ax.set_xlabel("scene")
    ax.set_ylabel("action")
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    return ax.figure


def count_plot(values: Sequence[str], order: Sequence[str], hue: Sequence[str] | None = None, ax=None,
               title: str = "", xlabel: str = ""):
    """Horizontal bar chart of how often each value occurs (seaborn countplot), optionally split by ``hue``."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    df = pd.DataFrame({"value": list(values)})
    if hue is not None:
        df["hue"] = list(hue)
    sns.countplot(data=df, y="value", order=list(order), hue="hue" if hue is not None else None, ax=ax)
    ax.set_ylabel(xlabel)
    ax.set_xlabel("count")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return ax.figure


def clip_viewer(frames: np.ndarray, masks: np.ndarray | None = None, boxes: np.ndarray | None = None,
                keypoints: np.ndarray | None = None, bones: Sequence[tuple[int, int]] = (),
                marks: tuple[int, int] | None = None, scale: int = 2):
    """An ipywidgets viewer: a frame slider over ``frames`` (T, H, W, 3) with the ground truth overlaid.

    ``marks`` = (start, end) frame range of the action, shown in the caption. Returns the widget (display it); it
    renders on demand and never blocks (safe under papermill).
    """
    import ipywidgets as widgets

    T = len(frames)
    image = widgets.Image(format="png")
    caption = widgets.Label()
    slider = widgets.IntSlider(value=0, min=0, max=T - 1, step=1, description="frame", continuous_update=True)

    def show(t: int) -> None:
        img = overlay(frames[t], None if masks is None else masks[t], None if boxes is None else boxes[t],
                      None if keypoints is None else keypoints[t], bones, scale=scale)
        image.value = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()
        state = ""
        if marks is not None:
            s, e = marks
            state = "pre-action" if t < s else ("action" if t < e else "post-action")
        caption.value = f"frame {t}/{T - 1}  {state}"

    slider.observe(lambda change: show(change["new"]), names="value")
    show(0)
    return widgets.VBox([slider, image, caption])


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure as PNG (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# --- Maps of a head over the video (notebook 06) --------------------------------------------------------
MAP_CELL = 32  # pixels per map cell when no geometry is given (a plain stride-32 grid from the top-left corner)


def upsample_map(m: np.ndarray, size: tuple[int, int], cell=MAP_CELL) -> np.ndarray:
    """An (h, w) map on the backbone's grid -> (H, W) float32 over the frame, bilinear between cell centres.

    ``cell``: a :class:`actx.features.geometry.MapGeometry` (``actx.experiments.map_cells(cfg, (H, W))``): cell
    (i, j) is drawn centred on the pixel the backbone's strides and padding centre it on, the values interpolated
    between centres and held beyond the outer ones. An int: cells of that many pixels from the top-left corner
    (the grid resized to (h cell, w cell) and cut to the frame).
    """
    m = np.asarray(m, np.float32)
    if m.ndim != 2:
        raise ValueError(f"upsample_map needs an (h, w) map, got shape {m.shape}")
    H, W = size
    h, w = m.shape
    if not isinstance(cell, (int, np.integer)):
        geometry = cell if tuple(cell.size) == (H, W) else cell.scaled_to(H, W)
        if tuple(geometry.cells) != (h, w):
            raise ValueError(f"a {h}x{w} map drawn with the geometry of a {geometry.cells} map")
        return _interpolate(_interpolate(m, geometry.rows, H, 0), geometry.cols, W, 1)
    if h * cell < H or w * cell < W or (h - 1) * cell >= H or (w - 1) * cell >= W:
        raise ValueError(f"a {h}x{w} map of {cell}-pixel cells does not cover a {H}x{W} frame; pass the cell "
                         "size that matches the frame, or the maps' geometry (actx.experiments.map_cells)")
    big = cv2.resize(m, (w * cell, h * cell), interpolation=cv2.INTER_LINEAR)  # (h cell, w cell)
    return big[:H, :W]


def _interpolate(m: np.ndarray, axis_geometry, n: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``m`` along ``axis`` from cell centres (axis_geometry) to ``n`` pixel centres."""
    cells = m.shape[axis]
    pos = np.clip((np.arange(n) - axis_geometry.offset) / axis_geometry.stride, 0, cells - 1)  # (n,) in cells
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, cells - 1)
    frac = (pos - lo).astype(np.float32)
    a, b = np.take(m, lo, axis=axis), np.take(m, hi, axis=axis)
    shape = [1, 1]
    shape[axis] = n
    return a * (1 - frac.reshape(shape)) + b * frac.reshape(shape)


def heat_overlay(frame: np.ndarray, m: np.ndarray, vmin: float, vmax: float, cell=MAP_CELL,
                 cmap: str = "magma", alpha: float = 0.6) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with the (h, w) map ``m`` upsampled over it in colour: (H, W, 3) uint8.

    Values are scaled from [vmin, vmax] to the colour map (clipped); ``alpha`` is the map's opacity.
    """
    import matplotlib

    up = upsample_map(m, frame.shape[:2], cell)  # (H, W)
    scaled = np.clip((up - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    colour = matplotlib.colormaps[cmap](scaled)[..., :3] * 255.0  # (H, W, 3)
    return ((1 - alpha) * frame.astype(np.float32) + alpha * colour).round().astype(np.uint8)


def maps_over_frames(frames: np.ndarray, maps: dict[str, np.ndarray], time_stride: int = 8,
                     cell=MAP_CELL, ranges: dict[str, tuple[float, float]] | None = None,
                     actor: np.ndarray | None = None, cmap: str = "magma", size: float = 1.5,
                     title: str = ""):
    """A grid of maps over the video: one row per map in ``maps`` ({name: (T', h, w)}), one column per step.

    frames (T, H, W, 3) uint8 are the window the maps cover (step t spans frames [t stride, (t + 1) stride);
    its middle frame is shown). ``ranges`` fixes a row's colour range (default: that map's min and max over
    all steps, so the steps of a row are comparable); ``actor`` (T, H, W) bool outlines the actor in cyan.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not maps:
        raise ValueError("maps_over_frames needs at least one map")
    steps = {np.asarray(m).shape[0] for m in maps.values()}
    if len(steps) != 1:
        raise ValueError(f"every map must have the same number of steps, got {sorted(steps)}")
    T = steps.pop()
    H, W = frames.shape[1:3]
    figsize = (T * size * W / H + 1.2, len(maps) * size + 0.3 * bool(title))
    fig, axes = plt.subplots(len(maps), T, figsize=figsize, squeeze=False, layout="constrained")
    for row, (name, m) in enumerate(maps.items()):
        m = np.asarray(m, np.float32)
        lo, hi = (ranges or {}).get(name, (float(m.min()), float(m.max())))
        for t in range(T):
            mid = min(t * time_stride + time_stride // 2, len(frames) - 1)
            ax = axes[row, t]
            ax.imshow(heat_overlay(frames[mid], m[t], lo, hi, cell, cmap))
            if actor is not None and actor[mid].any():
                ax.contour(actor[mid].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(f"step {t}", fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=8)
        bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=axes[row, :].tolist(), fraction=0.05,
                           pad=0.02, aspect=10)
        bar.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


# --- Maps of several clips side by side (notebook 08, ActX Fig. 4) -----------------------------------------
def maps_by_clip(frames: np.ndarray, maps: dict[str, np.ndarray], labels: Sequence[str] | None = None,
                 ranges: dict[str, tuple[float, float]] | None = None, actors: np.ndarray | None = None,
                 cell=MAP_CELL, cmap: str = "magma", size: float = 1.5, title: str = ""):
    """One row per clip: its frame, then every map of ``maps`` over it (the layout of ActX Fig. 4).

    frames (N, H, W, 3) uint8, one frame per clip; maps {name: (N, h, w)}, each clip's map at that frame's
    time step; labels: N row labels. ``ranges`` fixes a column's colour range (default: that map's min and max
    over all clips, so the clips of a column are comparable); ``actors`` (N, H, W) bool outlines each actor in
    cyan.
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    frames = np.asarray(frames)
    n = len(frames)
    bad = {name: np.asarray(m).shape for name, m in maps.items() if np.asarray(m).ndim != 3 or len(m) != n}
    if bad or frames.ndim != 4:
        shapes = bad or {k: np.shape(v) for k, v in maps.items()}
        raise ValueError(f"maps_by_clip needs frames (N, H, W, 3) and maps (N, h, w) with the same N; got "
                         f"frames {frames.shape} and maps {shapes}")
    H, W = frames.shape[1:3]
    cols = 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(cols * size * W / H, n * size + 0.6), squeeze=False)
    for i in range(n):
        panels = [frames[i]]
        for name, m in maps.items():
            m = np.asarray(m, np.float32)
            lo, hi = (ranges or {}).get(name, (float(m.min()), float(m.max())))
            panels.append(heat_overlay(frames[i], m[i], lo, hi, cell, cmap))
        for j, img in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img)
            if actors is not None and actors[i].any():
                ax.contour(actors[i].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title("frame" if j == 0 else list(maps)[j - 1], fontsize=8)
        if labels is not None:
            axes[i, 0].set_ylabel(labels[i], fontsize=7)
    for j, (name, m) in enumerate(maps.items(), start=1):
        lo, hi = (ranges or {}).get(name, (float(np.min(m)), float(np.max(m))))
        bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=axes[:, j].tolist(),
                           orientation="horizontal", fraction=0.03, pad=0.02)
        bar.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


# --- Live controls that redraw a figure (notebook 06) -------------------------------------------------------
def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (it is not shown again by the notebook)."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def figure_explorer(render, controls: dict, dpi: int = 100):
    """An ipywidgets panel: ``controls`` ({name: value widget}) above an image that ``render`` redraws.

    ``render(**values) -> (figure, caption)`` is called once now and again whenever a control's value changes;
    the figure is shown as a PNG image (closed after rendering), the caption as text. Unlike an Output widget,
    nothing goes back to the kernel while a cell runs, so executing the notebook (papermill, nbval) never waits
    on a front end. Returns the panel (display it).
    """
    import ipywidgets as widgets

    image = widgets.Image(format="png")
    caption = widgets.Label()

    def redraw(_=None) -> None:
        fig, text = render(**{name: c.value for name, c in controls.items()})
        image.value = figure_png(fig, dpi)
        caption.value = text

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    rows = [widgets.HBox(list(controls.values())[k:k + 2]) for k in range(0, len(controls), 2)]
    return widgets.VBox([*rows, caption, image])

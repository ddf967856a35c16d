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

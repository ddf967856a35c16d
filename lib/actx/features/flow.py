"""Dense optical flow for the flow stream, scaled the way I3D's flow network expects it.

ActX supplement (001, section 2.1) extracts features with *two-stream* I3D: one network on RGB frames, one on
optical flow. I3D (Carreira and Zisserman 2017) computes TV-L1 flow on grey frames, truncates it to [-20, 20]
pixels and rescales it to [-1, 1]; :func:`compute_flow` does exactly that, with OpenCV's TV-L1 (``cv2.optflow``,
``method="tvl1"``) or with DIS (``method="dis"``, the fast default: about 1300 frame pairs/s at 128x176 on one
core against about 4 for TV-L1; see shared/PLATFORM.md).

Convention (OpenCV's): ``flow[t, y, x] = (dx, dy)`` such that ``frame[t](y, x) ~ frame[t+1](y + dy, x + dx)``;
channel 0 is horizontal, channel 1 vertical.

Length: T frames give T - 1 frame pairs. :func:`compute_flow` returns **T** fields, the last one a copy of the one
before (``repeat_last=True``), so that the flow map and the RGB map of a clip have the same number of frames and
hence the same number of time steps after pooling by 8; frame t's flow then always describes the motion *leaving*
frame t. ``repeat_last=False`` returns the T - 1 raw pairs.
"""

from __future__ import annotations

import numpy as np

# I3D's truncation bound in pixels per frame: flow is clipped to [-FLOW_BOUND, FLOW_BOUND] and divided by it.
FLOW_BOUND = 20.0
# DIS preset for method="dis": "fast" recovered a 2 px/frame pan exactly at ~1300 pairs/s (128x176);
# "ultrafast" is ~2x faster but blockier, "medium" ~10x slower (PLATFORM.md).
DIS_PRESET = "fast"

METHODS = ("dis", "tvl1")


def _gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luminance (ITU-R 601 weights, as cv2.cvtColor)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def make_flow_solver(method: str = "dis", preset: str = DIS_PRESET):
    """An OpenCV dense optical-flow object with a ``.calc(prev, next, None)`` method.

    method  "dis" (Dense Inverse Search, preset "ultrafast" | "fast" | "medium") or "tvl1" (Dual TV-L1, the
            algorithm I3D was trained with; from the contrib module ``cv2.optflow``).
    """
    import cv2

    if method == "dis":
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        if preset not in presets:
            raise ValueError(f"DIS preset must be one of {sorted(presets)}, got {preset!r}")
        return cv2.DISOpticalFlow_create(presets[preset])
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise RuntimeError("method='tvl1' needs OpenCV's contrib module cv2.optflow: install "
                               "opencv-contrib-python-headless (see environment.yml), or use method='dis'")
        return cv2.optflow.DualTVL1OpticalFlow_create()
    raise ValueError(f"flow method must be one of {METHODS}, got {method!r}")


def raw_flow(frames: np.ndarray, method: str = "dis", preset: str = DIS_PRESET) -> np.ndarray:
    """Unscaled flow in pixels per frame between consecutive frames.

    frames  uint8 (T, H, W, 3) RGB, T >= 2
    returns float32 (T - 1, H, W, 2), (dx, dy) per pixel
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    solver = make_flow_solver(method, preset)
    T, H, W, _ = frames.shape
    out = np.empty((T - 1, H, W, 2), dtype=np.float32)  # (T-1, H, W, 2)
    prev = _gray(frames[0])
    for t in range(1, T):
        cur = _gray(frames[t])
        out[t - 1] = solver.calc(prev, cur, None)
        prev = cur
    return out


def scale_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """I3D's flow input: clip to [-bound, bound] pixels and divide by bound -> values in [-1, 1] (float32)."""
    return (np.clip(flow, -bound, bound) / bound).astype(np.float32, copy=False)


def compute_flow(frames: np.ndarray, method: str = "dis", bound: float = FLOW_BOUND, repeat_last: bool = True,
                 preset: str = DIS_PRESET) -> np.ndarray:
    """The flow stream's input for one clip: flow between consecutive frames, clipped and scaled to [-1, 1].

    frames  uint8 (T, H, W, 3) RGB
    returns float32 (T, H, W, 2) with the last field repeated (``repeat_last=True``, see the module docstring),
            or (T - 1, H, W, 2). A single frame (T = 1) gives one all-zero field when ``repeat_last``.
    """
    frames = np.asarray(frames)
    if repeat_last and frames.ndim == 4 and len(frames) == 1:
        return np.zeros((1, *frames.shape[1:3], 2), dtype=np.float32)  # (1, H, W, 2): no motion observed
    flow = scale_flow(raw_flow(frames, method, preset), bound)  # (T-1, H, W, 2)
    if repeat_last:
        flow = np.concatenate([flow, flow[-1:]], axis=0)  # (T, H, W, 2)
    return flow


def compute_flow_at(frames: np.ndarray, index, method: str = "dis", bound: float = FLOW_BOUND,
                    preset: str = DIS_PRESET) -> np.ndarray:
    """:func:`compute_flow` at the frames ``index`` only: (len(index), H, W, 2), entry n the scaled flow leaving
    frame index[n] (the pair (i, i + 1); the last frame repeats the flow of the pair before it, the
    ``repeat_last`` convention). What frame sampling needs: k of every 8 frames cost k flow fields, not 8."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    index = np.asarray(index, np.int64)
    T = len(frames)
    if len(index) and (index.min() < 0 or index.max() >= T):
        raise ValueError(f"frame index out of range for a clip of {T} frames: {index.min()}..{index.max()}")
    out = np.zeros((len(index), *frames.shape[1:3], 2), dtype=np.float32)
    if T < 2:
        return out  # one frame: no motion observed
    solver = make_flow_solver(method, preset)
    for n, i in enumerate(index):
        a = min(int(i), T - 2)  # the last frame: the pair before it
        out[n] = solver.calc(_gray(frames[a]), _gray(frames[a + 1]), None)
    return scale_flow(out, bound)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = 1.0) -> np.ndarray:
    """Visualise flow with the usual colour wheel: hue = direction, brightness = magnitude.

    flow  (..., H, W, 2) scaled or raw flow
    max_magnitude  magnitude shown at full brightness (1.0 = the clip bound for scaled flow); None = the maximum
    returns uint8 (..., H, W, 3) RGB
    """
    import cv2

    flow = np.asarray(flow, dtype=np.float32)
    lead = flow.shape[:-3]
    flat = flow.reshape(-1, *flow.shape[-3:])  # (N, H, W, 2)
    mag, ang = cv2.cartToPolar(flat[..., 0].reshape(-1), flat[..., 1].reshape(-1))
    mag, ang = mag.reshape(flat.shape[:-1]), ang.reshape(flat.shape[:-1])  # (N, H, W)
    top = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    hsv = np.empty((*flat.shape[:-1], 3), dtype=np.uint8)  # (N, H, W, 3)
    hsv[..., 0] = (ang * (90.0 / np.pi)).astype(np.uint8)  # OpenCV hue is 0..180
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / max(top, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    rgb = np.stack([cv2.cvtColor(h, cv2.COLOR_HSV2RGB) for h in hsv])  # (N, H, W, 3)
    return rgb.reshape(*lead, *rgb.shape[1:])

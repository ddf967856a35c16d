"""Scenes (the context) and the camera.

Twelve scene types, one per action class (``SCENES[k]`` is the biased scene of ``CLASSES[k]``): seven built from
real photographs that ship inside the scikit-image wheel (read from its package folder, never downloaded) and five
procedural rooms. Each type is recognisable at a glance (its photograph or layout and palette) but varies per
sample: random crops, flips, colour jitter, procedural layouts and palettes, and a few loose props (phones, cups,
balls - the action objects appear everywhere, so they alone do not give the class away).

A background is painted once per video on a canvas larger than the frame by ``MARGIN`` on every side; the camera
(pan, zoom, shake) is an affine map from world (= canvas minus the margin) to frame pixels per time step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .skeleton import Canvas, OBJECTS, draw_object

SCENES = ("office", "cafe", "park", "gravel_yard", "launch_pad", "stage", "gym", "brick_alley", "library",
          "garage", "night_sky", "kitchen")
PHOTO = {"cafe": "coffee.png", "park": "grass.png", "gravel_yard": "gravel.png", "launch_pad": "rocket.jpg",
         "brick_alley": "brick.png", "garage": "motorcycle_left.png", "night_sky": "hubble_deep_field.jpg"}
# Tints (RGB) for the grey-level photographs.
TINT = {"park": (70, 150, 50), "gravel_yard": (190, 165, 125), "brick_alley": (175, 80, 60)}
MARGIN = 0.15  # canvas margin per side, fraction of the frame size: room for pans and shakes
PAN = 0.06  # largest pan over a video, fraction of the frame size, at camera_motion = 1
ZOOM = 0.12  # largest zoom change over a video at camera_motion = 1
SHAKE = 1.2  # shake amplitude in pixels per 128 px of frame height at camera_motion = 1


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """An image shipped in scikit-image's package folder, as uint8 RGB (H, W, 3) (grey images as 3 equal planes)."""
    import skimage.data

    path = Path(skimage.data.__file__).parent / name
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"{path}: scikit-image's wheel should ship this image; reinstall scikit-image "
                                "(the benchmark never downloads images)")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


def canvas_size(height: int, width: int) -> tuple[int, int]:
    """(Hc, Wc) of the background canvas for frames of height x width."""
    return int(round(height * (1 + 2 * MARGIN))), int(round(width * (1 + 2 * MARGIN)))


def _jitter(img: np.ndarray, rng: np.random.Generator, hue: float = 8, sat: float = 0.2,
            bright: float = 0.15) -> np.ndarray:
    """Colour jitter: hue shift (degrees/2, OpenCV units), saturation and brightness/contrast factors."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.uniform(-hue, hue))) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - sat, 1 + sat), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    c, b = rng.uniform(1 - bright, 1 + bright), rng.uniform(1 - bright, 1 + bright)
    m = out.mean()
    return np.clip((out - m) * c + m * b, 0, 255).astype(np.uint8)


def _crop(src: np.ndarray, Hc: int, Wc: int, rng: np.random.Generator, min_area: float = 0.45) -> np.ndarray:
    """A random crop with the canvas's aspect ratio (area fraction min_area..1 of the largest), resized, maybe
    mirrored."""
    sh, sw = src.shape[:2]
    aspect = Wc / Hc
    h0 = min(sh, sw / aspect)
    s = np.sqrt(rng.uniform(min_area, 1.0))
    ch, cw = h0 * s, h0 * s * aspect
    y, x = rng.uniform(0, sh - ch), rng.uniform(0, sw - cw)
    crop = src[int(y):int(y + ch), int(x):int(x + cw)]
    out = cv2.resize(crop, (Wc, Hc), interpolation=cv2.INTER_AREA if ch > Hc else cv2.INTER_LINEAR)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


def _tinted(gray: np.ndarray, tint, rng: np.random.Generator) -> np.ndarray:
    tint = np.clip(np.asarray(tint, np.float32) * rng.uniform(0.8, 1.2, 3), 0, 255)
    g = gray[..., :1].astype(np.float32) / 255.0
    return np.clip(g * tint * 1.6, 0, 255).astype(np.uint8)


def _gradient(Hc, Wc, top, bottom) -> np.ndarray:
    a = np.linspace(0, 1, Hc, dtype=np.float32)[:, None, None]
    g = np.asarray(top, np.float32) * (1 - a) + np.asarray(bottom, np.float32) * a
    return np.broadcast_to(g, (Hc, Wc, 3)).astype(np.uint8).copy()


def _palette(rng, base, spread=25) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.asarray(base) + rng.integers(-spread, spread + 1, 3), 0, 255))


def _rect(img, x1, y1, x2, y2, colour):
    cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), colour, -1, cv2.LINE_AA)


# --- the photographs ---------------------------------------------------------------------------------------------

def _photo_scene(scene: str, Hc: int, Wc: int, rng: np.random.Generator) -> np.ndarray:
    src = photo(PHOTO[scene])
    if scene == "park":  # sky over a lawn
        horizon = int(Hc * rng.uniform(0.25, 0.4))
        img = _gradient(Hc, Wc, _palette(rng, (120, 170, 235)), _palette(rng, (225, 235, 245)))
        img[horizon:] = _tinted(_crop(src, Hc - horizon, Wc, rng), TINT[scene], rng)
        return img
    if scene in TINT:
        img = _tinted(_crop(src, Hc, Wc, rng), TINT[scene], rng)
        if scene == "brick_alley":  # asphalt at the foot of the wall
            ground = int(Hc * rng.uniform(0.75, 0.85))
            img[ground:] = _palette(rng, (70, 70, 75), 12)
        return img
    img = _jitter(_crop(src, Hc, Wc, rng), rng)
    if scene == "night_sky":  # dark hills under the sky
        xs = np.linspace(0, Wc, 9)
        ys = Hc * rng.uniform(0.72, 0.88, 9)
        poly = np.array([[0, Hc]] + [[x, y] for x, y in zip(xs, ys)] + [[Wc, Hc]], np.int32)
        cv2.fillPoly(img, [poly], _palette(rng, (25, 30, 35), 10), cv2.LINE_AA)
    return img


# --- procedural rooms ----------------------------------------------------------------------------------------------

def _office(Hc, Wc, rng):
    wall = _palette(rng, (200, 205, 215))
    img = _gradient(Hc, Wc, wall, tuple(int(c * 0.85) for c in wall))
    floor = int(Hc * rng.uniform(0.68, 0.78))
    img[floor:] = _palette(rng, (90, 100, 120), 15)
    frame_c, sky = _palette(rng, (240, 240, 240), 10), _palette(rng, (140, 190, 235))
    n = int(rng.integers(1, 4))
    for i in range(n):  # windows with panes
        cx = Wc * (i + 0.5) / n + rng.uniform(-0.05, 0.05) * Wc
        w, h, y = Wc * rng.uniform(0.14, 0.22), Hc * rng.uniform(0.22, 0.32), Hc * rng.uniform(0.08, 0.18)
        _rect(img, cx - w / 2, y, cx + w / 2, y + h, frame_c)
        _rect(img, cx - w / 2 + 3, y + 3, cx - 1, y + h - 3, sky)
        _rect(img, cx + 1, y + 3, cx + w / 2 - 3, y + h - 3, sky)
    desk = _palette(rng, (150, 110, 70))
    for i in range(int(rng.integers(1, 3))):  # desks with monitors
        x = rng.uniform(0.05, 0.7) * Wc
        w = Wc * rng.uniform(0.2, 0.3)
        top = floor - Hc * 0.12
        _rect(img, x, top, x + w, top + Hc * 0.03, desk)
        _rect(img, x + 3, top, x + 6, floor + 2, desk)
        _rect(img, x + w - 6, top, x + w - 3, floor + 2, desk)
        mx = x + w * rng.uniform(0.2, 0.6)
        _rect(img, mx, top - Hc * 0.09, mx + Wc * 0.06, top - 2, (30, 30, 35))
        _rect(img, mx + 2, top - Hc * 0.09 + 2, mx + Wc * 0.06 - 2, top - 4, _palette(rng, (80, 130, 200)))
    return img


def _kitchen(Hc, Wc, rng):
    tile = _palette(rng, (235, 230, 215), 15)
    img = np.empty((Hc, Wc, 3), np.uint8)
    img[:] = tile
    step = int(Hc * rng.uniform(0.045, 0.07))
    grout = tuple(int(c * 0.8) for c in tile)
    for y in range(0, Hc, step):
        cv2.line(img, (0, y), (Wc, y), grout, 1)
    for x in range(0, Wc, step):
        cv2.line(img, (x, 0), (x, Hc), grout, 1)
    wood = _palette(rng, (160, 110, 60), 30)
    top = int(Hc * rng.uniform(0.18, 0.26))
    _rect(img, 0, 0, Wc, top, wood)  # wall cabinets
    counter = int(Hc * rng.uniform(0.55, 0.62))
    _rect(img, 0, counter, Wc, counter + Hc * 0.03, _palette(rng, (60, 60, 60), 20))
    _rect(img, 0, counter + Hc * 0.03, Wc, Hc, wood)
    n = int(rng.integers(4, 8))
    for i in range(n + 1):  # cabinet doors and handles
        x = Wc * i / n
        cv2.line(img, (int(x), 0), (int(x), top), (60, 40, 20), 1, cv2.LINE_AA)
        cv2.line(img, (int(x), counter), (int(x), Hc), (60, 40, 20), 1, cv2.LINE_AA)
        _rect(img, x + Wc / n * 0.45, counter + Hc * 0.08, x + Wc / n * 0.55, counter + Hc * 0.1, (200, 200, 200))
    floor = int(Hc * 0.85)
    img[floor:] = _palette(rng, (120, 120, 130), 20)
    return img


def _gym(Hc, Wc, rng):
    img = np.empty((Hc, Wc, 3), np.uint8)
    img[:] = _palette(rng, (70, 120, 170), 30)
    band = int(Hc * rng.uniform(0.3, 0.4))
    _rect(img, 0, band, Wc, band + Hc * 0.04, _palette(rng, (230, 200, 40), 20))
    floor = int(Hc * rng.uniform(0.62, 0.72))
    plank = _palette(rng, (200, 140, 80), 20)
    img[floor:] = plank
    for y in np.arange(floor, Hc, max(3, Hc * 0.04)):
        cv2.line(img, (0, int(y)), (Wc, int(y)), tuple(int(c * 0.8) for c in plank), 1)
    x0, n = rng.uniform(0.05, 0.6) * Wc, int(rng.integers(4, 9))
    bars = _palette(rng, (190, 150, 100), 15)
    for i in range(n):  # wall bars
        x = x0 + i * Wc * 0.035
        cv2.line(img, (int(x), int(Hc * 0.1)), (int(x), floor), bars, max(1, Hc // 100), cv2.LINE_AA)
    for y in np.linspace(Hc * 0.12, floor, 10):
        cv2.line(img, (int(x0), int(y)), (int(x0 + (n - 1) * Wc * 0.035), int(y)), bars, 1, cv2.LINE_AA)
    return img


def _library(Hc, Wc, rng):
    wood = _palette(rng, (95, 60, 35), 15)
    img = np.empty((Hc, Wc, 3), np.uint8)
    img[:] = tuple(int(c * 0.6) for c in wood)
    rows = int(rng.integers(4, 7))
    floor = int(Hc * rng.uniform(0.8, 0.88))
    shelf_h = floor / rows
    for r in range(rows):
        y2 = (r + 1) * shelf_h
        x = 0.0
        while x < Wc:  # books of random widths, heights and colours
            w = Wc * rng.uniform(0.012, 0.03)
            bh = shelf_h * rng.uniform(0.6, 0.9)
            _rect(img, x, y2 - bh, x + w - 1, y2 - 2, _palette(rng, rng.integers(40, 200, 3), 40))
            x += w
        _rect(img, 0, y2 - 2, Wc, y2 + 2, wood)
    img[floor:] = _palette(rng, (120, 40, 40), 20)
    return img


def _stage(Hc, Wc, rng):
    img = _gradient(Hc, Wc, _palette(rng, (25, 20, 30), 10), _palette(rng, (50, 40, 50), 10))
    floor = int(Hc * rng.uniform(0.7, 0.8))
    img[floor:] = _palette(rng, (110, 70, 40), 20)
    red = np.asarray(_palette(rng, (170, 20, 30), 25), np.float32)
    xs = np.arange(Wc, dtype=np.float32)
    folds = 0.75 + 0.25 * np.sin(xs / (Wc * rng.uniform(0.012, 0.02)))  # (Wc,) fold shading
    for x1, x2 in ((0, int(Wc * rng.uniform(0.15, 0.25))), (int(Wc * rng.uniform(0.75, 0.85)), Wc)):
        img[:floor, x1:x2] = (folds[None, x1:x2, None] * red).astype(np.uint8)
    img[: int(Hc * 0.1)] = (folds[None, :, None] * red).astype(np.uint8)
    yy, xx = np.mgrid[0:Hc, 0:Wc].astype(np.float32)
    cx, cy = Wc * rng.uniform(0.35, 0.65), Hc * rng.uniform(0.55, 0.75)
    spot = np.exp(-(((xx - cx) / (0.3 * Wc)) ** 2 + ((yy - cy) / (0.3 * Hc)) ** 2))  # (Hc, Wc) spotlight
    warm = np.array([1.0, 0.95, 0.75], np.float32) * rng.uniform(70, 110)
    return np.clip(img + spot[..., None] * warm, 0, 255).astype(np.uint8)


ROOMS = {"office": _office, "kitchen": _kitchen, "gym": _gym, "library": _library, "stage": _stage}
assert set(ROOMS) | set(PHOTO) == set(SCENES)

PROP_COLOURS = ((230, 60, 40), (240, 200, 40), (40, 120, 220), (245, 245, 245), (230, 120, 30), (60, 170, 80))


def make_background(scene: str, height: int, width: int, seed: int, props: int = 2) -> np.ndarray:
    """The canvas (Hc, Wc, 3) uint8 RGB of one video: scene ``scene``, varied by ``seed``, with ``props`` loose
    phones / cups / balls lying around at random."""
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; known: {SCENES}")
    rng = np.random.default_rng(seed)
    Hc, Wc = canvas_size(height, width)
    img = ROOMS[scene](Hc, Wc, rng) if scene in ROOMS else _photo_scene(scene, Hc, Wc, rng)
    img = np.ascontiguousarray(img)
    canvas = Canvas(img)
    for _ in range(props):
        kind = OBJECTS[rng.integers(len(OBJECTS))]
        xy = np.array([rng.uniform(0.1, 0.9) * Wc, rng.uniform(0.45, 0.95) * Hc])
        draw_object(canvas, kind, xy, height * rng.uniform(0.4, 0.7), PROP_COLOURS[rng.integers(6)], 0)
    return img


# --- camera -----------------------------------------------------------------------------------------------------

def camera_path(T: int, height: int, width: int, rng: np.random.Generator, magnitude: float = 1.0) -> np.ndarray:
    """(T, 2, 3) float64 affine maps world -> frame pixels: a linear pan, a linear zoom (>= 1) and a smooth shake.

    ``magnitude`` scales all three (0: a still camera). The view never leaves the canvas.
    """
    t = np.linspace(0.0, 1.0, T)
    m = float(magnitude)
    pan = rng.uniform(-1, 1, 2) * np.array([width, height]) * PAN * m * np.array([1.0, 0.4])
    z0, z1 = 1.0 + rng.uniform(0, ZOOM * m, 2)
    zoom = z0 + (z1 - z0) * t  # (T,)
    shake = np.zeros((T, 2))
    amp = SHAKE * m * height / 128.0
    for k in range(3):  # a few incommensurate sines: a smooth, jittery shake
        f = rng.uniform(0.5, 3.0) * (k + 1)
        shake += amp / (k + 1) * np.sin(2 * np.pi * f * t[:, None] * T / 16.0 + rng.uniform(0, 6.3, 2))
    centre = np.array([width / 2, height / 2]) + pan[None] * (t[:, None] - 0.5) + shake  # (T, 2) world
    limit = MARGIN * np.array([width, height]) * 0.95
    centre = np.clip(centre, np.array([width / 2, height / 2]) - limit, np.array([width / 2, height / 2]) + limit)
    A = np.zeros((T, 2, 3))
    A[:, 0, 0] = A[:, 1, 1] = zoom
    A[:, :, 2] = np.array([width / 2, height / 2]) - zoom[:, None] * centre
    return A


def warp_background(canvas: np.ndarray, A: np.ndarray, height: int, width: int) -> np.ndarray:
    """The frame (H, W, 3) seen through camera ``A`` (2, 3) from a background canvas."""
    mx, my = MARGIN * width, MARGIN * height
    M = A.copy()
    M[:, 2] -= A[:, :2] @ np.array([mx, my])  # canvas pixel = world + margin
    return cv2.warpAffine(canvas, M, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

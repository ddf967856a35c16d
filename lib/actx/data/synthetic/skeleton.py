"""The articulated 2D figure: its keypoints, proportions, clothing, kinematics and drawing.

A person is a planar stick figure with thick limbs, seen from the front. Its pose is a set of joint angles
(radians) plus the pelvis position; :func:`forward_kinematics` turns angle arrays over time into keypoints,
vectorised over frames. Angles follow one convention everywhere: an absolute segment angle ``theta`` points along
``(sin theta, cos theta)`` in image coordinates (y down), so 0 hangs straight down, +pi/2 points to +x (image
right), +-pi points up. Limbs named ``r_*`` are on the image-left side of the figure and ``l_*`` on the image-right
side (a figure facing the camera). Lengths are in units of the person's height ``h``.

:func:`draw_person` paints one pose with OpenCV (anti-aliased) into the frame and, without anti-aliasing, into an
integer label map (person id per pixel, later persons overwrite earlier ones), which gives visible silhouettes for
the ground-truth masks. It returns the person's tight box, computed analytically from the drawn primitives.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

KEYPOINTS = ("head", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
             "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle")
KP = {name: i for i, name in enumerate(KEYPOINTS)}
# Pairs of keypoints joined by a limb (for plotting skeletons).
BONES = ((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (10, 11),
         (8, 12), (12, 13), (13, 14))
# Joint angles a pose is made of. torso/head lean (positive: toward +x); shoulders/hips absolute-from-torso /
# absolute; elbows/knees relative to the parent segment.
JOINTS = ("torso", "head", "r_shoulder", "r_elbow", "l_shoulder", "l_elbow", "r_hip", "r_knee", "l_hip", "l_knee")
# Standing rest pose: arms hang slightly away from the body, feet a little apart.
NEUTRAL = {"torso": 0.0, "head": 0.0, "r_shoulder": -0.15, "r_elbow": 0.10, "l_shoulder": 0.15, "l_elbow": -0.10,
           "r_hip": -0.07, "r_knee": 0.0, "l_hip": 0.07, "l_knee": 0.0}
# Mirror image of a pose (x -> -x): every angle flips sign and the sides swap.
MIRROR = {"torso": "torso", "head": "head", "r_shoulder": "l_shoulder", "r_elbow": "l_elbow",
          "l_shoulder": "r_shoulder", "l_elbow": "r_elbow", "r_hip": "l_hip", "r_knee": "l_knee",
          "l_hip": "r_hip", "l_knee": "r_knee"}

# Segment lengths as fractions of the person's height (adult proportions, rounded; head top to sole = 1.0).
TORSO, NECK, HEAD_R = 0.30, 0.09, 0.065
SHOULDER_HALF, HIP_HALF = 0.10, 0.055
UPPER_ARM, FOREARM = 0.17, 0.16
THIGH, SHIN = 0.235, 0.235
SOLE = 0.02  # ankle height above the ground
ARM_W, LEG_W, NECK_W = 0.050, 0.070, 0.040  # limb thickness (before the per-person build factor)

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 125), (198, 134, 66), (141, 85, 36), (92, 56, 34))
HAIR_COLOURS = ((20, 20, 20), (70, 45, 25), (120, 80, 40), (200, 170, 100), (150, 150, 150), (160, 60, 30))
TEXTURES = ("plain", "stripes", "checks")


@dataclass
class Body:
    """How one person looks: height in pixels (world units), build, colours (RGB) and shirt texture."""

    height: float
    build: float = 1.0  # limb thickness factor
    skin: tuple = (224, 172, 125)
    hair: tuple = (20, 20, 20)
    shirt: tuple = (200, 40, 40)
    shirt2: tuple = (240, 240, 240)  # second colour of a striped / checked shirt
    trousers: tuple = (40, 40, 90)
    shoes: tuple = (30, 30, 30)
    texture: str = "plain"
    long_sleeves: bool = True
    pattern_px: float = 4.0  # stripe / check period in pixels at zoom 1


def random_body(rng: np.random.Generator, height: float) -> Body:
    """Clothing, skin, hair, build and texture drawn uniformly from the palettes above (HSV-random clothes)."""
    def hsv(s_lo, v_lo, v_hi):
        h = rng.uniform(0, 180)
        px = np.uint8([[[h, rng.uniform(s_lo, 255), rng.uniform(v_lo, v_hi)]]])
        return tuple(int(c) for c in cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0])

    return Body(height=float(height), build=float(rng.uniform(0.85, 1.25)),
                skin=SKIN_TONES[rng.integers(len(SKIN_TONES))], hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
                shirt=hsv(90, 110, 255), shirt2=hsv(0, 150, 255), trousers=hsv(40, 30, 150),
                shoes=tuple(int(c) for c in rng.integers(10, 90, 3)),
                texture=TEXTURES[rng.integers(len(TEXTURES))], long_sleeves=bool(rng.random() < 0.5),
                pattern_px=float(rng.uniform(0.035, 0.06) * height))


def down(theta: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 2) along absolute angle theta (0 = straight down, +pi/2 = +x)."""
    return np.stack([np.sin(theta), np.cos(theta)], axis=-1)


def mirror_angles(angles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mirror image (x -> -x) of a pose or of a pose change."""
    return {MIRROR[k]: -v for k, v in angles.items()}


def forward_kinematics(angles: dict[str, np.ndarray], pelvis: np.ndarray, h: float) -> np.ndarray:
    """Keypoints (T, K, 2) from joint angles (each (T,)) and the pelvis position (T, 2), height h in pixels.

    Optional ``r_reach`` / ``l_reach`` (T,) scale the upper arm's drawn length (an elbow pointing at the camera).
    """
    t = angles["torso"]
    up = np.stack([np.sin(t), -np.cos(t)], axis=-1)  # (T, 2) pelvis -> neck
    side = np.stack([np.cos(t), np.sin(t)], axis=-1)  # (T, 2) toward the l (image-right) shoulder
    kp = np.empty(t.shape + (len(KEYPOINTS), 2))  # (T, K, 2)
    kp[:, KP["pelvis"]] = pelvis
    neck = pelvis + TORSO * h * up
    kp[:, KP["neck"]] = neck
    th = t + angles["head"]
    kp[:, KP["head"]] = neck + NECK * h * np.stack([np.sin(th), -np.cos(th)], axis=-1)
    for s, sign in (("r", -1.0), ("l", 1.0)):
        shoulder = neck + sign * SHOULDER_HALF * h * side
        upper = t + angles[f"{s}_shoulder"]
        reach = angles.get(f"{s}_reach", 1.0)  # apparent upper-arm length factor (foreshortening)
        elbow = shoulder + UPPER_ARM * h * np.asarray(reach)[..., None] * down(upper)
        kp[:, KP[f"{s}_shoulder"]], kp[:, KP[f"{s}_elbow"]] = shoulder, elbow
        kp[:, KP[f"{s}_wrist"]] = elbow + FOREARM * h * down(upper + angles[f"{s}_elbow"])
        hip = pelvis + np.array([sign * HIP_HALF * h, 0.0])
        thigh = angles[f"{s}_hip"]
        knee = hip + THIGH * h * down(thigh)
        kp[:, KP[f"{s}_hip"]], kp[:, KP[f"{s}_knee"]] = hip, knee
        kp[:, KP[f"{s}_ankle"]] = knee + SHIN * h * down(thigh + angles[f"{s}_knee"])
    return kp


def pelvis_on_ground(angles: dict[str, np.ndarray], x: np.ndarray, ground: float, h: float,
                     lift: np.ndarray) -> np.ndarray:
    """Pelvis positions (T, 2) that put the lower foot on the ground line, raised by ``lift`` (T,) * h (jumps)."""
    drop = np.maximum(THIGH * np.cos(angles["r_hip"]) + SHIN * np.cos(angles["r_hip"] + angles["r_knee"]),
                      THIGH * np.cos(angles["l_hip"]) + SHIN * np.cos(angles["l_hip"] + angles["l_knee"]))
    return np.stack([x, ground - (drop + SOLE + lift) * h], axis=-1)


def two_link_ik(target: np.ndarray, l1, l2, bend: float) -> tuple[np.ndarray, np.ndarray]:
    """Absolute upper-segment angle and relative lower-segment angle that put a 2-link chain's tip at ``target``.

    target (T, 2) is relative to the chain's root, in the same units as l1, l2; it is pulled within reach.
    ``bend`` = +1 or -1 picks which side of the root-target line the middle joint (elbow, knee) lies on.
    """
    l1, l2 = np.asarray(l1, float), np.asarray(l2, float)  # scalars or (T,)
    d = np.linalg.norm(target, axis=-1).clip(np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)  # (T,)
    phi = np.arctan2(target[..., 0], target[..., 1])  # direction root -> target, in our angle convention
    cos_a = ((l1 ** 2 + d ** 2 - l2 ** 2) / (2 * l1 * d)).clip(-1, 1)  # law of cosines at the root
    upper = phi + bend * np.arccos(cos_a)
    tip = down(phi) * d[..., None] - l1[..., None] * down(upper)  # (T, 2) middle joint -> tip
    lower = np.arctan2(tip[..., 0], tip[..., 1])
    return upper, wrap(lower - upper)


def wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


# --- drawing ---------------------------------------------------------------------------------------------------

SHIFT = 4  # cv2 sub-pixel bits: coordinates are passed as integers * 16
_ONE = 1 << SHIFT


def fixed(points: np.ndarray) -> list[tuple[int, int]]:
    """Points (N, 2) in pixels -> cv2 sub-pixel integer tuples."""
    return [tuple(p) for p in np.round(np.asarray(points) * _ONE).astype(np.int64).tolist()]


class Canvas:
    """A frame (H, W, 3) uint8 being painted and, when given, a label map (H, W) uint8 painted alongside.

    Primitives take cv2 sub-pixel points (see :func:`fixed`); the frame gets anti-aliased edges, the label map
    hard ones (value ``pid``). Either may be None.
    """

    def __init__(self, image: np.ndarray | None, label: np.ndarray | None = None):
        self.image, self.label = image, label

    def line(self, a, b, colour, width: int, pid: int):
        if self.image is not None:
            cv2.line(self.image, a, b, colour, width, cv2.LINE_AA, SHIFT)
        if self.label is not None:
            cv2.line(self.label, a, b, pid, width, cv2.LINE_8, SHIFT)

    def circle(self, c, radius: float, colour, pid: int):
        r = int(round(max(1.0, radius) * _ONE))
        if self.image is not None:
            cv2.circle(self.image, c, r, colour, -1, cv2.LINE_AA, SHIFT)
        if self.label is not None:
            cv2.circle(self.label, c, r, pid, -1, cv2.LINE_8, SHIFT)

    def polygon(self, pts: np.ndarray, colour, pid: int):
        q = np.round(np.asarray(pts) * _ONE).astype(np.int32)
        if self.image is not None:
            cv2.fillConvexPoly(self.image, q, colour, cv2.LINE_AA, SHIFT)
        if self.label is not None:
            cv2.fillConvexPoly(self.label, q, pid, cv2.LINE_8, SHIFT)

    def texture(self, pts: np.ndarray, origin, colour2, period: float, kind: str):
        """Overlay stripes or checks (second colour) inside the convex polygon ``pts`` (already painted)."""
        if kind == "plain" or period < 2 or self.image is None:
            return
        H, W = self.image.shape[:2]
        x1, y1 = np.floor(pts.min(0)).astype(int)
        x2, y2 = np.ceil(pts.max(0)).astype(int) + 1
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, W), min(y2, H)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return
        inner = pts + 0.12 * (pts.mean(0) - pts)  # shrink a little: keep the anti-aliased rim in colour 1
        m = np.zeros((y2 - y1, x2 - x1), np.uint8)
        cv2.fillConvexPoly(m, np.round((inner - (x1, y1)) * _ONE).astype(np.int32), 1, cv2.LINE_8, SHIFT)
        yy = ((np.arange(y1, y2) - origin[1]) // period).astype(np.int64)[:, None] & 1  # (h, 1)
        if kind == "stripes":
            on = yy == 0
        else:
            on = ((yy + ((np.arange(x1, x2) - origin[0]) // period).astype(np.int64)[None, :]) & 1) == 0
        self.image[y1:y2, x1:x2][(m > 0) & on] = colour2


def _width(w: float) -> int:
    return max(1, int(round(w)))


def draw_person(canvas: Canvas, kp: np.ndarray, body: Body, scale: float, pid: int) -> np.ndarray:
    """Paint a figure whose keypoints (K, 2) are in frame pixels; ``scale`` = body height in frame pixels.

    Returns the box (x1, y1, x2, y2) of everything painted, computed from the primitives' extents (within about
    1 px of the painted pixels: rasterisation rounds).
    """
    h, bw = scale, body.build
    leg, arm, neck_w = _width(LEG_W * h * bw), _width(ARM_W * h * bw), _width(NECK_W * h * bw)
    shin = _width(leg * 0.9)
    fore = _width(arm * 0.9)
    hand, head_r = max(1.0, arm * 0.62), HEAD_R * h
    neck, pelvis, head = kp[1], kp[8], kp[0]
    axis = neck - pelvis
    side = np.array([-axis[1], axis[0]]) / (np.linalg.norm(axis) + 1e-9)  # perpendicular, toward +x when upright
    sw, hw = (SHOULDER_HALF * h + arm * 0.3) * bw ** 0.5, (HIP_HALF * h + leg * 0.5)
    torso = np.array([neck - side * sw, neck + side * sw, pelvis + side * hw, pelvis - side * hw])
    up = head - neck
    hair = head + up / (np.linalg.norm(up) + 1e-9) * head_r * 0.45
    toes = kp[[11, 14]] + np.array([[-0.05 * h, 0.012 * h], [0.05 * h, 0.012 * h]])
    extra = np.concatenate([toes, hair[None]])
    P = fixed(np.concatenate([kp, extra]))  # keypoints 0..14, toes 15, 16, hair 17
    shoe = _width(leg * 0.6)
    for hip, knee, ankle, toe in ((9, 10, 11, 15), (12, 13, 14, 16)):  # legs and shoes
        canvas.line(P[hip], P[knee], body.trousers, leg, pid)
        canvas.line(P[knee], P[ankle], body.trousers, shin, pid)
        canvas.line(P[ankle], P[toe], body.shoes, shoe, pid)
    canvas.polygon(torso, body.shirt, pid)
    canvas.texture(torso, neck, body.shirt2, body.pattern_px * scale / body.height, body.texture)
    canvas.line(P[1], P[0], body.skin, neck_w, pid)
    canvas.circle(P[0], head_r, body.skin, pid)
    canvas.circle(P[17], head_r * 0.72, body.hair, pid)
    sleeve = body.shirt if body.long_sleeves else body.skin
    for sh, el, wr in ((2, 3, 4), (5, 6, 7)):  # arms over the torso; hands in skin colour
        canvas.line(P[sh], P[el], body.shirt, arm, pid)
        canvas.line(P[el], P[wr], sleeve, fore, pid)
        canvas.circle(P[wr], hand, body.skin, pid)
    # extents: every point with the half-width of what is drawn there
    pad = np.array([head_r, neck_w / 2, arm / 2, arm / 2, hand, arm / 2, arm / 2, hand, leg / 2, leg / 2, leg / 2,
                    shin / 2, leg / 2, leg / 2, shin / 2, shoe / 2, shoe / 2, head_r * 0.72])
    pts = np.concatenate([kp, extra])
    lo = np.minimum((pts - pad[:, None]).min(0), torso.min(0))
    hi = np.maximum((pts + pad[:, None]).max(0), torso.max(0))
    return np.concatenate([lo, hi])


# --- objects (phone, cup, ball) ------------------------------------------------------------------------------

OBJECTS = ("phone", "cup", "ball")
OBJECT_SIZE = {"phone": 0.075, "cup": 0.07, "ball": 0.10}  # longest side / diameter, fraction of body height


def draw_object(canvas: Canvas, kind: str, centre, scale: float, colour, pid: int,
                direction=(0.0, 1.0)) -> np.ndarray:
    """Paint a phone, cup or ball of a person of height ``scale`` frame pixels, centred at ``centre``.

    ``direction`` orients a phone (along the forearm); cups stay upright. Returns the painted box (x1, y1, x2, y2).
    """
    size = OBJECT_SIZE[kind] * scale
    c = np.asarray(centre, float)
    if kind == "ball":
        r = max(1.0, size / 2)
        canvas.circle(fixed(c[None])[0], r, colour, pid)
        a, b = fixed(np.array([c - (size * 0.35, 0), c + (size * 0.35, 0)]))
        canvas.line(a, b, tuple(int(v * 0.6) for v in colour), _width(size * 0.08), pid)
        return np.concatenate([c - r, c + r])
    if kind == "phone":
        d = np.asarray(direction, float)
        d = d / (np.linalg.norm(d) + 1e-9)
        n = np.array([-d[1], d[0]])
        a, b = d * size / 2, n * size * 0.27
        body = np.array([c - a - b, c + a - b, c + a + b, c - a + b])
        canvas.polygon(body, (25, 25, 30), pid)
        a2, b2 = a * 0.75, b * 0.6
        canvas.polygon(np.array([c - a2 - b2, c + a2 - b2, c + a2 + b2, c - a2 + b2]), colour, pid)
        return np.concatenate([body.min(0), body.max(0)])
    if kind == "cup":
        w, hh = size * 0.62, size
        cup = c + np.array([(-w / 2, -hh / 2), (w / 2, -hh / 2), (w * 0.38, hh / 2), (-w * 0.38, hh / 2)])
        canvas.polygon(cup, colour, pid)
        handle = c + (w * 0.55, -hh * 0.05)
        canvas.circle(fixed(handle[None])[0], size * 0.16, colour, pid)
        r = size * 0.16
        return np.concatenate([np.minimum(cup.min(0), handle - r), np.maximum(cup.max(0), handle + r)])
    raise ValueError(f"unknown object kind {kind!r}; known: {OBJECTS}")

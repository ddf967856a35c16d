"""Render one sample: a :class:`~.layout.Layout` to frames (T, H, W, 3) uint8 and its ground truth.

Per frame: the background canvas seen through the camera (one ``cv2.warpAffine``), then the people from far to
near, each painted with anti-aliased OpenCV primitives, with the object in their hand; loose objects right after
their owner; finally Gaussian pixel noise. An integer label map painted alongside (person id per pixel) gives the
visible silhouettes.

Ground truth (see :data:`ANNOTATION_KEYS`):

- ``actor_mask`` (T, H, W) bool: the visible pixels of the people performing the video's action(s), *including the
  object in their hand* (phone, cup, a ball not yet thrown); a released or kicked ball is not part of the actor.
- ``boxes`` (T, P, 4) float32 xyxy pixels: the exact extent of each person's full (amodal: also what others hide)
  silhouette including a held object, within the frame; x2, y2 exclusive (pixel i spans [i, i + 1)); NaN while
  a person is entirely outside the frame. ``actor_boxes`` = the actors' rows.
- ``keypoints`` (T, P, K, 3) float32 (x, y, visible) for every person (actors first); visible = inside the frame.
"""

from __future__ import annotations

import numpy as np

from .layout import Layout
from .scenes import make_background, warp_background
from .skeleton import KP, Canvas, draw_object, draw_person

FREE_LABEL = 255  # label-map value of loose objects (not a person)
ANNOTATION_KEYS = ("actor_boxes", "actor_mask", "keypoints", "boxes", "is_actor", "person_action", "action_frames",
                   "segments", "segment_actors", "camera")


def to_frame(points: np.ndarray, A: np.ndarray) -> np.ndarray:
    """World points (T, ..., 2) through cameras A (T, 2, 3) -> frame pixels (T, ..., 2)."""
    T = len(A)
    flat = points.reshape(T, -1, 2)
    out = np.einsum("tij,tnj->tni", A[:, :, :2], flat) + A[:, None, :, 2]
    return out.reshape(points.shape)


def _held_centre(kp: np.ndarray, side: str, kind: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    wrist, elbow = kp[KP[f"{side}_wrist"]], kp[KP[f"{side}_elbow"]]
    d = wrist - elbow
    d = d / (np.linalg.norm(d) + 1e-9)
    reach = {"phone": 0.03, "cup": 0.035, "ball": 0.05}[kind] * scale
    return wrist + d * reach, d


def _exact_box(scratch: np.ndarray, approx: np.ndarray, visible: bool, label: np.ndarray, pid: int) -> np.ndarray:
    """The exact box of the silhouette painted in ``scratch`` near its analytic box ``approx`` (then cleared):
    (x1, y1, x2, y2) with x2, y2 exclusive (pixel i spans [i, i + 1)); NaN when nothing is inside the frame.
    With ``visible``, the silhouette is also written into ``label`` as ``pid``."""
    H, W = scratch.shape
    x0, y0 = max(int(approx[0]) - ROI_PAD, 0), max(int(approx[1]) - ROI_PAD, 0)
    x1, y1 = min(int(approx[2]) + ROI_PAD + 1, W), min(int(approx[3]) + ROI_PAD + 1, H)
    if x1 <= x0 or y1 <= y0:
        return np.full(4, np.nan)
    sub = scratch[y0:y1, x0:x1]
    on = sub > 0
    rows, cols = on.any(1), on.any(0)
    if not rows.any():
        return np.full(4, np.nan)
    if visible:
        label[y0:y1, x0:x1][on] = pid
    sub[:] = 0
    return np.array([x0 + cols.argmax(), y0 + rows.argmax(), x1 - cols[::-1].argmax(), y1 - rows[::-1].argmax()])


ROI_PAD = 3  # pixels around the analytic box searched for the painted silhouette (rasterisation adds up to ~1)
NOISE_BANK = 2  # the per-video noise field is this many times the frame size; frames take random windows of it


def noise_bank(rng: np.random.Generator, H: int, W: int, sigma: float) -> np.ndarray:
    """(2H, 2W, 3) int16 Gaussian noise (std ``sigma``), drawn once per video: drawing fresh noise for every frame
    cost more than painting it."""
    return np.round(rng.standard_normal((NOISE_BANK * H, NOISE_BANK * W, 3)) * sigma).astype(np.int16)


def render(layout: Layout, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Frames (T, H, W, 3) uint8 and the annotation dict of ``layout``; ``rng`` draws the pixel noise only."""
    H, W, T = layout.height, layout.width, layout.frames
    A = layout.camera
    zoom = A[:, 0, 0]  # (T,)
    bg = make_background(layout.scene, H, W, layout.scene_seed, layout.props)
    P = len(layout.persons)
    kp = np.stack([to_frame(p.kp, A) for p in layout.persons], axis=1) if P else np.zeros((T, 0, 15, 2))  # (T,P,K,2)
    free_pos = [to_frame(o.pos, A) for o in layout.objects]
    order = sorted(range(P), key=lambda i: (-layout.persons[i].depth, i))  # far first
    frees_of = {i: [j for j, o in enumerate(layout.objects) if o.owner == i + 1] for i in range(P)}
    actors = layout.actors
    # only actors and whoever is painted after the first actor can change the actors' visible silhouettes
    first = min([order.index(i) for i in actors], default=P)
    labelled = set(order[first:])
    bank = noise_bank(rng, H, W, layout.noise) if layout.noise > 0 else None
    offsets = rng.integers(0, (NOISE_BANK - 1) * np.array([H, W]) + 1, size=(T, 2))  # (T, 2) noise windows

    frames = np.empty((T, H, W, 3), np.uint8)
    mask = np.zeros((T, H, W), bool)
    boxes = np.full((T, P, 4), np.nan, np.float32)
    label = np.zeros((H, W), np.uint8)  # who is visible where (persons drawn later overwrite)
    scratch = np.zeros((H, W), np.uint8)  # one person's full silhouette
    for t in range(T):
        img = warp_background(bg, A[t], H, W)
        label[:] = 0
        for i in order:
            p = layout.persons[i]
            canvas = Canvas(img, scratch)
            s = p.body.height * zoom[t]
            box = draw_person(canvas, kp[t, i], p.body, s, 1)
            if p.held is not None and p.held.frames[t]:
                c, d = _held_centre(kp[t, i], p.held.side, p.held.kind, s)
                ob = draw_object(canvas, p.held.kind, c, s, p.held.colour, 1, d)
                box = np.concatenate([np.minimum(box[:2], ob[:2]), np.maximum(box[2:], ob[2:])])
            boxes[t, i] = _exact_box(scratch, box, i in labelled, label, i + 1)
            for j in frees_of[i]:
                o = layout.objects[j]
                if o.visible[t]:
                    draw_object(Canvas(img, label), o.kind, free_pos[j][t], o.owner_height * zoom[t], o.colour,
                                FREE_LABEL)
        if actors:
            m = label == actors[0] + 1
            for a in actors[1:]:
                m |= label == a + 1
            mask[t] = m
        if bank is not None:
            dy, dx = offsets[t]
            noisy = img.astype(np.int16)
            noisy += bank[dy:dy + H, dx:dx + W]
            img = np.clip(noisy, 0, 255).astype(np.uint8)
        frames[t] = img

    vis = ((kp[..., 0] >= 0) & (kp[..., 0] < W) & (kp[..., 1] >= 0) & (kp[..., 1] < H))[..., None]
    n_seg = len(layout.segments)
    seg = np.array([(s, e, c) for s, e, c, _ in layout.segments], np.int32).reshape(n_seg, 3)
    seg_actors = np.full((n_seg, 2), -1, np.int32)
    for k, (_, _, _, who) in enumerate(layout.segments):
        seg_actors[k, :len(who)] = who
    person_action = np.full(P, -1, np.int16)
    for _, _, c, who in layout.segments:
        person_action[list(who)] = c
    is_actor = np.zeros(P, bool)
    is_actor[actors] = True
    if layout.kind == "still":
        action_frames = (0, 1)
    elif n_seg:
        action_frames = (int(seg[:, 0].min()), int(seg[:, 1].max()))
    else:
        action_frames = (0, 0)
    ann = {
        "actor_boxes": boxes[:, actors],  # (T, A, 4)
        "actor_mask": mask,  # (T, H, W)
        "keypoints": np.concatenate([kp, vis], axis=-1).astype(np.float32),  # (T, P, K, 3)
        "boxes": boxes,  # (T, P, 4)
        "is_actor": is_actor,  # (P,)
        "person_action": person_action,  # (P,)
        "action_frames": np.array(action_frames, np.int32),  # (2,)
        "segments": seg,  # (n, 3) start, end, class
        "segment_actors": seg_actors,  # (n, 2) person indices, -1 padded
        "camera": A.astype(np.float32),  # (T, 2, 3)
    }
    return frames, ann

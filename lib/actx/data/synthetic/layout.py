"""Who is where, doing what, when: the layout of one sample, drawn from its random generator (no pixels yet).

A layout holds the scene, the camera path, every person's keypoints over time in world pixels (actors first, then
bystanders), the objects (held or flying) and the action segments. :mod:`render` turns it into frames and ground
truth. Four kinds of samples share the machinery:

- ``thread``: pre-action idling, the action, post-action idling; one scene and camera throughout (ActionThread).
- ``negative``: the same kind of video with bystanders only, nobody acting (HACS-style negatives).
- ``still``: one frame with several acting people (and maybe a bystander), each with its own label (VOC-style).
- ``untrimmed``: a long video with several action instances, separated by idle stretches (THUMOS-style).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .actions import CLASSES, PAIR_CLASSES, GRAVITY, Motion, action_motions, idle_angles, walk_angles
from .scenes import PROP_COLOURS, SCENES, camera_path
from .skeleton import KP, Body, forward_kinematics, mirror_angles, pelvis_on_ground, random_body

GROUND = 0.97  # feet of the nearest people stand at 97 % of the frame height
DEPTH_RISE = 0.10  # the farthest people stand this fraction of the frame height higher up
PRE_POST = 0.15  # at least 15 % of a thread before and after the action
ACTION_LEN = (0.45, 0.6)  # the action takes 45-60 % of a thread (ActionThread's threads are mostly action)
HOLD_PROB = 0.35  # chance that a bystander holds a phone, cup or ball (objects alone must not give the class)
BALL_R = 0.05  # ball radius in body heights (skeleton.OBJECT_SIZE["ball"] / 2)
KICK_REACH = 0.2  # the ball lies this far (body heights) before the kicking ankle: where the swinging foot meets it


@dataclass
class Held:
    """An object in a person's hand: kind, which hand ("l"/"r"), colour, and the frames it is held (T,) bool."""

    kind: str
    side: str
    colour: tuple
    frames: np.ndarray


@dataclass
class Free:
    """A loose object (a thrown or kicked ball): world positions (T, 2), visibility (T,), size of its owner (px)."""

    kind: str
    colour: tuple
    pos: np.ndarray
    visible: np.ndarray
    owner_height: float
    owner: int


@dataclass
class Person:
    body: Body
    kp: np.ndarray  # (T, K, 2) world pixels
    depth: float  # 0 near ... 1 far; far people are drawn first
    held: Held | None = None
    action: int = -1  # class index for actors, -1 for bystanders


@dataclass
class Layout:
    kind: str
    height: int
    width: int
    fps: float
    scene: str
    scene_seed: int
    props: int
    camera: np.ndarray  # (T, 2, 3) world -> frame
    persons: list[Person]
    objects: list[Free]
    segments: list[tuple[int, int, int, tuple[int, ...]]]  # (start, end, class index, actor person indices)
    noise: float  # std of the pixel noise

    @property
    def frames(self) -> int:
        return len(self.camera)

    @property
    def actors(self) -> list[int]:
        return sorted({p for seg in self.segments for p in seg[3]})


def jitter(rng: np.random.Generator, spread: float) -> float:
    return float(rng.uniform(1 - spread, 1 + spread))


def _scale_depth(rng, knobs, H, factor=1.0):
    lo, hi = knobs["actor_scale"]
    d = float(rng.uniform(0, 1))
    return d, H * (hi - (hi - lo) * d) * factor, H * (GROUND - DEPTH_RISE * d)


def _pad(delta: np.ndarray, T: int, s: int, hold_last: bool = False) -> np.ndarray:
    out = np.zeros(T)
    out[s:s + len(delta)] = delta
    if hold_last and s + len(delta) < T:
        out[s + len(delta):] = delta[-1]
    return out


def _actor(rng, motion: Motion, T, s, fps, h, x0, ground, depth, cls):
    """One actor: idle all thread long plus the action's change inside [s, s + L)."""
    body = random_body(rng, h)
    ang = idle_angles(T, fps, rng)
    for j, d in motion.angles.items():
        base = ang[j] if j in ang else np.ones(T)  # *_reach factors start at 1
        ang[j] = base + _pad(d, T, s)
    x = x0 + _pad(motion.dx, T, s, hold_last=True) * h
    pelvis = pelvis_on_ground(ang, x, ground, h, _pad(motion.lift, T, s))
    return Person(body=body, kp=forward_kinematics(ang, pelvis, h), depth=depth, action=cls)


def _objects(rng, motion: Motion, person: Person, pid: int, T: int, s: int, e: int, fps: float, ground: float):
    """Attach the action's object to its actor: held all along, or held / lying until the throw / kick."""
    if motion.obj is None:
        return None, None
    colour = PROP_COLOURS[rng.integers(len(PROP_COLOURS))]
    if motion.obj_mode == "held":
        return Held(motion.obj, motion.lead, colour, np.ones(T, bool)), None
    h = person.body.height
    t_ev = s + motion.event
    tau = (np.arange(T) - t_ev) / fps  # (T,) seconds since the release / kick
    if motion.obj_mode == "thrown":
        held = np.arange(T) <= t_ev
        start = person.kp[t_ev, KP[f"{motion.lead}_wrist"]]
    else:  # kicked: lies in front of the lead foot until struck
        held = None
        toe = person.kp[s, KP[f"{motion.lead}_ankle"]]
        start = np.array([toe[0] + np.sign(motion.v0[0]) * KICK_REACH * h, ground - BALL_R * h])
    flight = np.clip(tau, 0, None)[:, None]
    pos = start + h * (np.array(motion.v0) * flight + 0.5 * np.array([0.0, GRAVITY]) * flight ** 2)  # (T, 2)
    pos[:, 1] = np.minimum(pos[:, 1], ground - BALL_R * h)  # rolls once it reaches the ground
    visible = (np.arange(T) < e) & (tau > 0 if held is not None else np.ones(T, bool))
    free = Free(motion.obj, colour, pos, visible, h, pid)
    return (Held(motion.obj, motion.lead, colour, held) if held is not None else None), free


def act_unit(rng, cls: int, T: int, s: int, L: int, fps: float, knobs: dict, H: int, W: int,
             x_range: tuple[float, float], first_pid: int, scale: float = 1.0):
    """The actor(s) of one action instance at frames [s, s + L), placed with their left edge in x_range (pixels).

    Returns (persons, free objects). Pair actions get two actors facing each other.
    """
    name = CLASSES[cls]
    amp, speed = jitter(rng, knobs["amplitude_jitter"]), jitter(rng, knobs["speed_jitter"])
    depth, h, ground = _scale_depth(rng, knobs, H, scale)
    flip = bool(rng.random() < 0.5)
    lo, hi = x_range
    kw = {}
    if name == "run":  # start on the side the runner leaves from, so the run stays in view
        x0 = float(rng.uniform(lo + 0.3 * h, max(lo + 0.3 * h, lo + 0.45 * (hi - lo))))
        kw["room"] = max(0.2, (hi - x0 - 0.35 * h) / h)
        if flip:
            x0 = lo + hi - x0
    motions, gap = action_motions(name, L, fps, amp, speed, rng, **kw)
    if name in PAIR_CLASSES:
        span = max(1e-3, hi - lo - 0.6 * h)
        if gap * h > span:  # shrink the pair until both fit
            h = (hi - lo) / (gap + 0.6)
        x0 = float(rng.uniform(lo + 0.3 * h, max(lo + 0.3 * h, hi - 0.3 * h - gap * h)))
        left, right = motions[0], motions[1].mirrored()
        people = [_actor(rng, left, T, s, fps, h * jitter(rng, 0.05), x0, ground, depth, cls),
                  _actor(rng, right, T, s, fps, h * jitter(rng, 0.05), x0 + gap * h, ground, depth, cls)]
        if flip:
            people = people[::-1]
        return people, []
    motion = motions[0].mirrored() if flip else motions[0]
    if name != "run":
        x0 = float(rng.uniform(lo + 0.35 * h, max(lo + 0.35 * h, hi - 0.35 * h)))
    person = _actor(rng, motion, T, s, fps, h, x0, ground, depth, cls)
    held, free = _objects(rng, motion, person, first_pid, T, s, s + L, fps, ground)
    person.held = held
    return [person], ([free] if free is not None else [])


def bystander(rng, T: int, fps: float, knobs: dict, H: int, W: int, taken: list[tuple[float, float]]) -> Person:
    """A non-acting person: idling somewhere free, or (probability ``bystander_walk``) walking across."""
    depth, h, ground = _scale_depth(rng, knobs, H, rng.uniform(0.85, 1.0))
    if rng.random() < knobs["bystander_walk"]:
        ang, dx, _ = walk_angles(T, fps, rng)
        direction = 1.0 if rng.random() < 0.5 else -1.0
        if direction < 0:
            ang = mirror_angles(ang)
        x0 = float(rng.uniform(0.0, W)) - direction * dx[-1] * h * rng.uniform(0.2, 0.8)
        x = x0 + direction * dx * h
    else:
        ang = idle_angles(T, fps, rng)
        x0 = float(rng.uniform(0.1 * W, 0.9 * W))
        for _ in range(20):  # keep clear of the actors where possible
            if all(abs(x0 - cx) > 0.3 * (h + ch) for cx, ch in taken):
                break
            x0 = float(rng.uniform(0.1 * W, 0.9 * W))
        x = np.full(T, x0)
    pelvis = pelvis_on_ground(ang, x, ground, h, np.zeros(T))
    person = Person(body=random_body(rng, h), kp=forward_kinematics(ang, pelvis, h), depth=depth)
    if rng.random() < HOLD_PROB:
        kind = ("phone", "cup", "ball")[rng.integers(3)]
        person.held = Held(kind, "l" if rng.random() < 0.5 else "r", PROP_COLOURS[rng.integers(len(PROP_COLOURS))],
                           np.ones(T, bool))
    return person


def _bystanders(rng, T, fps, knobs, H, W, persons, minimum=0):
    lo, hi = knobs["bystanders"]
    n = int(rng.integers(max(lo, minimum), max(hi, minimum) + 1))
    taken = [(float(p.kp[:, KP["pelvis"], 0].mean()), p.body.height) for p in persons]
    return [bystander(rng, T, fps, knobs, H, W, taken) for _ in range(n)]


def pick_scene(rng: np.random.Generator, cls: int, bias: float) -> str:
    """The biased scene of class ``cls`` with probability ``bias``, else one of the other scenes uniformly."""
    if rng.random() < bias:
        return SCENES[cls]
    others = [s for k, s in enumerate(SCENES) if k != cls]
    return others[rng.integers(len(others))]


def _finish(rng, kind, knobs, T, scene, persons, objects, segments, magnitude=None) -> Layout:
    H, W = knobs["height"], knobs["width"]
    m = knobs["camera_motion"] if magnitude is None else magnitude
    return Layout(kind=kind, height=H, width=W, fps=float(knobs["fps"]), scene=scene,
                  scene_seed=int(rng.integers(2 ** 31)), props=int(rng.integers(0, 3)),
                  camera=camera_path(T, H, W, rng, m), persons=persons, objects=objects, segments=segments,
                  noise=float(knobs["noise"]))


def thread_layout(rng: np.random.Generator, knobs: dict, cls: int | None, scene: str) -> Layout:
    """A thread of class ``cls`` (None: a negative clip) in scene ``scene``."""
    H, W, T, fps = knobs["height"], knobs["width"], knobs["thread_frames"], float(knobs["fps"])
    persons, objects, segments = [], [], []
    if cls is not None:
        L = int(round(T * rng.uniform(*ACTION_LEN)))
        margin = int(round(PRE_POST * T))
        s = int(rng.integers(margin, T - L - margin + 1))
        persons, objects = act_unit(rng, cls, T, s, L, fps, knobs, H, W, (0.0, float(W)), 1)
        segments = [(s, s + L, cls, tuple(range(len(persons))))]
    persons += _bystanders(rng, T, fps, knobs, H, W, persons, minimum=1 if cls is None else 0)
    return _finish(rng, "thread" if cls is not None else "negative", knobs, T, scene, persons, objects, segments)


def still_layout(rng: np.random.Generator, knobs: dict) -> Layout:
    """One frame with 1-3 acting units (each its own class), side by side, and maybe a bystander."""
    H, W, fps = knobs["height"], knobs["width"], float(knobs["fps"])
    L = max(8, knobs["thread_frames"] // 2)
    n = int(rng.integers(1, 4))
    classes = [int(rng.integers(len(CLASSES))) for _ in range(n)]
    persons, objects, segments = [], [], []
    for i, c in enumerate(classes):
        slot = (W * i / n, W * (i + 1) / n)
        people, free = act_unit(rng, c, L, 0, L, fps, knobs, H, W, slot, len(persons) + 1, scale=0.85)
        idx = tuple(range(len(persons), len(persons) + len(people)))
        for o in free:
            o.owner = len(persons) + 1
        persons += people
        objects += free
        segments.append((0, 1, c, idx))
    t = int(rng.integers(int(0.3 * L), int(0.7 * L) + 1))  # the frame shown: mid-action
    persons += _bystanders(rng, L, fps, dict(knobs, bystanders=(0, 1)), H, W, persons)
    for p in persons:
        p.kp = p.kp[t:t + 1]
        if p.held is not None:
            p.held.frames = p.held.frames[t:t + 1]
    for o in objects:
        o.pos, o.visible = o.pos[t:t + 1], o.visible[t:t + 1]
    scene = pick_scene(rng, classes[0], knobs["scene_bias"])
    return _finish(rng, "still", knobs, 1, scene, persons, objects, segments, magnitude=0.0)


def untrimmed_layout(rng: np.random.Generator, knobs: dict) -> Layout:
    """A long video (``untrimmed_frames``) with 1-3 action instances by different actors, idle stretches between."""
    H, W, T, fps = knobs["height"], knobs["width"], knobs["untrimmed_frames"], float(knobs["fps"])
    Tt = knobs["thread_frames"]
    n = int(np.clip(T // Tt, 1, 3))
    lengths = [int(round(Tt * rng.uniform(0.4, 0.6))) for _ in range(n)]
    min_gap = max(1, int(round(0.1 * Tt)))
    spare = T - sum(lengths) - (n + 1) * min_gap
    if spare < 0:
        raise ValueError(f"untrimmed_frames={T} is too short for {n} instances of about {Tt // 2} frames; "
                         f"use untrimmed_frames >= {2 * Tt}")
    gaps = min_gap + np.floor(spare * rng.dirichlet(np.ones(n + 1))).astype(int)
    classes = [int(rng.integers(len(CLASSES))) for _ in range(n)]
    order = rng.permutation(n)  # which horizontal slot each instance's actors stand in
    persons, objects, segments = [], [], []
    s = 0
    for i, c in enumerate(classes):
        s += int(gaps[i])
        slot = (W * order[i] / n, W * (order[i] + 1) / n)
        people, free = act_unit(rng, c, T, s, lengths[i], fps, knobs, H, W, slot, len(persons) + 1, scale=0.8)
        for o in free:
            o.owner = len(persons) + 1
        segments.append((s, s + lengths[i], c, tuple(range(len(persons), len(persons) + len(people)))))
        persons += people
        objects += free
        s += lengths[i]
    persons += _bystanders(rng, T, fps, knobs, H, W, persons)
    scene = pick_scene(rng, classes[0], knobs["scene_bias"])
    return _finish(rng, "untrimmed", knobs, T, scene, persons, objects, segments)

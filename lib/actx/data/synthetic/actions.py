"""The 12 action classes as motion programs, and the non-action motions (idle, walking).

An action is defined only by how the body moves. A program turns the action segment's length (frames), the frame
rate and the sample's amplitude and speed factors into one :class:`Motion` per actor (two for interactions): joint
angle changes relative to the person's idle pose, a pelvis lift (jumps), a horizontal displacement (steps, runs) and
what happens to an object (phone, cup, ball). Every change is zero at both ends of the segment (smooth ramps), so a
thread's pre- and post-action segments show the idle pose only; the displacement may keep its final value (a runner
stays where the run ended).

Programs are written for a performer facing +x (image right) whose lead limbs are the ``l_*`` (image-right) ones;
:meth:`Motion.mirrored` gives the same action facing -x. Interactions return the motions of the left actor and of
the right actor (each written facing its partner) and the start distance between their pelvises.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .skeleton import FOREARM, JOINTS, NEUTRAL, SHOULDER_HALF, UPPER_ARM, down, mirror_angles, two_link_ik, wrap

# Documented class order (ClipSet.classes). SCENES[k] in scenes.py is the biased scene of CLASSES[k].
CLASSES = ("answer_phone", "drink", "throw_ball", "kick_ball", "wave", "clap", "jump", "run", "bend_down",
           "handshake", "hug", "fight")
PAIR_CLASSES = frozenset({"handshake", "hug", "fight"})
OBJECT_OF = {"answer_phone": "phone", "drink": "cup", "throw_ball": "ball", "kick_ball": "ball"}
RAMP = 0.2  # fraction of the segment spent easing in (and out): about 0.3-0.5 s at the default sizes
GRAVITY = 5.0  # body heights per s^2 for a flying ball (about 9 m/s^2 for a 1.8 m person)


@dataclass
class Motion:
    """One actor's pose change over an action segment of L frames (facing +x unless mirrored).

    angles   joint -> (L,) radians added to the idle pose (skeleton.JOINTS), plus optional "r_reach"/"l_reach":
             (L,) change of the upper arm's apparent length (foreshortening when the elbow points at the camera)
    dx       (L,) horizontal pelvis displacement in body heights; its last value persists after the segment
    lift     (L,) pelvis lift in body heights (off the ground)
    obj      the object this action uses ("phone", "cup", "ball") or None
    obj_mode "held" (in the lead hand all thread long), "thrown" (held, released at ``event``), "kicked" (lying
             before the lead foot, struck at ``event``)
    event    frame index within the segment of the release / kick; velocity ``v0`` (vx, vy) in heights per s
    """

    angles: dict[str, np.ndarray]
    dx: np.ndarray
    lift: np.ndarray
    obj: str | None = None
    obj_mode: str | None = None
    event: int | None = None
    v0: tuple[float, float] = (0.0, 0.0)
    lead: str = "l"  # the hand / foot that does the work ("l" until mirrored)

    def mirrored(self) -> "Motion":
        """The same motion facing -x."""
        ang = {k: v for k, v in self.angles.items() if k not in ("r_reach", "l_reach")}
        out = mirror_angles(ang)
        for s, o in (("r", "l"), ("l", "r")):
            if f"{s}_reach" in self.angles:
                out[f"{o}_reach"] = self.angles[f"{s}_reach"]
        return replace(self, angles=out, dx=-self.dx, v0=(-self.v0[0], self.v0[1]),
                       lead="r" if self.lead == "l" else "l")


# --- time helpers -----------------------------------------------------------------------------------------------

def phase(L: int) -> np.ndarray:
    """(L,) phase in (0, 1): frame i of the segment sits at (i + 1) / (L + 1), so no frame is at rest."""
    return (np.arange(L) + 1.0) / (L + 1.0)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def envelope(u: np.ndarray, ramp: float = RAMP) -> np.ndarray:
    """0 at u = 0 and 1, 1 in between, with smooth ramps of width ``ramp``."""
    return smoothstep(u / ramp) * smoothstep((1 - u) / ramp)


def keys(u: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray:
    """Keyframe curve: cosine-eased interpolation through (u_k, value_k); constant outside the first/last key."""
    us = np.array([p[0] for p in points])
    vs = np.array([p[1] for p in points], float)
    i = np.clip(np.searchsorted(us, u, side="right") - 1, 0, len(us) - 2)
    w = smoothstep((u - us[i]) / (us[i + 1] - us[i]))
    return vs[i] + (vs[i + 1] - vs[i]) * w


def bumps(u: np.ndarray, n: int) -> np.ndarray:
    """n plateaus of 1 separated by returns to 0 (sips, bends), 0 at u = 0 and 1."""
    return np.clip(1.7 * np.abs(np.sin(np.pi * n * u)), 0, 1) ** 1.5


def _zeros(L: int) -> dict[str, np.ndarray]:
    return {j: np.zeros(L) for j in JOINTS}


def _rest_hand(side: str) -> np.ndarray:
    """Where the neutral pose's hand is, relative to its shoulder (body heights, upright torso)."""
    up = NEUTRAL[f"{side}_shoulder"]
    return UPPER_ARM * down(up) + FOREARM * down(up + NEUTRAL[f"{side}_elbow"])


def _blend_arm(ang: dict, side: str, goal: np.ndarray, reach, b: np.ndarray, bend: float) -> None:
    """Move the ``side`` hand along a straight line from its rest position toward ``goal`` (L, 2) (relative to the
    shoulder, body heights) by weight b (L,), solving the arm by inverse kinematics at every frame.

    ``reach`` < 1 shortens the upper arm (the elbow points at the camera); ``bend`` (+1 / -1) fixes which side of
    the shoulder-hand line the elbow stays on, so it never flips mid-motion.
    """
    rest = _rest_hand(side)
    target = rest + b[:, None] * (np.asarray(goal, float) - rest)  # (L, 2)
    reach_t = 1.0 + b * (np.asarray(reach, float) - 1.0)  # (L,)
    up, el = two_link_ik(target, UPPER_ARM * reach_t, FOREARM, bend)
    g = smoothstep(b / 0.2)  # fade in: at b -> 0 the solver's elbow may sit on the other side of a straight arm
    ang[f"{side}_shoulder"] += g * wrap(up - NEUTRAL[f"{side}_shoulder"])
    ang[f"{side}_elbow"] += g * wrap(el - NEUTRAL[f"{side}_elbow"])
    ang[f"{side}_reach"] = ang.get(f"{side}_reach", 0.0) + (reach_t - 1.0)


def _motion(ang, L, dx=None, lift=None, **kw) -> Motion:
    z = np.zeros(L)
    return Motion(angles=ang, dx=z if dx is None else dx, lift=z if lift is None else lift, **kw)


def _count(seconds: float, per_second: float, lo: int, hi: int) -> int:
    return int(np.clip(round(seconds * per_second), lo, hi))


# --- single-person actions ---------------------------------------------------------------------------------------

def answer_phone(L, fps, amp, speed, rng):
    """Lift the phone from the hip to the ear, hold it there while talking (nods, free-hand gesture), lower it."""
    u, t = phase(L), np.arange(L) / fps
    b = envelope(u, 0.25)
    ang = _zeros(L)
    target = np.tile([-0.035, -0.085 - 0.02 * (amp - 1)], (L, 1))
    _blend_arm(ang, "l", target, 0.45, b, bend=1.0)
    ang["head"] += b * (0.12 * amp + 0.05 * np.sin(2 * np.pi * 1.3 * speed * t))
    ang["r_elbow"] += b * 0.35 * amp * (1 + np.sin(2 * np.pi * 0.6 * speed * t + rng.uniform(0, 6.3))) / 2
    return [_motion(ang, L, obj="phone", obj_mode="held")]


def drink(L, fps, amp, speed, rng):
    """Raise the cup to the mouth and tip the head back, one to three sips."""
    u = phase(L)
    b = bumps(u, _count(L / fps, 0.5 * speed, 1, 3)) * envelope(u, 0.1)
    ang = _zeros(L)
    target = np.tile([-0.065, -0.03], (L, 1))
    _blend_arm(ang, "l", target, 0.6, b, bend=1.0)
    ang["head"] += -0.22 * amp * b
    ang["torso"] += -0.05 * amp * b
    return [_motion(ang, L, obj="cup", obj_mode="held")]


def throw_ball(L, fps, amp, speed, rng):
    """Wind up with the ball behind the head, whip the arm over the top and release it forward, follow through."""
    u = phase(L)
    ang = _zeros(L)
    a = amp
    # lead arm (from torso): unwrapped keys so the sweep goes over the top (-pi ... -2pi is up ... forward)
    up = keys(u, [(0, 0.15), (0.38, -2.3 * a), (0.52, -4.3), (0.62, -5.2), (1.0, 0.15 - 2 * np.pi)])
    ang["l_shoulder"] += wrap(up - NEUTRAL["l_shoulder"])
    ang["l_elbow"] += keys(u, [(0, 0), (0.38, -1.6 * a), (0.5, -0.2), (0.62, 0.1), (1, 0)])
    ang["r_shoulder"] += keys(u, [(0, 0), (0.38, 1.1 * a), (0.52, -0.4), (1, 0)])
    ang["torso"] += keys(u, [(0, 0), (0.38, -0.22 * a), (0.52, 0.25 * a), (0.7, 0.1), (1, 0)])
    ang["l_hip"] += keys(u, [(0, 0), (0.38, 0.3), (0.6, 0.35), (1, 0)])
    ang["r_hip"] += keys(u, [(0, 0), (0.38, -0.2), (0.6, -0.3), (1, 0)])
    release = int(np.searchsorted(u, 0.5))
    return [_motion(ang, L, obj="ball", obj_mode="thrown", event=release, v0=(3.2 * speed, -2.2))]


def kick_ball(L, fps, amp, speed, rng):
    """Swing the lead leg back, then forward through the ball lying before the foot; arms counter-swing."""
    u = phase(L)
    a = amp
    ang = _zeros(L)
    ang["l_hip"] += keys(u, [(0, 0), (0.3, -0.55 * a), (0.46, 1.1 * a), (0.6, 0.7 * a), (0.85, 0), (1, 0)])
    ang["l_knee"] += keys(u, [(0, 0), (0.3, -1.4 * a), (0.46, -0.1), (0.6, -0.35), (0.85, 0), (1, 0)])
    ang["torso"] += keys(u, [(0, 0), (0.3, 0.1), (0.46, -0.22 * a), (0.8, 0), (1, 0)])
    ang["r_shoulder"] += keys(u, [(0, 0), (0.3, -0.4), (0.46, 0.7 * a), (0.85, 0), (1, 0)])
    ang["l_shoulder"] += keys(u, [(0, 0), (0.3, 0.5), (0.46, -0.5 * a), (0.85, 0), (1, 0)])
    contact = int(np.searchsorted(u, 0.42))
    return [_motion(ang, L, obj="ball", obj_mode="kicked", event=contact, v0=(3.8 * speed, -1.6))]


def wave(L, fps, amp, speed, rng):
    """Raise the lead arm above the shoulder and swing the forearm side to side (about 2 Hz)."""
    u, t = phase(L), np.arange(L) / fps
    b = envelope(u, 0.22)
    ang = _zeros(L)
    ang["l_shoulder"] += b * (2.45 + 0.15 * (amp - 1) - NEUTRAL["l_shoulder"])
    swing = 0.5 * amp * np.sin(2 * np.pi * 2.0 * speed * t)
    ang["l_elbow"] += b * (0.35 + swing - NEUTRAL["l_elbow"])
    ang["torso"] += b * 0.04 * np.sin(2 * np.pi * 2.0 * speed * t)
    return [_motion(ang, L)]


def clap(L, fps, amp, speed, rng):
    """Bring both hands together before the chest and apart again, about 2.5 times a second."""
    u, t = phase(L), np.arange(L) / fps
    b = envelope(u, 0.18)
    ang = _zeros(L)
    c = (0.5 + 0.5 * np.cos(2 * np.pi * 2.5 * speed * t)) ** 2  # 1: hands apart, 0: together
    y = 0.10 - 0.02 * (amp - 1)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        x = -sign * SHOULDER_HALF * 0.92 + sign * 0.13 * amp * c  # from its shoulder toward the centre line
        target = np.stack([x, np.full(L, y)], axis=-1)
        _blend_arm(ang, side, target, 0.55, b, bend=sign)
    return [_motion(ang, L)]


def jump(L, fps, amp, speed, rng):
    """Two to four vertical jumps: crouch, take off with the arms swinging up, land and absorb."""
    u = phase(L)
    n = _count(L / fps, 0.9 * speed, 2, 4)
    lo, hi = 0.08, 0.92  # the jumps happen inside the segment; the rest is getting ready / settling
    ph = np.clip((u - lo) / (hi - lo), 0, 1) * n
    f = ph - np.floor(ph)  # (L,) phase within the current jump
    active = (u > lo) & (u < hi)
    crouch = np.where(f < 0.3, np.sin(np.pi * f / 0.3) ** 2, 0) + np.where(
        f >= 0.75, 0.7 * np.sin(np.pi * (f - 0.75) / 0.25) ** 2, 0)
    air = np.where((f >= 0.3) & (f < 0.75), np.sin(np.pi * (f - 0.3) / 0.45), 0)
    crouch, air = crouch * active, air * active
    ang = _zeros(L)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        ang[f"{side}_hip"] += sign * 0.45 * crouch * amp
        ang[f"{side}_knee"] += -sign * 0.95 * crouch * amp
        ang[f"{side}_shoulder"] += sign * (2.3 * air - 0.3 * crouch) * amp
    ang["torso"] += 0.12 * crouch
    return [_motion(ang, L, lift=0.2 * amp * air)]


def run(L, fps, amp, speed, rng, room: float = 2.0):
    """Run forward: big leg strides with folded knees, bent arms pumping, forward lean, a bounce.

    ``room`` (body heights) caps the distance covered so the runner stays in view.
    """
    u, t = phase(L), np.arange(L) / fps
    e = envelope(u)
    w = 2 * np.pi * 1.6 * speed
    s = np.sin(w * t)
    ang = _zeros(L)
    ang["l_hip"] += 0.55 * amp * s * e
    ang["r_hip"] += -0.55 * amp * s * e
    ang["l_knee"] += -e * (0.25 + 1.1 * amp * np.maximum(0, np.cos(w * t)))
    ang["r_knee"] += -e * (0.25 + 1.1 * amp * np.maximum(0, -np.cos(w * t)))
    ang["l_shoulder"] += -0.6 * amp * s * e
    ang["r_shoulder"] += 0.6 * amp * s * e
    ang["l_elbow"] += e * 1.5
    ang["r_elbow"] += e * 1.5
    ang["torso"] += 0.2 * e
    v = 1.6 * speed * e / fps  # (L,) heights per frame
    dx = np.cumsum(v)
    if dx[-1] > room:
        dx *= room / dx[-1]
    return [_motion(ang, L, dx=dx, lift=0.05 * np.abs(s) * e)]


def bend_down(L, fps, amp, speed, rng):
    """Bend forward at the hips until the hands near the floor, straighten up; once or twice."""
    u = phase(L)
    b = bumps(u, _count(L / fps, 0.35 * speed, 1, 2)) * envelope(u, 0.1)
    a = 1.25 * min(amp, 1.2)
    ang = _zeros(L)
    ang["torso"] += a * b
    for side in ("l", "r"):
        ang[f"{side}_shoulder"] += -a * b * 0.8
        ang[f"{side}_hip"] += 0.25 * b
        ang[f"{side}_knee"] += -0.35 * b
    ang["head"] += -0.35 * b
    return [_motion(ang, L, dx=-0.07 * b)]


# --- two-person actions (left actor facing +x, right actor written facing its partner) --------------------------

def handshake(L, fps, amp, speed, rng):
    """Step toward each other, join the lead hands at waist height and pump them, let go, step back."""
    u, t = phase(L), np.arange(L) / fps
    b = envelope(u, 0.25)
    hold = envelope(u, 0.38)
    pump = 0.035 * amp * np.sin(2 * np.pi * 2.5 * speed * t) * hold
    out = []
    for _ in range(2):
        ang = _zeros(L)
        target = np.stack([np.full(L, 0.27), 0.17 + pump], axis=-1)
        _blend_arm(ang, "l", target, 1.0, b, bend=-1.0)
        ang["torso"] += 0.06 * b
        out.append(_motion(ang, L, dx=0.10 * b))
    return out, 2 * (SHOULDER_HALF + 0.27 + 0.10)


def hug(L, fps, amp, speed, rng):
    """Step close, wrap both arms around the partner, sway together, release and step back."""
    u, t = phase(L), np.arange(L) / fps
    b = envelope(u, 0.25)
    sway = 0.07 * amp * np.sin(2 * np.pi * 0.7 * speed * t) * envelope(u, 0.35)
    out = []
    for k in range(2):
        ang = _zeros(L)
        _blend_arm(ang, "l", np.tile([0.23, 0.04], (L, 1)), 1.0, b, bend=-1.0)
        _blend_arm(ang, "r", np.tile([0.33, 0.10], (L, 1)), 1.0, b, bend=-1.0)
        ang["torso"] += 0.12 * b + (sway if k == 0 else -sway)
        ang["head"] += 0.15 * b
        out.append(_motion(ang, L, dx=0.30 * b))
    return out, 0.90


def fight(L, fps, amp, speed, rng):
    """Guard up, then trade punches: each punch snaps the lead fist at the partner, who recoils a moment later."""
    u, t = phase(L), np.arange(L) / fps
    b = envelope(u, 0.2)
    dur = L / fps
    f = 1.7 * speed  # punches per second, both fighters together
    beats = np.arange(0.2 * dur + 0.25 / f, 0.8 * dur, 1.0 / f)  # (n,) punch times in s
    first = int(rng.integers(2))
    punch = [np.zeros(L), np.zeros(L)]
    hit = [np.zeros(L), np.zeros(L)]
    for k, tk in enumerate(beats):
        who = (k + first) % 2
        punch[who] += np.exp(-(((t - tk) / 0.09) ** 2))
        hit[1 - who] += np.exp(-(((t - tk - 0.12) / 0.12) ** 2))
    out = []
    for k in range(2):
        P, R = np.clip(punch[k], 0, 1) * b, np.clip(hit[k], 0, 1) * b
        ang = _zeros(L)
        guard_l, strike = np.array([-0.02, -0.08]), np.array([0.31, -0.03])
        target_l = guard_l + P[:, None] * (strike - guard_l)
        _blend_arm(ang, "l", target_l, 0.6 + 0.4 * P, b, bend=-1.0)
        _blend_arm(ang, "r", np.tile([0.12, -0.03], (L, 1)), 0.6, b, bend=-1.0)
        ang["torso"] += 0.14 * P * amp - 0.32 * R * amp
        ang["head"] += -0.25 * R
        out.append(_motion(ang, L, dx=0.06 * b - 0.06 * R))
    return out, 0.85


PROGRAMS = {"answer_phone": answer_phone, "drink": drink, "throw_ball": throw_ball, "kick_ball": kick_ball,
            "wave": wave, "clap": clap, "jump": jump, "run": run, "bend_down": bend_down,
            "handshake": handshake, "hug": hug, "fight": fight}
assert tuple(PROGRAMS) == CLASSES


def action_motions(name: str, L: int, fps: float, amp: float, speed: float, rng: np.random.Generator,
                   **kw) -> tuple[list[Motion], float]:
    """Run the program of class ``name``: (motions, start gap in body heights; 0 for single-person actions)."""
    if name not in PROGRAMS:
        raise ValueError(f"unknown action {name!r}; known: {CLASSES}")
    out = PROGRAMS[name](L, fps, amp, speed, rng, **kw)
    if name in PAIR_CLASSES:
        motions, gap = out
        return motions, float(gap)
    return out, 0.0


# --- what everyone does when not acting --------------------------------------------------------------------------

IDLE_AMPLITUDE = 0.06  # radians: the largest idle sway of any joint (breathing, shifting weight)


def idle_angles(T: int, fps: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Absolute joint angles (T,) of a person standing: the neutral pose plus slow, small sways."""
    t = np.arange(T) / fps
    out = {}
    for j in JOINTS:
        a = rng.uniform(0.3, 1.0) * IDLE_AMPLITUDE * (0.4 if j in ("torso", "r_hip", "l_hip") else 1.0)
        out[j] = NEUTRAL[j] + a * np.sin(2 * np.pi * rng.uniform(0.12, 0.45) * t + rng.uniform(0, 2 * np.pi))
    return out


def walk_angles(T: int, fps: float, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """A walk facing +x: absolute angles (T,), displacement dx (T,) in heights, and the speed (heights/s)."""
    t = np.arange(T) / fps
    f = rng.uniform(0.8, 1.1)  # strides per second
    w, ph = 2 * np.pi * f, rng.uniform(0, 2 * np.pi)
    s, c = np.sin(w * t + ph), np.cos(w * t + ph)
    ang = {j: np.full(T, NEUTRAL[j]) for j in JOINTS}
    ang["l_hip"] += 0.32 * s
    ang["r_hip"] += -0.32 * s
    ang["l_knee"] += -(0.1 + 0.5 * np.maximum(0, c))
    ang["r_knee"] += -(0.1 + 0.5 * np.maximum(0, -c))
    ang["l_shoulder"] += -0.3 * s
    ang["r_shoulder"] += 0.3 * s
    ang["l_elbow"] += 0.25
    ang["r_elbow"] += 0.25
    v = 0.55 * f  # heights per second: stride length about 0.55 heights
    return ang, v * t, v

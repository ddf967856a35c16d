"""The benchmark on disk: splits, rendering in parallel, the manifest, and the registered loader.

``render_benchmark(out_dir, **knobs)`` plans every sample (:func:`plan`), renders those not on disk yet with a
process pool (``concurrent.futures``) and writes ``manifest.csv`` and, last, ``meta.json`` (the completion
marker). Sample ``k`` of the plan draws everything from ``np.random.default_rng([seed, k])``, so serial and
parallel runs give byte-identical annotation files. Each sample's video is written first and its ``.npz``
annotation last, both atomically (temporary name, then ``os.replace``): a sample is complete when its ``.npz``
exists, and an interrupted run resumes where it stopped.

Layout of ``out_dir`` (documented with every knob in data/README.md)::

    knobs.json                 the knobs this folder is rendered with (written first)
    meta.json                  knobs, classes, scenes, format version, counts (written last)
    manifest.csv               one row per sample
    <split>/<id>.mp4           videos (H.264); stills are <id>.png
    <split>/<id>.npz           ground truth (see render.py and load_annotation)
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ...files import atomic_write
from .. import register
from ..records import AnnotationError, ClipSet, Record
from .actions import CLASSES
from .layout import Layout, still_layout, thread_layout, untrimmed_layout
from .render import render
from .scenes import SCENES

FORMAT_VERSION = 1
SPLITS = ("train", "test", "test_shifted", "negatives", "stills", "untrimmed")
SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}
MANIFEST_FIELDS = ("id", "split", "labels", "scene", "video", "annotation", "frames", "fps", "height", "width",
                   "action_start", "action_end", "thread", "segments", "persons")
# Knobs and how to check them; defaults come from actx.config.DATA["default"].
KNOB_TYPES = {"height": int, "width": int, "thread_frames": int, "fps": float, "train_per_class": int,
              "test_per_class": int, "shifted_per_class": int, "negatives_per_scene": int, "stills": int,
              "untrimmed": int, "untrimmed_frames": int, "scene_bias": float, "seed": int, "actor_scale": list,
              "bystanders": list, "bystander_walk": float, "camera_motion": float, "amplitude_jitter": float,
              "speed_jitter": float, "noise": float}
CRF = 20  # x264 quality used for every video (visually lossless on these frames; actx.video's default)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member time stamps: identical annotations give identical bytes


@dataclass(frozen=True)
class Spec:
    """One planned sample: its index ``k`` (its random stream), id, split, kind, class index and scene (None where
    the layout picks it: stills and untrimmed videos)."""

    k: int
    id: str
    split: str
    kind: str
    cls: int | None
    scene: str | None


# --- knobs --------------------------------------------------------------------------------------------------------

def make_knobs(**knobs: Any) -> dict[str, Any]:
    """The full, checked knob set: actx.config.DATA["default"] updated with ``knobs`` (JSON-plain values)."""
    from ...config import DATA

    unknown = set(knobs) - set(KNOB_TYPES)
    if unknown:
        raise ValueError(f"unknown benchmark knob(s) {sorted(unknown)}; known: {sorted(KNOB_TYPES)}")
    out = dict(DATA["default"])
    out.update(knobs)
    for key, kind in KNOB_TYPES.items():
        v = out[key]
        if kind is list:
            if len(v) != 2 or v[0] > v[1]:
                raise ValueError(f"knob {key}={v!r} must be a (low, high) pair with low <= high")
            out[key] = [type(v[0])(v[0]), type(v[1])(v[1])]
        else:
            out[key] = kind(v)
    if out["height"] % 2 or out["width"] % 2:
        raise ValueError(f"height={out['height']} and width={out['width']} must be even (H.264 in yuv420p)")
    if not 0.0 <= out["scene_bias"] <= 1.0:
        raise ValueError(f"scene_bias={out['scene_bias']} must lie in [0, 1]")
    if out["thread_frames"] < 16:
        raise ValueError(f"thread_frames={out['thread_frames']} is too short for pre-action, action and post-action "
                         "segments; use at least 16")
    return json.loads(json.dumps(out))


# --- the plan -----------------------------------------------------------------------------------------------------

def _biased_scenes(rng: np.random.Generator, cls: int, n: int, bias: float) -> list[str]:
    """Scenes of n samples of class cls: round(bias * n) in its own scene (random positions), the rest uniform over
    the other scenes."""
    own = np.zeros(n, bool)
    own[rng.permutation(n)[: int(round(bias * n))]] = True
    others = [s for k, s in enumerate(SCENES) if k != cls]
    return [SCENES[cls] if o else others[rng.integers(len(others))] for o in own]


def _uniform_scenes(rng: np.random.Generator, n: int) -> list[str]:
    """Scenes of n samples independent of the class: each block of 12 samples sees every scene once."""
    blocks = [rng.permutation(len(SCENES)) for _ in range(-(-n // len(SCENES)))]
    return [SCENES[i] for i in np.concatenate(blocks)[:n]] if blocks else []


def plan(knobs: Mapping[str, Any]) -> list[Spec]:
    """Every sample of the benchmark, in a fixed order (which gives each its index k). No pixels: fast."""
    seed = knobs["seed"]
    specs: list[Spec] = []

    def add(split, kind, name, cls, scene):
        specs.append(Spec(len(specs), name, split, kind, cls, scene))

    for split, per_class in (("train", knobs["train_per_class"]), ("test", knobs["test_per_class"]),
                             ("test_shifted", knobs["shifted_per_class"])):
        for c, name in enumerate(CLASSES):
            rng = np.random.default_rng([seed, 1000 + SPLIT_CODE[split], c])
            if split == "test_shifted":
                scenes = _uniform_scenes(rng, per_class)
            else:
                scenes = _biased_scenes(rng, c, per_class, knobs["scene_bias"])
            for j, scene in enumerate(scenes):
                add(split, "thread", f"{split}_{name}_{j:03d}", c, scene)
    for scene in SCENES:
        for j in range(knobs["negatives_per_scene"]):
            add("negatives", "negative", f"neg_{scene}_{j:03d}", None, scene)
    for j in range(knobs["stills"]):
        add("stills", "still", f"still_{j:04d}", None, None)
    for j in range(knobs["untrimmed"]):
        add("untrimmed", "untrimmed", f"untrimmed_{j:03d}", None, None)
    return specs


def sample_rng(knobs: Mapping[str, Any], spec: Spec) -> np.random.Generator:
    """The one random stream of sample k: layout first, then pixel noise."""
    return np.random.default_rng([knobs["seed"], spec.k])


def make_layout(spec: Spec, knobs: Mapping[str, Any], rng: np.random.Generator | None = None) -> Layout:
    """The layout of a planned sample (draws from ``rng``, by default a fresh :func:`sample_rng`)."""
    rng = sample_rng(knobs, spec) if rng is None else rng
    if spec.kind in ("thread", "negative"):
        return thread_layout(rng, knobs, spec.cls, spec.scene)
    if spec.kind == "still":
        return still_layout(rng, knobs)
    if spec.kind == "untrimmed":
        return untrimmed_layout(rng, knobs)
    raise ValueError(f"unknown sample kind {spec.kind!r}")


def render_sample(spec: Spec, knobs: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray], Layout]:
    """Frames (T, H, W, 3) uint8, annotation arrays and layout of one planned sample (in memory, nothing written)."""
    rng = sample_rng(knobs, spec)
    layout = make_layout(spec, knobs, rng)
    frames, ann = render(layout, rng)
    return frames, ann, layout


# --- files --------------------------------------------------------------------------------------------------------

def sample_paths(root: Path, spec: Spec) -> tuple[Path, Path]:
    """(video or image, annotation) paths of a sample under ``root``."""
    ext = ".png" if spec.kind == "still" else ".mp4"
    return root / spec.split / f"{spec.id}{ext}", root / spec.split / f"{spec.id}.npz"


def _atomic_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but atomic and byte-deterministic (fixed zip time stamps, sorted members)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    _atomic_bytes(path, buf.getvalue())


def _to_disk(ann: dict[str, np.ndarray], spec: Spec, layout: Layout) -> dict[str, np.ndarray]:
    """Annotation arrays as stored: the mask bit-packed along W, plus the sample's identity and scene."""
    mask = ann.pop("actor_mask")
    out = dict(ann, actor_mask_packed=np.packbits(mask, axis=-1), mask_shape=np.array(mask.shape, np.int32))
    labels = sorted({CLASSES[c] for _, _, c, _ in layout.segments}, key=CLASSES.index)
    out.update(id=np.array(spec.id), split=np.array(spec.split), kind=np.array(spec.kind),
               scene=np.array(layout.scene), labels=np.array(";".join(labels)),
               fps=np.array(layout.fps, np.float32), format_version=np.array(FORMAT_VERSION, np.int32))
    return out


def write_sample(root: Path, spec: Spec, knobs: Mapping[str, Any]) -> str:
    """Render one sample and write its video (or image) and then its annotation. Returns its id."""
    import cv2

    from ...video import write_video

    video, annotation = sample_paths(root, spec)
    video.parent.mkdir(parents=True, exist_ok=True)
    frames, ann, layout = render_sample(spec, knobs)
    if spec.kind == "still":
        ok, png = cv2.imencode(".png", cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"{video}: OpenCV could not encode the still image as PNG")
        _atomic_bytes(video, png.tobytes())
    else:
        write_video(video, frames, knobs["fps"], crf=CRF, preset="veryfast")
    save_npz(annotation, _to_disk(ann, spec, layout))
    return spec.id


def _work(root: str, spec: Spec, knobs: dict) -> str:
    try:
        return write_sample(Path(root), spec, knobs)
    except Exception as exc:
        raise RuntimeError(f"rendering sample {spec.id} (k={spec.k}) into {root} failed: "
                           f"{type(exc).__name__}: {exc}") from exc


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would only compete


# --- the whole benchmark -----------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AnnotationError(path, f"unreadable JSON ({exc}); delete the benchmark folder and render again") from exc


def _check_folder(root: Path, knobs: dict) -> None:
    """Refuse a folder rendered with other knobs or by another format version, or a non-empty folder that is not
    a benchmark."""
    for name in ("knobs.json", "meta.json"):
        path = root / name
        if not path.exists():
            continue
        info = _read_json(path)
        if info.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{root} holds a benchmark of format version {info.get('format_version')} ({path.name}) "
                             f"but this renderer writes version {FORMAT_VERSION}; delete {root} and render again")
        old = info.get("knobs", {})
        if old != knobs:
            diff = {k: (old.get(k), knobs.get(k)) for k in sorted(set(old) | set(knobs))
                    if old.get(k) != knobs.get(k)}
            raise ValueError(f"{root} holds a benchmark rendered with other knobs ({path.name}); differences "
                             f"(on disk, asked): {diff}. Delete {root} or render into another folder.")
        return
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty and holds no knobs.json: refusing to render a benchmark into it; "
                         "choose an empty or new folder")


def render_benchmark(out_dir: str | os.PathLike, *, workers: int | None = None, progress: bool = True,
                     **knobs: Any) -> Path:
    """Render the whole benchmark into ``out_dir`` (load-or-compute) and return it as a Path.

    Samples already on disk are skipped; ``meta.json`` is written last. ``workers`` processes render in parallel
    (default: one per CPU core; 0 or 1 renders in this process). ``knobs`` override actx.config.DATA["default"]
    (see data/README.md). A folder rendered with other knobs raises ValueError.
    """
    from tqdm.auto import tqdm

    knobs = make_knobs(**knobs)
    root = Path(out_dir).expanduser().resolve()
    _check_folder(root, knobs)
    specs = plan(knobs)
    todo = [s for s in specs if not sample_paths(root, s)[1].exists()]
    if not todo and (root / "meta.json").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "knobs.json").exists():
        _atomic_bytes(root / "knobs.json", json.dumps({"format_version": FORMAT_VERSION, "knobs": knobs},
                                                      indent=1).encode())
    cost = {"untrimmed": 3, "thread": 1, "negative": 1, "still": 0}
    todo.sort(key=lambda s: -cost[s.kind])  # long videos first: better load balance
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"rendering {root.name}", unit="video", disable=not progress or not todo)
    if workers <= 1 or len(todo) <= 1:
        import cv2

        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for spec in todo:
                _work(str(root), spec, knobs)
                bar.update()
        finally:
            cv2.setNumThreads(threads)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_worker_init) as pool:
            futures = [pool.submit(_work, str(root), spec, knobs) for spec in todo]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    bar.close()
    seconds = time.perf_counter() - t0
    rows = [_manifest_row(root, s) for s in specs]
    _write_manifest(root / "manifest.csv", rows)
    counts = {split: sum(r["split"] == split for r in rows) for split in SPLITS}
    meta = {"format_version": FORMAT_VERSION, "knobs": knobs, "classes": list(CLASSES), "scenes": list(SCENES),
            "counts": counts, "frames": int(sum(int(r["frames"]) for r in rows)),
            "last_run": {"rendered": len(todo), "workers": workers, "seconds": round(seconds, 1)}}
    _atomic_bytes(root / "meta.json", json.dumps(meta, indent=1).encode())
    return root


def ensure_benchmark(cfg) -> Path:
    """Render (or find) the benchmark of ``cfg.data``'s knobs in ``cfg.cache / "synthetic"``; return its folder."""
    return render_benchmark(Path(cfg.cache) / "synthetic", **dict(cfg.data))


# --- manifest -----------------------------------------------------------------------------------------------------

def _manifest_row(root: Path, spec: Spec) -> dict[str, str]:
    video, annotation = sample_paths(root, spec)
    with np.load(annotation, allow_pickle=False) as z:
        T, H, W = (int(v) for v in z["mask_shape"])
        s, e = (int(v) for v in z["action_frames"])
        segments = [[int(a), int(b), CLASSES[int(c)]] for a, b, c in z["segments"]]
        persons = []
        if spec.kind == "still":
            for box, c in zip(z["boxes"][0], z["person_action"]):
                persons.append({"box": [round(float(v), 2) for v in box],
                                "actions": [CLASSES[int(c)]] if c >= 0 else []})
        row = {"id": spec.id, "split": spec.split, "labels": str(z["labels"]), "scene": str(z["scene"]),
               "video": video.relative_to(root).as_posix(), "annotation": annotation.relative_to(root).as_posix(),
               "frames": T, "fps": float(z["fps"]), "height": H, "width": W, "action_start": s, "action_end": e,
               "thread": spec.id, "segments": json.dumps(segments), "persons": json.dumps(persons)}
    return {k: str(v) for k, v in row.items()}


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_bytes(path, buf.getvalue().encode())


# --- loading ------------------------------------------------------------------------------------------------------

def _record(root: Path, row: dict[str, str], path: Path, line: int) -> Record:
    try:
        fps = float(row["fps"])
        s, e = int(row["action_start"]), int(row["action_end"])
        labels = tuple(x for x in row["labels"].split(";") if x)
        extra: dict[str, Any] = {"scene": row["scene"], "action_frames": (s, e), "frames": int(row["frames"]),
                                 "fps": fps, "annotation": str(root / row["annotation"]),
                                 "height": int(row["height"]), "width": int(row["width"])}
        if row["split"] == "stills":
            extra["persons"] = [{"box": tuple(p["box"]), "actions": tuple(p["actions"])}
                                for p in json.loads(row["persons"])]
        if row["split"] == "untrimmed":
            extra["segments"] = [(int(a), int(b), c) for a, b, c in json.loads(row["segments"])]
    except (KeyError, ValueError, TypeError) as exc:
        raise AnnotationError(path, f"malformed manifest row ({type(exc).__name__}: {exc})", line) from exc
    timed = row["split"] not in ("negatives", "stills") and e > s
    return Record(video=str(root / row["video"]), labels=labels, id=row["id"], split=row["split"],
                  start=s / fps if timed else None, end=e / fps if timed else None, thread=row["thread"],
                  extra=extra)


@register("synthetic")
def load_synthetic(root: str | os.PathLike, split: str = "train") -> ClipSet:
    """Split ``split`` of a rendered benchmark in ``root`` (the folder ``render_benchmark`` returned).

    splits: train, test, test_shifted (threads), negatives (nobody acting, labels ()), stills (PNG key frames,
    extra["persons"]), untrimmed (long videos, extra["segments"]).
    """
    root = Path(root).expanduser().resolve()
    if split not in SPLITS:
        raise ValueError(f"synthetic: unknown split {split!r}; known: {SPLITS}")
    meta, manifest = root / "meta.json", root / "manifest.csv"
    if not meta.exists() or not manifest.exists():
        raise FileNotFoundError(f"{root}: no complete synthetic benchmark here (meta.json or manifest.csv missing); "
                                "render it with actx.data.synthetic.ensure_benchmark(cfg) or render_benchmark(root)")
    info = _read_json(meta)
    if info.get("format_version") != FORMAT_VERSION:
        raise AnnotationError(meta, f"format version {info.get('format_version')} but this code reads "
                                    f"{FORMAT_VERSION}; delete {root} and render it again")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    records = [_record(root, row, manifest, i + 2) for i, row in enumerate(rows) if row.get("split") == split]
    return ClipSet(records, CLASSES, name="synthetic", root=root, split=split)


def load_annotation(record: Record | str | os.PathLike) -> dict[str, np.ndarray]:
    """The ground truth of a record (or an .npz path) as numpy arrays.

    actor_boxes (T, A, 4) float32 xyxy pixels of the A people performing the action(s), every frame (NaN while
        one is entirely outside the frame); boxes (T, P, 4) the same for every person.
    actor_mask (T, H, W) bool: the actors' visible pixels, including the object in their hand (phone, cup, a ball
        not yet thrown); a thrown or kicked ball in flight is not part of it.
    keypoints (T, P, K, 3) float32 (x, y, visible) for every person, actors first (skeleton.KEYPOINTS order);
        visible = inside the frame. is_actor (P,) bool; person_action (P,) class index or -1.
    action_frames (2,) int: the action's half-open frame range (threads; (0, 0) for negatives; first start and last
        end for untrimmed videos; (0, 1) for stills). segments (n, 3) int (start, end, class index) and
        segment_actors (n, 2) person indices (-1 padded). camera (T, 2, 3) world -> frame affine maps.
    """
    path = Path(record.extra["annotation"]) if isinstance(record, Record) else Path(record)
    if not path.exists():
        raise FileNotFoundError(f"{path}: annotation file missing; re-run render_benchmark on its folder to "
                                "render the missing samples")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise AnnotationError(path, f"unreadable annotation ({exc}); delete it and re-run render_benchmark") from exc
    T, H, W = (int(v) for v in out.pop("mask_shape"))
    out["actor_mask"] = np.unpackbits(out.pop("actor_mask_packed"), axis=-1, count=W).astype(bool)
    return out


def cooccurrence(pairs: Iterable[tuple[str, str]]) -> np.ndarray:
    """(12, 12) counts of (action class, scene type) pairs: rows CLASSES, columns SCENES."""
    m = np.zeros((len(CLASSES), len(SCENES)), np.int64)
    for action, scene in pairs:
        m[CLASSES.index(action), SCENES.index(scene)] += 1
    return m


def split_pairs(specs_or_records: Iterable, split: str) -> list[tuple[str, str]]:
    """(class name, scene) of every thread of ``split``, from plan() specs or loaded records."""
    out = []
    for x in specs_or_records:
        if isinstance(x, Spec):
            if x.split == split and x.cls is not None:
                out.append((CLASSES[x.cls], x.scene))
        elif x.split == split and x.labels:
            out.append((x.labels[0], x.extra["scene"]))
    return out

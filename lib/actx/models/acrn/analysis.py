"""After training: video-AP on dense key frames, and where ACRN's relation heat lands (002 section 4.4).

    dense = dense_predictions(cfg, result, records["test"])       # cached beside the run
    video_metrics(dense, classes)                                   # {"frame_mAP", "video_mAP", per class}
    maps = relation_maps(result.head, dataset, [0, 1])              # CAMs per actor and its class
    heat_shares(cam, regions)                                       # share of the positive heat per region

Video-AP (002 section 4.1, J-HMDB): per-frame detections on every ``cfg.detection["dense_every"]``-th frame of
each test clip's action are linked into tubes (actx.metrics.link_tubes) and scored against the actors' tubes
on the same frames (actx.metrics.video_ap).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from actx.data.detection import KeyFrame, ground_truth_tubes, key_frames, stand_in_proposals
from actx.features.keyframes import ensure_keyframe_maps
from actx.files import atomic_write

from .data import KeyFrameSet, collate
from .train import detections, evaluate, gt_table

# Tubes linked per clip and class on the benchmark: pair actions have two actors, so two tubes (a third would be
# a false positive of the same action).
TUBES_PER_CLASS = 2


def dense_keys(cfg: Any, records: Sequence[Any]) -> list[KeyFrame]:
    return key_frames(records, tuple(records.classes), every=int(cfg.detection["dense_every"]))


def dense_predictions(cfg: Any, result: Any, records: Sequence[Any], split: str = "test",
                      progress: bool = True) -> dict[str, Any]:
    """Per-proposal predictions of the run's head on the dense key frames of ``records`` (load-or-compute:
    ``<run>/dense-<split>.npz``), with the keys (for the ground-truth tubes). The dense maps store the run's own
    context (not cfg.detection's longest one): they are the largest store of the chapters."""
    keys = dense_keys(cfg, records)
    path = Path(result.path) / f"dense-{split}.npz"
    if not path.exists():
        params = result.recipe["params"]
        maps = ensure_keyframe_maps(cfg, keys, f"{split}-dense", int(params["context"]), progress=progress)
        data = KeyFrameSet(keys, maps, stand_in_proposals(keys, seed=zlib.crc32(f"{split}-dense".encode())),
                           tuple(records.classes), int(params["context"]),
                           need_s8=int(params["relation_stage"]) == 3)
        preds = evaluate(result.head, data, cfg.device, int(cfg.detection_train["batch_size"]))

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **preds)

        atomic_write(path, write)
    with np.load(path, allow_pickle=False) as z:
        preds = {k: z[k] for k in z.files}
    return {"preds": preds, "keys": keys}


def video_metrics(dense: Mapping[str, Any], classes: Sequence[str], tubes_per_class: int = TUBES_PER_CLASS
                  ) -> dict[str, Any]:
    """Frame-AP on the dense key frames and video-AP of the linked tubes (IoU 0.5 both), fractions."""
    from actx.metrics import frame_ap, link_tubes, video_ap

    det = detections(dense["preds"], classes)
    frame = frame_ap(det, gt_table(dense["preds"], classes), classes=classes)
    tubes = link_tubes(det, classes=classes, tubes_per_class=tubes_per_class)
    video = video_ap(tubes, ground_truth_tubes(dense["keys"], classes), classes=classes)
    return {"frame_mAP": frame["mAP"], "video_mAP": video["mAP"], "frame_per_class": frame["per_class"],
            "video_per_class": video["per_class"], "tubes": len(tubes)}


@torch.no_grad()
def relation_maps(head: torch.nn.Module, dataset: KeyFrameSet, indices: Sequence[int], device: str = "cpu"
                  ) -> list[dict[str, Any]]:
    """Class activation maps of the relation branch (002 section 4.4: the classifier applied as a 1 x 1
    convolution to f_phi's map before pooling) for every labelled person of the key frames ``indices``, each
    for its own class, upsampled (bilinear) to the frame. Returns one dict per actor: index, person (row in the
    key frame), label (class index), box (4,), cam (H, W) float32, score (sigmoid of the logit)."""
    head.to(device).eval()
    out = []
    for i in indices:
        key = dataset.keys[i]
        actors = np.flatnonzero(key.labels.any(1))
        if len(actors) == 0:
            continue
        item = dataset[i]
        item = {**item, "boxes": torch.from_numpy(key.boxes[actors]), "scores": torch.ones(len(actors)),
                "labels": torch.from_numpy(key.labels[actors]), "targets": torch.from_numpy(key.boxes[actors]),
                "matched": torch.ones(len(actors), dtype=torch.bool)}
        batch = collate([item])
        res = head(batch["f16"].to(device), batch["rois"].to(device), batch.get("f8"), size=batch["size"],
                   maps=True)
        if "cam" not in res:
            raise ValueError("relation maps need an ACRN head (relation='acrn')")
        h, w = key.size
        for j, p in enumerate(actors):
            c = int(np.flatnonzero(key.labels[p])[0])
            cam = F.interpolate(res["cam"][j: j + 1, c: c + 1], size=(h, w), mode="bilinear",
                                align_corners=False)[0, 0]
            out.append({"index": i, "person": int(p), "label": c, "box": key.boxes[p], "cam": cam.cpu().numpy(),
                        "score": float(torch.sigmoid(res["logits"][j, c]))})
    return out


def box_mask(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels inside any of ``boxes`` (N, 4) xyxy (NaN rows ignored)."""
    h, w = size
    m = np.zeros((h, w), bool)
    for b in np.asarray(boxes, np.float64).reshape(-1, 4):
        if not np.isfinite(b).all():
            continue
        x1, y1 = max(int(np.floor(b[0])), 0), max(int(np.floor(b[1])), 0)
        x2, y2 = min(int(np.ceil(b[2])), w), min(int(np.ceil(b[3])), h)
        m[y1:y2, x1:x2] = True
    return m


def heat(cam: np.ndarray) -> np.ndarray:
    """A class map as heat: shifted so that its minimum is 0 and scaled to a maximum of 1, the normalisation CAM
    visualisations use (Zhou et al. 2016); all zero for a constant map."""
    cam = np.asarray(cam, np.float64)
    span = cam.max() - cam.min()
    return (cam - cam.min()) / span if span > 0 else np.zeros_like(cam)


def heat_shares(cam: np.ndarray, regions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Share of the heat (:func:`heat` of the class map) in each region, and each region's share of the frame
    (what a uniform map would give). ``regions`` {name: (H, W) bool}, applied in order, a pixel counted in the
    first region that holds it; "background" is what none holds. Keys: "<name>" and "<name>_area"; the shares
    are NaN for a constant map."""
    heat_map = heat(cam)
    total = heat_map.sum()
    taken = np.zeros(cam.shape, bool)
    out = {}
    for name, m in list(regions.items()) + [("background", np.ones(cam.shape, bool))]:
        region = m & ~taken
        taken |= region
        out[name] = float(heat_map[region].sum() / total) if total > 0 else float("nan")
        out[f"{name}_area"] = float(region.mean())
    return out


# --- tables and figures the chapters share ------------------------------------------------------------------
def proposal_quality(keys: Sequence[KeyFrame], proposals, iou: float | None = None) -> dict[str, float]:
    """Recall of the persons at ``iou`` (default LABEL_IOU), mean best IoU of the found ones, proposals and
    false positives (no person at ``iou``) per key frame."""
    from actx.data.detection import LABEL_IOU
    from actx.metrics import box_iou

    iou = LABEL_IOU if iou is None else iou
    groups = {k: g[["x1", "y1", "x2", "y2"]].to_numpy() for k, g in proposals.groupby(["video", "frame"])}
    found, best, false = 0, [], 0
    persons = sum(len(k.boxes) for k in keys)
    for k in keys:
        p = groups.get(k.key, np.zeros((0, 4)))
        if len(p) and len(k.boxes):
            ov = box_iou(p, k.boxes)  # (proposals, persons)
            hit = ov.max(0) >= iou
            found += int(hit.sum())
            best += ov.max(0)[hit].tolist()
            false += int((ov.max(1) < iou).sum())
        else:
            false += len(p)
    return {"recall": found / max(persons, 1), "mean IoU (found)": float(np.mean(best)) if best else float("nan"),
            "proposals / key frame": len(proposals) / max(len(keys), 1),
            "false positives / key frame": false / max(len(keys), 1)}


def draw_boxes(ax, boxes: np.ndarray, color: str, style: str = "-", width: float = 1.5) -> None:
    """Boxes (N, 4) xyxy as rectangles on a matplotlib axis."""
    from matplotlib.patches import Rectangle

    for b in np.asarray(boxes).reshape(-1, 4):
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color=color, ls=style,
                               lw=width))


def frame_map_table(rows: Mapping[str, Sequence[Any]], paper: Mapping[str, float | None] | None = None,
                    splits: Sequence[str] = ("val", "test"), paper_name: str = "Paper: J-HMDB frame-AP"):
    """One row per entry of ``rows`` {label: [RunResult per seed]}: frame-mAP in percent per split (mean ± std
    over seeds, as actx.experiments.mean_pm), the head's parameters, and the paper's number."""
    import pandas as pd

    out = []
    for label, results in rows.items():
        row = {"Model": label, "Head params": f"{results[0].params:,}"}
        for s in splits:
            row[f"{s} frame-mAP"] = seed_mean([100 * r.metrics[s]["mAP"] for r in results])
        row[paper_name] = (paper or {}).get(label)
        out.append(row)
    return pd.DataFrame(out).set_index("Model")


def seed_mean(values: Sequence[float]) -> str:
    """Per-seed values as "mean ± std" (actx.experiments.seeds_pm; the std is left out with one seed)."""
    from actx.experiments.tables import seeds_pm

    return seeds_pm(values)


def save_table(df, folder: Path, name: str, note: str) -> None:
    """A table as CSV and Markdown (with a note under it) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{name}.csv")
    (folder / f"{name}.md").write_text(df.to_markdown() + "\n\n" + note + "\n")


def class_kinds(classes: Sequence[str]) -> dict[str, str]:
    """The benchmark's classes by what an action needs besides the actor: "object" (phone, cup, ball), "pair"
    (a partner) or "motion" (the body alone). Classes of other sets: "other"."""
    from actx.data.synthetic.actions import OBJECT_OF, PAIR_CLASSES

    return {c: "object" if c in OBJECT_OF else "pair" if c in PAIR_CLASSES else "motion"
            if c in _BENCHMARK else "other" for c in classes}


def _benchmark_classes() -> frozenset:
    from actx.data.synthetic import CLASSES

    return frozenset(CLASSES)


_BENCHMARK = _benchmark_classes()


HEAT_REGIONS = ("object", "partner", "actor", "other people", "background")


def heat_share_table(head: torch.nn.Module, dataset: KeyFrameSet, device: str = "cpu"):
    """For every labelled person of the benchmark key frames in ``dataset``: the share of its relation heat
    (:func:`heat_shares`) on the object its action uses (actx.data.synthetic.objects, from the layout), on its
    partner (another person with the same action), on itself, on other people and on the background, with each
    region's share of the frame ("<name>_area"). Returns (per-actor DataFrame, per-kind means in percent)."""
    import pandas as pd

    from actx.data.synthetic.objects import object_boxes

    classes = dataset.classes
    kinds = class_kinds(classes)
    objects: dict[str, np.ndarray] = {}
    rows = []
    for h in relation_maps(head, dataset, range(len(dataset)), device):
        k = dataset.keys[h["index"]]
        if k.clip not in objects:
            objects[k.clip] = object_boxes(k.record)
        others = [p for p in range(len(k.boxes)) if p != h["person"]]
        partners = [p for p in others if k.labels[p, h["label"]]]
        regions = {"object": box_mask(objects[k.clip][k.frame], k.size),
                   "partner": box_mask(k.boxes[partners], k.size), "actor": box_mask(h["box"], k.size),
                   "other people": box_mask(k.boxes[[p for p in others if p not in partners]], k.size)}
        rows.append({"class": classes[h["label"]], "kind": kinds[classes[h["label"]]],
                     **heat_shares(h["cam"], regions)})
    per_actor = pd.DataFrame(rows)
    cols = list(HEAT_REGIONS) + [f"{n}_area" for n in HEAT_REGIONS]
    return per_actor, per_actor.groupby("kind")[cols].mean().mul(100).round(1)

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
    ``<run>/dense-<split>.npz``), with the keys (for the ground-truth tubes)."""
    keys = dense_keys(cfg, records)
    path = Path(result.path) / f"dense-{split}.npz"
    if not path.exists():
        maps = ensure_keyframe_maps(cfg, keys, f"{split}-dense", int(cfg.detection["context"]), progress=progress)
        params = result.recipe["params"]
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


def heat_shares(cam: np.ndarray, regions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Share of the positive heat (ReLU of the class map) in each region, and each region's share of the frame
    (what a uniform map would give). ``regions`` {name: (H, W) bool}, applied in order, a pixel counted in the
    first region that holds it; "background" is what none holds. Keys: "<name>" and "<name>_area"."""
    heat = np.clip(cam, 0, None).astype(np.float64)
    total = heat.sum()
    taken = np.zeros(cam.shape, bool)
    out = {}
    for name, m in list(regions.items()) + [("background", np.ones(cam.shape, bool))]:
        region = m & ~taken
        taken |= region
        out[name] = float(heat[region].sum() / total) if total > 0 else float("nan")
        out[f"{name}_area"] = float(region.mean())
    return out

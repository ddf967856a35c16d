"""The VOC still-image analogue (ActX 000 section 4.3, 001 section 1): ActX with T = 1 on one 2D map per image.

    records = still_records(cfg)                     # train / val / test stills (multi-label)
    base = run_still(cfg, "still_avgpool", records)  # average pooling on the same features
    actx = run_still(cfg, "still_actx", records)     # ActX, the inpainted stills as conjugates
    actor_share(actx, records["test"])               # where S and C put their mass

Data: the benchmark's ``stills`` split (1-3 acting units per image, every person boxed with their actions), split
by a hash of the id into test (TEST_SHARE) and train, and VAL_SHARE of train for validation. Labels are the
actions performed in the image: multi-label, so the runs use sigmoid / binary cross entropy and report mAP (the
accuracies are undefined). VOC 2012 action (actx.data.adapters.voc_action: ImageSets/Action, the XML action
annotations and the JPEGs under DATA_ROOT/voc2012_action) gives records of the same form: ``cfg = setting(cfg,
"voc2012_action")`` and the same calls; VAL_SHARE of VOC train is held out for validation and VOC val (the paper's
evaluation set; VOC test has no public labels) is reported as ``test``.

Features: the image resized so that its short side is SHORT_SIDE (001 section 1: "we resize the smaller dimension
to 256"), the shipped ImageNet EfficientNet-Lite0's last map (stride 32; the paper's DenseNet-161 loads from a
user's file, actx.backbones.densenet161), stored as a one-step map (1280, 1, h, w). The conjugate of (image,
action) is the image with that action's performers removed, Telea-inpainted and Poisson-blended
(actx.conjugates.stills), stored under the id ``<image id>~<action>``.

Training (001 section 1): random 8 x 8 crops of the map (actx.train.spatial), mini-batches of 32, whole maps at
test time. The schedule is the profile's (the supplement gives none for VOC).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from actx.data.records import ClipSet, Record
from actx.data.splits import VAL_SHARE, VAL_SPLIT, held_out
from actx.features import FeatureStore

from .runner import RunResult, benchmark_splits, run

SHORT_SIDE = 256  # 001 section 1
TEST_SHARE = 0.4  # stills held out for testing: the same share as the HACS chapter's negatives
BATCH_SIZE = 32  # 001 section 1: "train the network with the mini-batch size of 32"
DATASET = "synthetic_stills"
REAL = "voc2012_action"  # the real set's actx.data name, read under DATA_ROOT / REAL; its runs are kept under it
STREAM = "rgb"
METHODS = ("still_avgpool", "still_actx")
PAPER = {"still_avgpool": 78.2, "still_actx": 80.2}  # 001 section 1: DenseNet-161 baseline, ActX (VOC 2012 val)
FEATURES_VERSION = 1


def setting(cfg: Any, dataset: str = "synthetic") -> Any:
    """The notebook's ``DATASET``: "synthetic" (the benchmark's stills; ``cfg`` unchanged) or "voc2012_action"
    (VOC 2012 action under cfg.data_root / "voc2012_action", data/README.md), recorded in cfg.dataset."""
    from .runner import RealSet, dataset_setting

    return dataset_setting(cfg, dataset, RealSet(REAL, "VOC 2012 action", multi_label=True))


def is_real(cfg: Any) -> bool:
    """True when ``cfg`` (from :func:`setting`) names VOC 2012 action."""
    return cfg.dataset["name"] == REAL


def still_config(cfg: Any) -> Any:
    """``cfg`` for this setting: the stills as a multi-label data set reported on ``test``; batches of 32 whole
    one-step maps (the spatial crop is the methods' own fit). Runs live under DATASET, or REAL for VOC."""
    if is_real(cfg):
        name, root = REAL, cfg.dataset["root"]
    else:
        from actx.data.synthetic import ensure_benchmark

        name, root = DATASET, str(ensure_benchmark(cfg))
    out = cfg.replace(dataset__name=name, dataset__root=root, dataset__eval_splits=("test",),
                      dataset__multi_label=True)
    return dataclasses.replace(out, train=MappingProxyType(dict(cfg.train, batch_size=BATCH_SIZE, crop=None,
                                                                  stream_epochs=None)))  # study: videos only


def _image_record(r: Record, split: str) -> Record:
    return dataclasses.replace(r, split=split, extra={**r.extra, "frames": 1, "action_frames": (0, 1)})


def still_records(cfg: Any) -> dict[str, ClipSet]:
    """{"train", "val", "test"} of the benchmark's stills, split by a hash of the id (see the module docstring);
    classes: the benchmark's actions. On VOC (:func:`setting`): :func:`voc_records`."""
    if is_real(cfg):
        return voc_records(cfg.dataset["root"])
    stills = benchmark_splits(cfg, ("stills",))["stills"]
    order = sorted(stills, key=lambda r: hashlib.sha1(r.id.encode()).hexdigest())
    test_pos = set(held_out(len(order), TEST_SHARE))
    rest = [r for i, r in enumerate(order) if i not in test_pos]
    val_pos = set(held_out(len(rest), VAL_SHARE))
    parts = {"train": [r for i, r in enumerate(rest) if i not in val_pos],
             VAL_SPLIT: [r for i, r in enumerate(rest) if i in val_pos],
             "test": [r for i, r in enumerate(order) if i in test_pos]}
    return {split: ClipSet([_image_record(r, split) for r in rs], stills.classes, DATASET, stills.root, split)
            for split, rs in parts.items()}


def voc_records(root: str | Path) -> dict[str, ClipSet]:
    """{"train", "val", "test"} of VOC 2012 action under ``root``: VOC train without its VAL_SHARE (stratified by
    label set, actx.data.splits.validation_split), that share as ``val``, VOC val as ``test``. Every listed image
    must exist (FileNotFoundError listing the missing), and every acting person needs a box and the image its
    size (AnnotationError naming the XML), since the conjugates and the actor shares are cut from them."""
    from actx.data import load_dataset
    from actx.data.records import AnnotationError
    from actx.data.splits import validation_split

    def checked(voc_split: str, split: str) -> ClipSet:
        records = load_dataset(REAL, root, voc_split, check_files=True)
        for r in records:
            xml = r.extra.get("annotation", r.video)
            if r.extra.get("width") is None or r.extra.get("height") is None:
                raise AnnotationError(xml, "no <size><width>/<height>: the actor shares need the image size")
            for person in r.extra["persons"]:
                if person["actions"] and person["box"] is None:
                    raise AnnotationError(xml, f"person {person['index']} does {list(person['actions'])} but has "
                                               "no <bndbox>: the conjugate removes the acting people's boxes")
        return ClipSet([_image_record(r, split) for r in records], records.classes, REAL, root, split)

    train, val = validation_split(checked("train", "train"))
    val = ClipSet([dataclasses.replace(r, split=VAL_SPLIT) for r in val], val.classes, REAL, root, VAL_SPLIT)
    return {"train": train, VAL_SPLIT: val, "test": checked("val", "test")}


def resize_short_side(image: np.ndarray, short: int = SHORT_SIDE) -> np.ndarray:
    """uint8 (H, W, 3) -> (H', W', 3) with min(H', W') = short and the aspect ratio kept (rounded)."""
    import cv2

    h, w = image.shape[:2]
    scale = short / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2: (W, H)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)


def still_pairs(cfg: Any, records: Mapping[str, ClipSet], progress: bool = True) -> pd.DataFrame:
    """The training stills' conjugates (one per image and action in it; generated once as PNGs under
    cfg.cache / "stills" / "conjugates"), with ``conjugate_id`` the conjugate image's id ``<id>~<action>``."""
    from actx.conjugates.mine import still_pairs as make

    folder = "conjugates" if not is_real(cfg) else f"conjugates-{REAL}"  # ids of two sets never share a file
    table = make(list(records["train"]), Path(cfg.cache) / "stills" / folder, progress)
    table = table.copy()
    table["conjugate_id"] = [Path(p).stem for p in table["conjugate_path"]]
    return table


def ensure_still_features(cfg: Any, records: Mapping[str, ClipSet], pairs: pd.DataFrame,
                          progress: bool = True) -> FeatureStore:
    """Load-or-compute: (1280, 1, h, w) maps of every still and of every conjugate image in ``pairs``."""
    from actx.backbones import efficientnet_lite0, fuse_bn
    from actx.config import config_hash
    from actx.video import read_image

    data = f"{REAL}:{cfg.dataset['root']}" if is_real(cfg) else cfg.stage_hash("data")
    config = {"version": FEATURES_VERSION, "backbone": "efficientnet_lite0", "short_side": SHORT_SIDE,
              "data": data}
    store = FeatureStore(Path(cfg.cache) / "stills" / f"features-{config_hash(config)}")
    images = {r.id: r.video for split in records.values() for r in split}
    images.update(dict(zip(pairs["conjugate_id"], pairs["conjugate_path"])))
    todo = sorted(i for i in images if not store.has(i, STREAM))
    if not todo:
        return store
    store.consolidate()
    store.begin(STREAM, config)
    net = fuse_bn(efficientnet_lite0())
    with torch.inference_mode():
        for image_id in tqdm(todo, desc="still features", unit="image", disable=not progress):
            image = resize_short_side(read_image(images[image_id]))  # (H', W', 3)
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0)  # (1, 3, H', W')
            fmap = net.forward_features(x)[0]  # (1280, h, w)
            store.put(image_id, STREAM, fmap[:, None].numpy(), 1)  # (1280, 1, h, w)
    store.consolidate(verify=False)
    return store.refresh()


def run_still(cfg: Any, method: str, records: Mapping[str, ClipSet], seed: int = 0, progress: bool = True
              ) -> RunResult:
    """``still_avgpool`` or ``still_actx`` (or another method) on the stills' maps (load-or-compute)."""
    pairs = still_pairs(cfg, records, progress)
    store = ensure_still_features(cfg, records, pairs, progress)
    return run(still_config(cfg), method, STREAM, seed, conjugates="still", store=store, records=records,
               pairs=pairs, progress=progress)


# --- where the maps land ---------------------------------------------------------------------------------------
def actor_cells(record: Record, grid: tuple[int, int]) -> np.ndarray:
    """(h, w) fraction of each map cell covered by the boxes of the people acting in the still."""
    from actx.conjugates import box_mask
    from actx.metrics import mask_to_grid

    boxes = [p["box"] for p in record.extra["persons"] if p["actions"]]
    mask = box_mask((int(record.extra["height"]), int(record.extra["width"])), boxes) > 0  # (H, W)
    return mask_to_grid(mask[None], (1, *grid), 1)[0]


def actor_share(result: RunResult, records: ClipSet, split: str = "test") -> pd.DataFrame:
    """Per still of ``split``: the share of S's mass on the actors' boxes, of C's mass off them, and the boxes'
    area share of the map (what a uniform map puts on them), in [0, 1]."""
    by_id = {r.id: r for r in records}
    S, C = result.maps[split]["S"], result.maps[split]["C"]  # (N, 1, h, w)
    rows = []
    for i, image_id in enumerate(result.ids[split]):
        cells = actor_cells(by_id[image_id], S.shape[-2:])  # (h, w)
        s = S[i, 0]
        row = {"id": image_id, "S on actors": float((s * cells).sum() / s.sum()),
               "actor area": float(cells.mean())}
        if C is not None:
            c = C[i, 0]
            row["C off actors"] = float((c * (1 - cells)).sum() / c.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def plot_still_maps(result: RunResult, records: ClipSet, n: int = 4, split: str = "test"):
    """Stills of ``split`` with their action map S and context map C over the image (like 001 Fig. 2), the actor
    boxes drawn; returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from actx.video import read_image

    by_id = {r.id: r for r in records}
    ids = result.ids[split][:n]
    fig, axes = plt.subplots(len(ids), 3, figsize=(9, 2.4 * len(ids)), squeeze=False)
    for row, image_id in zip(axes, ids):
        i = result.ids[split].index(image_id)
        rec = by_id[image_id]
        image = read_image(rec.video)
        h, w = image.shape[:2]
        maps = [("image: " + ", ".join(rec.labels), None), ("action map S", result.maps[split]["S"][i, 0]),
                ("context map C", None if result.maps[split]["C"] is None else result.maps[split]["C"][i, 0])]
        for ax, (title, m) in zip(row, maps):
            ax.imshow(image)
            if m is not None:
                ax.imshow(m, cmap="jet", alpha=0.5, extent=(0, w, h, 0), interpolation="nearest")
            for p in rec.extra["persons"]:
                if p["actions"]:
                    x1, y1, x2, y2 = p["box"]
                    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="w", lw=1))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig

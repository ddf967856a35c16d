"""The HACS-30 analogue (ActX 000 section 4.2, Table 3; 001 section 2.4): K actions + a background class, a
fine-tuned 3D backbone, and attention heads on its fine-tuned maps with the top-3 nearest negatives as conjugates.

    cfg_h = hacs_config(cfg)                      # the K + 1-class data set, the heads' schedule
    records = clip_records(cfg)                   # train / val / test / test_shifted clips, 32 frames each
    backbone = run_backbone(cfg, records)         # fine-tunes the inflated network once (load-or-compute)
    actx = run_head(cfg, "hacs_actx", records, seed=0)  # on the fine-tuned maps, neighbour conjugates

Data (the benchmark as HACS): each thread gives one positive clip of CLIP_FRAMES frames centred on its action
(HACS clips are 2 s at 16 fps, 001 section 2.4); every negative video (nobody acts) gives non-overlapping
CLIP_FRAMES-frame clips of the background class, split by video into train / val / test (NEGATIVE_TEST_SHARE,
the course's VAL_SHARE). Test negatives are scored in both ``test`` and ``test_shifted``.

Backbone (actx.backbones.inflate): the ImageNet EfficientNet-Lite0 inflated to 3D; its frozen bottom's outputs are
computed once per clip into a store (:func:`ensure_frozen`), the method ``hacs_backbone`` (actx.models.finetune3d)
fine-tunes the top on them with the paper's two phases, and :func:`ensure_finetuned` writes the fine-tuned maps of
every clip into the store the heads train on.

Real HACS Clips (actx.data.adapters.hacs, the published CSV and the videos of download_videos.py under
DATA_ROOT/hacs): ``cfg = setting(cfg, "hacs")`` and the same calls. :func:`clip_records` then reads the CSV, keeps
the REAL_CLASSES classes with the fewest training positives (000 section 4.2: "the 30 actions with the least
positive samples") and their negatives as BACKGROUND, samples each 2-second clip at CLIP_FRAMES frames (16 fps,
001 section 2.4), holds VAL_SHARE of HACS training out for validation and reports on HACS validation (``test``:
the paper's Table 3 set; HACS testing has no public labels). There is no ``test_shifted``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
from actx.models.finetune3d import BACKGROUND

from .runner import RunResult, benchmark_splits, run

CLIP_FRAMES = 32  # 001 section 2.4: "we extract a sequence of 32 frames (i.e., 16 fps)"
# Frame size per profile, (H, W). The paper resizes the short side to 128 (001 2.4); the fine-tuning cost grows
# with the area, and on 2 CPU cores 96 x 128 (3 x 4 maps) is what fits the chapter's time budget at default.
SIZE = {"ci": (32, 64), "default": (96, 128), "full": (128, 176)}
# Share of the negative videos held out for testing (the rest: training, minus VAL_SHARE for validation). 0.4
# keeps the test split's background about as large as one of its action classes is small (HACS-30's validation
# set is 59 % negatives; the benchmark's 72 negative videos cannot match both that and a useful training pool).
NEGATIVE_TEST_SHARE = 0.4
DATASET = "synthetic_hacs30"
# The real set: its actx.data name (read under DATA_ROOT / REAL), the name its runs are kept under, and the number
# of classes kept (000 section 4.2: the 30 with the fewest positive training clips; fewer when the CSV has fewer).
REAL, REAL_DATASET, REAL_CLASSES = "hacs", "hacs30", 30
STREAM = "rgb"
# Epochs per profile: ci crosses every code path once; default keeps the paper's last-layer epochs (cheap: only
# the classifier learns) and its head schedule (5 epochs, /10 after 3), and cuts the network phase from 15 to 5
# epochs, the expensive part (backward through the top of the 3D network). full: the paper's.
SCHEDULE = {
    "ci": dict(last_layer_epochs=2, network_epochs=1, head_epochs=2, head_milestones=(1,)),  # every path once
    "default": dict(last_layer_epochs=20, network_epochs=5, head_epochs=5, head_milestones=(3,)),
    "full": dict(last_layer_epochs=20, network_epochs=15, head_epochs=5, head_milestones=(3,)),
}
HEAD_LR = 1e-4  # 001 section 2.4: the attention frameworks "start with a learning rate of 0.0001"
# The heads' learning rate is chosen on val per method from this grid (the same for every head): the paper's value
# and x10, x100, since the paper's 5 epochs are about 2,000 SGD steps and ours under 100 (a few hundred clips in
# batches of 16), and a head starts from a fresh classifier (:func:`choose_head_lr`).
HEAD_LR_GRID = (1e-4, 1e-3, 1e-2)
BATCH_SIZE = {"ci": 8, "default": 16, "full": 64}  # 001 2.4: 64; ours fits a few hundred clips per epoch
# The backbone and the registry's HACS rows of the heads: attentional pooling, ACF and ActX with the backbone's
# weighted cross entropy (001 section 2.4: the background weighted 0.01; actx.experiments.methods).
METHODS = ("hacs_backbone", "hacs_attentional", "hacs_acf", "hacs_actx")
# ActX Table 3 (HACS-30 validation set): mAP, mean class accuracy over 31 classes, percent.
PAPER = {"hacs_backbone": (57.8, 83.1), "hacs_attentional": (58.6, 84.5), "hacs_acf": (58.3, 84.3),
         "hacs_actx": (59.1, 85.3)}
FROZEN_VERSION = 1  # bump when the frozen part's maps would change for the same settings


def setting(cfg: Any, dataset: str = "synthetic") -> Any:
    """The notebook's ``DATASET``: "synthetic" (the embedded benchmark; ``cfg`` unchanged) or "hacs" (HACS Clips
    under cfg.data_root / "hacs", data/README.md), recorded in cfg.dataset for the functions below."""
    from .runner import RealSet, dataset_setting

    return dataset_setting(cfg, dataset, RealSet(REAL, "HACS Clips", multi_label=False))


def is_real(cfg: Any) -> bool:
    """True when ``cfg`` (from :func:`setting`) names real HACS Clips."""
    return cfg.dataset["name"] == REAL


def report_splits(cfg: Any) -> tuple[str, ...]:
    """The splits the table reports: test and test_shifted on the benchmark, test (HACS validation) on HACS."""
    return ("test",) if is_real(cfg) else ("test", "test_shifted")


def hacs_config(cfg: Any, head_lr: float = HEAD_LR) -> Any:
    """``cfg`` for this setting: the K + 1-class data set (runs under cfg.cache / "runs" / DATASET, or
    REAL_DATASET for real HACS) and the heads' schedule of 001 section 2.4 (SGD, momentum 0.9, lr ``head_lr``, /10
    at the milestone; whole clips). Runs with another lr than HEAD_LR live under <name>-lr=<lr> (a run folder
    holds one schedule)."""
    s = SCHEDULE[cfg.profile]
    base = REAL_DATASET if is_real(cfg) else DATASET
    name = base if head_lr == HEAD_LR else f"{base}-lr={head_lr:g}"
    train = dict(cfg.train, epochs=s["head_epochs"], milestones=tuple(s["head_milestones"]), lr=float(head_lr),
                 batch_size=BATCH_SIZE[cfg.profile], crop=None, optimizer="sgd", momentum=0.9,
                 weight_decay=1e-4, stream_epochs=None)  # the schedule study covered Table 1's heads only
    if is_real(cfg):
        root = cfg.dataset["root"]
    else:
        from actx.data.synthetic import ensure_benchmark

        root = str(ensure_benchmark(cfg))
    out = cfg.replace(dataset__name=name, dataset__root=root, dataset__eval_splits=report_splits(cfg),
                      dataset__multi_label=False)
    return dataclasses.replace(out, train=MappingProxyType(train))


def backbone_params(cfg: Any) -> dict[str, int]:
    """The profile's epochs of the two fine-tuning phases (the rest of the method's parameters: defaults)."""
    s = SCHEDULE[cfg.profile]
    return {"last_layer_epochs": s["last_layer_epochs"], "network_epochs": s["network_epochs"]}


# --- the clips ------------------------------------------------------------------------------------------------
def _clip(record: Record, start: int, labels: tuple[str, ...], split: str) -> Record:
    fps = float(record.extra["fps"])
    extra = {**record.extra, "frames": CLIP_FRAMES, "action_frames": (0, CLIP_FRAMES), "clip_start": int(start),
             "source_action_frames": tuple(record.extra["action_frames"])}
    return dataclasses.replace(record, id=f"{record.id}@{start}", labels=labels, split=split,
                               start=start / fps, end=(start + CLIP_FRAMES) / fps, extra=extra)


def positive_clip(record: Record) -> Record:
    """The CLIP_FRAMES-frame clip of a thread centred on its action (clamped to the video)."""
    frames = int(record.extra["frames"])
    if frames < CLIP_FRAMES:
        raise ValueError(f"{record.id} ({record.video}): {frames} frames, a HACS clip needs {CLIP_FRAMES}")
    a0, a1 = record.extra["action_frames"]
    start = int(np.clip((a0 + a1) // 2 - CLIP_FRAMES // 2, 0, frames - CLIP_FRAMES))
    return _clip(record, start, tuple(record.labels), record.split)


def negative_clips(record: Record, split: str) -> list[Record]:
    """Non-overlapping CLIP_FRAMES-frame clips of a negative video, labelled BACKGROUND."""
    frames = int(record.extra["frames"])
    if frames < CLIP_FRAMES:
        raise ValueError(f"{record.id} ({record.video}): {frames} frames, a HACS clip needs {CLIP_FRAMES}")
    return [_clip(record, s, (BACKGROUND,), split) for s in range(0, frames - CLIP_FRAMES + 1, CLIP_FRAMES)]


def split_negatives(negatives: list[Record]) -> dict[str, list[Record]]:
    """Negative videos by split ("train", "val", "test"), from their ids alone: ordered by a hash of the id,
    evenly spaced positions held out (actx.data.splits.held_out), NEGATIVE_TEST_SHARE for test, then VAL_SHARE
    of the rest for validation."""
    order = sorted(negatives, key=lambda r: hashlib.sha1(r.id.encode()).hexdigest())
    test_pos = set(held_out(len(order), NEGATIVE_TEST_SHARE))
    rest = [r for i, r in enumerate(order) if i not in test_pos]
    val_pos = set(held_out(len(rest), VAL_SHARE))
    return {"train": [r for i, r in enumerate(rest) if i not in val_pos],
            "val": [r for i, r in enumerate(rest) if i in val_pos],
            "test": [r for i, r in enumerate(order) if i in test_pos]}


def clip_records(cfg: Any) -> dict[str, ClipSet]:
    """{"train", "val", "test", "test_shifted"}: K + 1-class ClipSets of CLIP_FRAMES-frame clips (the classes:
    the benchmark's, then BACKGROUND). Positives keep the course's validation split of the threads. On real HACS
    (:func:`setting`): :func:`real_clip_records`."""
    if is_real(cfg):
        return real_clip_records(cfg.dataset["root"])
    base = benchmark_splits(cfg, ("train", VAL_SPLIT, "test", "test_shifted", "negatives"))
    classes = (*base["train"].classes, BACKGROUND)
    neg = split_negatives(list(base["negatives"]))
    out = {}
    for split in ("train", VAL_SPLIT, "test", "test_shifted"):
        clips = [positive_clip(dataclasses.replace(r, split=split)) for r in base[split]]
        clips += [c for r in neg["test" if split == "test_shifted" else split] for c in negative_clips(r, split)]
        out[split] = ClipSet(clips, classes, DATASET, base["train"].root, split)
    return out


def fewest_positive_classes(records: ClipSet, k: int = REAL_CLASSES) -> tuple[str, ...]:
    """The ``k`` classes with the fewest positive clips in ``records`` (000 section 4.2's choice of HACS-30; ties
    by name), in the set's class order; every class with a positive when there are fewer."""
    counts = {c: 0 for c in records.classes}
    for r in records:
        for c in r.labels:
            counts[c] += 1
    present = [c for c in records.classes if counts[c]]
    chosen = set(sorted(present, key=lambda c: (counts[c], c))[:k])
    return tuple(c for c in records.classes if c in chosen)


def hacs_clip(record: Record, classes: tuple[str, ...], split: str) -> Record | None:
    """A HACS Clips record as a K + 1-class clip: a positive of ``classes`` keeps its class, a negative of one
    of them becomes BACKGROUND (None otherwise), in ``split``; CLIP_FRAMES frames over its [start, end] seconds."""
    if record.labels:
        if record.labels[0] not in classes:
            return None
        labels = tuple(record.labels)
    elif record.extra.get("negative_of") in classes:
        labels = (BACKGROUND,)
    else:
        return None  # unlabelled (HACS testing) or a negative of another class
    if record.start is None or record.end is None or not record.end > record.start:
        raise ValueError(f"HACS clip {record.id} ({record.video}): needs start < end in seconds, got "
                         f"[{record.start}, {record.end}]")
    extra = {**record.extra, "frames": CLIP_FRAMES, "action_frames": (0, CLIP_FRAMES),
             "clip_seconds": (float(record.start), float(record.end))}
    return dataclasses.replace(record, labels=labels, split=split, extra=extra)


def real_clip_records(root: str | Path, num_classes: int | None = None) -> dict[str, ClipSet]:
    """{"train", "val", "test"} of HACS Clips under ``root`` (the published CSV, the videos as download_videos.py
    saves them; a FileNotFoundError lists missing videos): the ``num_classes`` (default REAL_CLASSES) classes
    with the fewest training positives plus BACKGROUND (their negatives), HACS training split into train and val
    (VAL_SHARE, stratified by class, actx.data.splits.validation_split) and HACS validation as ``test``."""
    from actx.data import load_dataset
    from actx.data.splits import validation_split

    hacs_train = load_dataset(REAL, root, "train", check_files=True)
    classes = fewest_positive_classes(hacs_train, REAL_CLASSES if num_classes is None else num_classes)
    if not classes:
        raise ValueError(f"{root}: HACS training has no positive clip (label 1) to learn from")
    out = {}
    for split, source in (("train", hacs_train), ("test", load_dataset(REAL, root, "val", check_files=True))):
        clips = [c for c in (hacs_clip(r, classes, split) for r in source) if c is not None]
        out[split] = ClipSet(clips, (*classes, BACKGROUND), REAL_DATASET, root, split)
    for split in ("train", "test"):
        missing = {BACKGROUND} - {c for r in out[split] for c in r.labels}
        if missing:
            raise ValueError(f"{root}: HACS {'training' if split == 'train' else 'validation'} has no negative "
                             f"clip (label -1) of the classes {list(classes)}: the background class is empty")
    out["train"], val = validation_split(out["train"])
    out[VAL_SPLIT] = ClipSet([dataclasses.replace(r, split=VAL_SPLIT) for r in val], val.classes, REAL_DATASET,
                             root, VAL_SPLIT)
    return {s: out[s] for s in ("train", VAL_SPLIT, "test")}


def all_clips(records: Mapping[str, ClipSet]) -> list[Record]:
    """Every clip once (test negatives are in two splits)."""
    seen: dict[str, Record] = {}
    for clips in records.values():
        for r in clips:
            seen.setdefault(r.id, r)
    return list(seen.values())


# --- the frozen part, cached -------------------------------------------------------------------------------------
def frozen_config(cfg: Any) -> dict[str, Any]:
    from actx.backbones.inflate import SPLIT, TIME_KERNEL, TIME_STRIDED_BLOCKS

    data = f"{REAL}:{cfg.dataset['root']}" if is_real(cfg) else cfg.stage_hash("data")
    return {"version": FROZEN_VERSION, "backbone": "efficientnet_lite0_inflated", "split": SPLIT,
            "time_kernel": TIME_KERNEL, "time_strided_blocks": list(TIME_STRIDED_BLOCKS),
            "size": list(SIZE[cfg.profile]), "clip_frames": CLIP_FRAMES, "data": data}


def _store_dir(cfg: Any, kind: str, config: Mapping[str, Any]) -> Path:
    from actx.config import config_hash

    return Path(cfg.cache) / "hacs30" / f"{kind}-{config_hash(config)}"


def decode_clip(record: Record, size: tuple[int, int], cache: dict | None = None) -> np.ndarray:
    """The clip's CLIP_FRAMES frames, uint8 (CLIP_FRAMES, H, W, 3) at ``size``: a benchmark clip's frames from
    ``extra["clip_start"]`` (``cache`` keeps the last decoded video), a real clip's ``extra["clip_seconds"]``
    window sampled at CLIP_FRAMES frames over its length (16 fps for HACS's 2 s). A window that ends early
    (the video is shorter than the annotation says) is padded by repeating its last frame if it holds at least
    half the frames; otherwise a ValueError names the video."""
    from actx.video import read_video

    if "clip_seconds" in record.extra:
        t0, t1 = record.extra["clip_seconds"]
        clip = read_video(record.video, size=size, start=t0, end=t1, fps=CLIP_FRAMES / (t1 - t0),
                          max_frames=CLIP_FRAMES)  # (<= CLIP_FRAMES, H, W, 3)
        if len(clip) < CLIP_FRAMES // 2:
            raise ValueError(f"{record.video}: clip {record.id} covers [{t0}, {t1}) s but only {len(clip)} frames "
                             f"decode there (a HACS clip needs {CLIP_FRAMES}); is the video complete?")
        return np.concatenate([clip, np.repeat(clip[-1:], CLIP_FRAMES - len(clip), 0)])
    cache = {} if cache is None else cache
    if record.video not in cache:
        cache.clear()
        cache[record.video] = read_video(record.video, size=size)  # (T, H, W, 3) uint8
    frames = cache[record.video]
    s = int(record.extra["clip_start"])
    clip = frames[s:s + CLIP_FRAMES]
    if len(clip) != CLIP_FRAMES:
        raise ValueError(f"{record.video}: clip {record.id} needs frames [{s}, {s + CLIP_FRAMES}), the video "
                         f"decodes to {len(frames)}")
    return clip


def ensure_frozen(cfg: Any, records: Mapping[str, ClipSet], progress: bool = True) -> FeatureStore:
    """Load-or-compute: the frozen part's output (C_split, CLIP_FRAMES / 4, H / 16, W / 16) of every clip, in a
    FeatureStore under cfg.cache / "hacs30" / frozen-<hash of the settings>."""
    from actx.backbones.inflate import inflated_efficientnet_lite0

    config = frozen_config(cfg)
    store = FeatureStore(_store_dir(cfg, "frozen", config))
    clips = sorted(all_clips(records), key=lambda r: (r.video, r.id))
    todo = [r for r in clips if not store.has(r.id, STREAM)]
    if not todo:
        return store
    store.consolidate()
    store.begin(STREAM, config)
    net = inflated_efficientnet_lite0().eval()
    decoded: dict = {}
    with torch.inference_mode():
        for r in tqdm(todo, desc="frozen part (inflated EfficientNet)", unit="clip", disable=not progress):
            clip = torch.from_numpy(decode_clip(r, tuple(SIZE[cfg.profile]), decoded))  # (T, H, W, 3)
            x = clip.permute(3, 0, 1, 2).unsqueeze(0).float().div_(255.0)  # (1, 3, T, H, W)
            store.put(r.id, STREAM, net.forward_frozen(x)[0].numpy(), CLIP_FRAMES)  # (C, T/4, H/16, W/16)
    store.consolidate(verify=False)
    return store.refresh()


# --- the fine-tuned backbone and its maps ------------------------------------------------------------------------
def run_backbone(cfg: Any, records: Mapping[str, ClipSet], seed: int = 0, progress: bool = True) -> RunResult:
    """The method ``hacs_backbone`` (the fine-tuned network alone, Table 3's "Backbone"), trained once."""
    store = ensure_frozen(cfg, records, progress)
    return run(hacs_config(cfg), "hacs_backbone", STREAM, seed, store=store, records=records,
               params=backbone_params(cfg), progress=progress)


def ensure_finetuned(cfg: Any, records: Mapping[str, ClipSet], backbone: RunResult, progress: bool = True
                     ) -> FeatureStore:
    """Load-or-compute: the fine-tuned (1280, CLIP_FRAMES / 8, H / 32, W / 32) map of every clip, computed by
    ``backbone``'s trained head from the frozen part's cached output."""
    frozen = ensure_frozen(cfg, records, progress)
    config = {"frozen": frozen_config(cfg), "backbone": str(backbone.path), "recipe": backbone.recipe}
    store = FeatureStore(_store_dir(cfg, "finetuned", json.loads(json.dumps(config, default=str))))
    todo = [r for r in all_clips(records) if not store.has(r.id, STREAM)]
    if not todo:
        return store
    store.consolidate()
    store.begin(STREAM, {"backbone_run": str(backbone.path), "frozen": frozen.root.name})
    head = backbone.head.eval()
    with torch.inference_mode():
        for r in tqdm(todo, desc="fine-tuned maps", unit="clip", disable=not progress):
            f = torch.from_numpy(np.asarray(frozen.load(r.id, STREAM), dtype=np.float32))[None]
            store.put(r.id, STREAM, head(f)["fmap"][0].numpy(), CLIP_FRAMES)  # (1280, T/8, H/32, W/32)
    store.consolidate(verify=False)
    return store.refresh()


def neighbour_pairs(store: FeatureStore, records: Mapping[str, ClipSet]) -> pd.DataFrame:
    """Each training positive's top-3 nearest training negatives by the fine-tuned embedding (000 section 4.2:
    "feature embeddings extracted by the 3D-Res34-RGB network"): cosine of the clips' averaged maps."""
    from actx.conjugates import neighbour_conjugates
    from actx.conjugates.mine import clip_embeddings

    train = list(records["train"])
    pos = [r for r in train if BACKGROUND not in r.labels]
    neg = [r for r in train if BACKGROUND in r.labels]
    return neighbour_conjugates(pos, neg, clip_embeddings(store, [r.id for r in pos], STREAM),
                                clip_embeddings(store, [r.id for r in neg], STREAM))


def run_head(cfg: Any, method: str, records: Mapping[str, ClipSet], seed: int = 0, progress: bool = True,
             backbone_seed: int = 0, head_lr: float = HEAD_LR) -> RunResult:
    """An attention head (``hacs_attentional``, ``hacs_acf``, ``hacs_actx``: the weighted cross entropy; or any
    other row, e.g. ``avgpool``) on the fine-tuned maps, with the neighbour conjugates where the method takes
    conjugates, trained with learning rate ``head_lr``."""
    backbone = run_backbone(cfg, records, backbone_seed, progress)
    store = ensure_finetuned(cfg, records, backbone, progress)
    pairs = neighbour_pairs(store, records)
    return run(hacs_config(cfg, head_lr), method, STREAM, seed, conjugates="neighbour", store=store,
               records=records, pairs=pairs, progress=progress)


def choose_head_lr(cfg: Any, method: str, records: Mapping[str, ClipSet], progress: bool = True
                   ) -> tuple[float, pd.Series]:
    """The learning rate of HEAD_LR_GRID with the best val mAP of ``method`` (seed 0; ties: the smaller), and
    the val mAP of every value (NaN for a value whose training diverged: it is never chosen). The runs are
    cached, so the chosen one is reused as the seed-0 run."""
    from actx.train import TrainingDiverged

    val = {}
    for lr in HEAD_LR_GRID:
        try:
            val[lr] = run_head(cfg, method, records, 0, progress, head_lr=lr).metrics[VAL_SPLIT]["mAP"]
        except TrainingDiverged:
            val[lr] = float("nan")
    val = pd.Series(val, name=method)
    if val.isna().all():
        raise RuntimeError(f"{method}: training diverged at every learning rate of {HEAD_LR_GRID}")
    return float(val.idxmax()), val


# --- tables ------------------------------------------------------------------------------------------------------
def per_class_accuracy(result: RunResult, split: str) -> pd.Series:
    """Accuracy of the top-1 prediction within each class (the terms of the mean class accuracy), by class."""
    probs, labels = result.probs[split], result.labels[split]
    true, pred = labels.argmax(1), probs.argmax(1)
    return pd.Series({c: float(np.mean(pred[true == k] == k)) if (true == k).any() else float("nan")
                      for k, c in enumerate(result.classes)}, name="accuracy")


def table(results: Mapping[str, list[RunResult]], titles: Mapping[str, str],
          splits: tuple[str, ...] = ("test", "test_shifted")) -> pd.DataFrame:
    """One row per method: mAP and mean class accuracy over the K + 1 classes on ``splits`` (mean ± sample std
    over its seeds, percent; :func:`report_splits`), the background's accuracy on test, and the paper's Table 3
    numbers."""
    from .tables import seeds_pm

    rows = []
    for method, runs in results.items():
        row: dict[str, Any] = {"Method": titles[method], "seeds": len(runs)}
        for split in splits:
            for key, name in (("mAP", "mAP"), ("mean_class_acc", "mAcc")):
                row[f"{split} {name}"] = seeds_pm([100 * r.metrics[split][key] for r in runs])
        row["test background acc"] = seeds_pm([100 * per_class_accuracy(r, "test")[BACKGROUND] for r in runs])
        row["Paper mAP"], row["Paper mAcc"] = PAPER.get(method, (None, None))
        rows.append(row)
    return pd.DataFrame(rows)

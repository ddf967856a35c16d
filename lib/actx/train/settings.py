"""Training settings: one frozen dataclass built from a profile's ``cfg.train`` (or from a paper preset).

The papers' schedules (ActX supplementary material, 001 section 2) are kept here as named presets, so a user
can train any head with, e.g., ``TrainSettings.from_config(cfg, preset="hollywood2")``:

- ActionThread (001 section 2.2): Adam (0.9, 0.999), lr 0.01, 60 epochs, /10 at epochs 20 and 40, weight decay
  1e-4.
- Hollywood2 (001 section 2.3): Adam (0.9, 0.999), lr 0.001, 30 epochs, /10 at epochs 10 and 20, weight decay
  1e-4.
- HACS-30 heads (001 section 2.4): SGD with momentum 0.9, batch 64, lr 1e-4, 5 epochs, /10 at epoch 3.

Batch size and temporal crops come from the main paper (000 section 4.1.2 and the Hollywood2 experiments):
batch 36 videos, crop 10 feature steps (80 frames) on ActionThread and 6 (48 frames) on Hollywood2; "at test
time, temporal cropping is unnecessary. The entire feature maps are fed into the network".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

OPTIMIZERS = ("adam", "sgd")
AMP_MODES = ("auto", "off", "bf16", "fp16")

# Settings that change neither the numbers a run produces nor its checkpoints' meaning: a run may be resumed
# with other values of these (``epochs`` may grow to continue a finished run).
NON_RESULT_FIELDS = ("epochs", "num_workers", "eval_every")

# Named schedules from the papers (ActX 000 section 4, 001 section 2).
PRESETS: dict[str, dict[str, Any]] = {
    "actionthread": dict(epochs=60, lr=1e-2, milestones=(20, 40), batch_size=36, crop=10, weight_decay=1e-4),
    "hollywood2": dict(epochs=30, lr=1e-3, milestones=(10, 20), batch_size=36, crop=6, weight_decay=1e-4),
    # HACS-30 clips are 2 s (32 frames): no temporal crop. Weight decay is not given: we keep the ActX value.
    "hacs30": dict(epochs=5, lr=1e-4, milestones=(3,), batch_size=64, crop=None, weight_decay=1e-4,
                   optimizer="sgd", momentum=0.9),
}


@dataclass(frozen=True)
class TrainSettings:
    """Everything :func:`actx.train.fit` needs besides the model, the objective and the data.

    epochs        number of passes over the training set
    lr            initial learning rate
    milestones    epochs after which the learning rate is multiplied by ``gamma`` (MultiStepLR, stepped per
                  epoch: "reduced by a factor of 10 at epoch 20" means epochs 21.. use lr / 10)
    gamma         the factor at each milestone (ActX supplement 2.2: "reduced by a factor of 10")
    batch_size    the global batch: under torchrun each of the N processes takes batch_size / N samples
    crop          temporal crop length in feature-map steps for training (None: whole maps); predict() always
                  uses whole maps
    weight_decay  L2 penalty added to the gradient (torch Adam's ``weight_decay``, the supplement's "weight
                  decay")
    betas         Adam's (beta1, beta2) (ActX supplement 2.2, 2.3)
    optimizer     "adam" (ActX supplement 2.2, 2.3) or "sgd" (HACS-30, supplement 2.4)
    momentum      SGD momentum (only for optimizer="sgd"; supplement 2.4 uses 0.9)
    amp           "auto" (bfloat16 autocast on CUDA, off on CPU), "off", "bf16" or "fp16" (CUDA only,
                  GradScaler)
    grad_clip     max global gradient norm, or None for no clipping (the papers do not clip)
    num_workers   DataLoader worker processes (0: load in the main process)
    seed          the seed every random choice of the run derives from (shuffling, crops, dropout)
    loss_weights  None: train on the objective's own total ``"loss"``. A mapping {name: weight}: train on
                  sum_k weight_k * parts[k] instead (ActX Eq. 1 with named weights, e.g. class / sim / diff)
    eval_every    call ``eval_fn`` every this many epochs (and always after the last one)
    """

    epochs: int = 30
    lr: float = 1e-3
    milestones: tuple[int, ...] = (10, 20)
    gamma: float = 0.1
    batch_size: int = 16
    crop: int | None = None
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: str = "adam"
    momentum: float = 0.9
    amp: str = "auto"
    grad_clip: float | None = None
    num_workers: int = 0
    seed: int = 0
    loss_weights: Mapping[str, float] | None = None
    eval_every: int = 1

    def __post_init__(self):
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.loss_weights is not None:
            weights = {str(k): float(v) for k, v in dict(self.loss_weights).items()}
            object.__setattr__(self, "loss_weights", weights)
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            problems.append(f"milestones must be increasing positive epochs, got {self.milestones}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.crop is not None and self.crop < 1:
            problems.append(f"crop must be None (whole maps) or >= 1 time steps, got {self.crop}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            problems.append(f"grad_clip must be None or > 0, got {self.grad_clip}")
        if self.eval_every < 1:
            problems.append(f"eval_every must be >= 1, got {self.eval_every}")
        if problems:
            raise ValueError("invalid TrainSettings: " + "; ".join(problems))

    @classmethod
    def from_config(cls, cfg: Any, preset: str | None = None, seed: int | None = None,
                    **overrides: Any) -> "TrainSettings":
        """Settings from ``cfg.train`` (an :class:`actx.config.Config`, or the mapping itself).

        preset     a name in :data:`PRESETS` ("actionthread", "hollywood2", "hacs30"): its schedule replaces
                   the profile's (other profile keys, e.g. ``amp``, stay)
        seed       the run's seed; default ``cfg.seed`` (notebooks loop over ``cfg.train["seeds"]`` and pass
                   each)
        overrides  any field, applied last
        """
        section = dict(cfg.train if hasattr(cfg, "train") else cfg)
        section.pop("seeds", None)  # the list of seeds to repeat a run with: a notebook's loop, not one run's
        section.pop("stream_epochs", None)  # per-stream lengths: the runner's (actx.experiments.method_settings)
        section.pop("run_workers", None)  # how many runs train side by side: actx.experiments.run_many's
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown training preset {preset!r}; known: {sorted(PRESETS)}")
            section.update(PRESETS[preset])
        section.update(overrides)
        if seed is not None:
            section["seed"] = seed
        elif "seed" not in section and hasattr(cfg, "seed"):
            section["seed"] = cfg.seed
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"training settings {unknown} are not TrainSettings fields; known: "
                             f"{sorted(known)}")
        return cls(**section)

    def result_dict(self) -> dict[str, Any]:
        """The fields that determine a run's numbers (all but :data:`NON_RESULT_FIELDS`), to check resumes."""
        d = dataclasses.asdict(self)
        for name in NON_RESULT_FIELDS:
            d.pop(name)
        return d

"""One training loop for every head (ActX supplementary material, 001 section 2).

    settings = TrainSettings.from_config(cfg)                  # or preset="hollywood2", seed=1, epochs=5, ...
    history = fit(head, objective, train_set, settings, cfg.cache / "runs" / "actx_rgb", device=cfg.device,
                  eval_fn=lambda m, epoch: {"test_map": ...})
    out = predict(head, test_set, cfg.device)                 # {"logits": (N, C), "S": (N, T, H, W), ...}

Modules: settings (TrainSettings, PRESETS), batching (collate_maps, TemporalCrop), loop (fit, History,
TrainingDiverged), predict, checkpoint, precision (CUDA autocast); the process group is actx.runtime (shutdown re-exported here).
"""

from .batching import CROP_GROUPS, MAP_KEYS, IndexedDataset, TemporalCrop, collate_maps
from .checkpoint import CheckpointMismatch
from .loop import History, TrainingDiverged, fit, joint_loss
from actx.runtime import shutdown
from .predict import predict
from .settings import PRESETS, TrainSettings

__all__ = ["CROP_GROUPS", "MAP_KEYS", "PRESETS", "CheckpointMismatch", "History", "IndexedDataset",
           "TemporalCrop", "TrainSettings", "TrainingDiverged", "collate_maps", "fit", "joint_loss",
           "predict", "shutdown"]

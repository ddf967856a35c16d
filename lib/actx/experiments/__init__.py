"""Train and evaluate every method on the benchmark's feature maps, cached: the engine of notebooks 04-09.

    from actx.experiments import run, run_many, late_fusion, grounding, results_table, METHODS
    rgb = run(cfg, "actx", "rgb", seed=0)           # load-or-compute under cfg.cache / "runs"
    flow = run(cfg, "actx", "flow", seed=0)
    runs = run_many(cfg, {(m, s): (m, s, 0) for m in ("avgpool", "actx") for s in ("rgb", "flow")})  # side by side
    both = late_fusion(rgb, flow)                   # the papers' "RGB + Flow"
    grounding(cfg, rgb, "test")                     # S and C against the actor masks
    results_table(cfg, ["avgpool", "actx"], ["rgb", "flow", "rgb+flow"])

Modules: methods (the registry), samples (action and conjugate windows), normalise (the optional fixed feature
scale), scoring (mAP, top-1, mean class accuracy), runner (run, run_many, RunResult, load_run), fusion (late_fusion),
grounding (grounding, frame_window), diagnosis (ActX's conjugate signal before training, gradient shares),
judge (compare_seeds: one rule for a difference against the seed spread), tables (results_table), schedule (the
number of epochs chosen on val), sampling (the frames per step chosen on val).
"""

from .fusion import late_fusion
from .grounding import actor_grids, frame_window, grounding, grounding_table, map_cells
from .judge import Difference, compare_seeds, judge
from .methods import (METHODS, MULTI_LABEL, Method, count_parameters, get_method, optional_conjugates,
                      uses_conjugates)
from .paper import PAPER_MAP, PAPER_PARAMS, paper_map
from .normalise import NORMALISATION, Scale, feature_transform, normalisation_recipe, voxel_norm_scale
from .inputs import INPUTS
from .runner import (EVAL_SPLITS, PREDICTIONS, RESULT, RUNS, RealSet, RunMismatch, RunResult, benchmark_splits,
                     dataset_setting, eval_splits, load_run, method_config, params_suffix, recipe_for, run, run_dir,
                     run_many, train_settings)
from .samples import VIDEO_KINDS, WindowSamples, action_steps
from .scoring import METRIC_NAMES, class_ap, probabilities, softmax, split_metrics
from .tables import FUSED, mean_pm, results_table, seeds_pm, stream_result
from . import where_when  # paper 003's localisation experiments (spatial_localisation, temporal_localisation)
from . import diagnosis  # ActX's conjugate signal without training, where it lands, its share of the gradient
from .diagnosis import diagnostic_config, difference_maps, gradient_history, gradient_shares, where_different

__all__ = ["PAPER_MAP", "PAPER_PARAMS", "paper_map",
    "Difference", "compare_seeds", "frame_window", "judge", "EVAL_SPLITS", "FUSED", "INPUTS", "eval_splits", "method_config", "params_suffix", "probabilities", "METHODS", "METRIC_NAMES", "MULTI_LABEL", "Method", "NORMALISATION",
    "PREDICTIONS", "RESULT", "RUNS", "RealSet", "RunMismatch", "RunResult", "Scale", "VIDEO_KINDS",
    "WindowSamples", "action_steps", "actor_grids", "benchmark_splits", "class_ap", "count_parameters", "dataset_setting",
    "feature_transform", "get_method", "grounding", "grounding_table", "late_fusion", "load_run",
    "mean_pm", "seeds_pm", "normalisation_recipe", "optional_conjugates", "recipe_for", "results_table", "run", "run_dir", "run_many", "train_settings", "softmax",
    "map_cells", "split_metrics", "diagnosis", "diagnostic_config", "difference_maps", "gradient_history",
    "gradient_shares", "where_different", "stream_result", "uses_conjugates", "voxel_norm_scale",
]

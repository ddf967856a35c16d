"""Tests for the validation-split choices: frames per step (actx.experiments.sampling) and the methods' open values
(actx.experiments.tuning), on hand-made tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from actx.experiments import sampling, tuning


def _study(values: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([dict(frames_per_step=k, seed=s, val_mAP=v, extract_seconds=1.0, backbone_frames=k)
                         for k, vs in values.items() for s, v in enumerate(vs)])


def test_frames_per_step_smallest_k_not_clearly_worse():
    # k = 1 is 1.5 below the best with spread ~1: suggestive, not clear -> the cheapest k is kept
    assert sampling.choose_frames_per_step(_study({1: [72.0, 74.0], 2: [74.0, 75.0], 8: [73.0, 74.0]})) == 1
    # k = 1 and 2 clearly below k = 4 (gaps far beyond the spread): the smallest that is not is 4
    assert sampling.choose_frames_per_step(_study({1: [60.0, 60.5], 2: [65.0, 65.2], 4: [74.0, 74.4],
                                                   8: [74.2, 74.6]})) == 4
    assert sampling.choose_frames_per_step(_study({1: [70.0], 8: [71.0]})) == 8  # one seed: the best
    summary = sampling.summarise(_study({1: [72.0, 74.0], 8: [73.0, 74.0]}))
    assert summary.loc[1, "val_mAP_mean"] == 73.0 and summary.loc[1, "seeds"] == 2


def test_the_default_profile_samples_what_the_tracked_studies_pick():
    """figures/frame_sampling_<stream>.csv are the study's tables (benchmarks/frame_sampling.py); notebook 02 checks
    them only when it writes to the repository's figures/, so the same check runs here on every commit."""
    from actx.config import REPO_ROOT, make_config
    from actx.features import frames_per_step

    cfg = make_config("default", None, "cpu")
    for stream in ("rgb", "flow"):
        table = pd.read_csv(REPO_ROOT / "figures" / sampling.study_file(stream))
        assert set(table["frames_per_step"]) == set(sampling.STUDY_KS)
        pick = sampling.choose_frames_per_step(table)
        assert (frames_per_step(cfg.features, stream) or int(cfg.features["time_stride"])) == pick, stream


def test_acrn_trains_with_the_learning_rate_the_tracked_study_picks():
    """figures/acrn_lr.csv (benchmarks/acrn_lr.py), checked by notebook 11 only when it writes to the repository's
    figures/: the same check on every commit."""
    from actx.config import REPO_ROOT, make_config
    from actx.models.acrn import tuning as acrn_tuning

    cfg = make_config("default", None, "cpu")
    table = pd.read_csv(REPO_ROOT / "figures" / acrn_tuning.STUDY_FILE)
    assert table.groupby(["lr", "method"]).size().min() >= 2  # several seeds per (lr, method)
    assert acrn_tuning.choose_lr(table, cfg.detection_train["lr"]) == cfg.detection_train["lr"]


def _tuning(scores: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    rows = []
    for (method, index), vals in scores.items():
        setting = tuning.GRID[method][index]
        for seed, v in enumerate(vals):
            rows.append(dict(method=method, setting=index, params=json.dumps(setting, sort_keys=True),
                             is_default=index == 0, seed=seed, val_mAP=v))
    return pd.DataFrame(rows)


def test_open_values_best_mean_and_first_on_ties():
    table = _tuning({("actx", 0): [70.0, 72.0], ("actx", 1): [73.0, 71.0], ("actx", 2): [74.0, 74.0],
                     ("acf", 0): [70.0, 70.0], ("acf", 3): [70.0, 70.0]})
    chosen = tuning.choose(table)
    assert chosen["actx"] == tuning.GRID["actx"][2] and chosen["acf"] == tuning.GRID["acf"][0]  # tie: first
    s = tuning.summary(table)
    assert s.loc[("actx", 2), "chosen"] and not s.loc[("actx", 0), "chosen"]
    assert s["chosen"].sum() == 2


def test_grid_is_the_same_for_every_method_and_holds_valid_keys():
    from actx.experiments import get_method

    assert tuning.GRID["acf"] == tuning.GRID["actx"] and len(tuning.GRID["actx"]) == 4
    for method, settings in tuning.GRID.items():
        for setting in settings:
            assert set(setting) <= set(get_method(method).params)


def test_registry_check_flags_only_a_clearly_better_setting():
    from actx.experiments import get_method

    reg = {m: next(i for i, st in enumerate(tuning.GRID[m])
                   if all(get_method(m).params[k] == v for k, v in st.items())) for m in ("acf", "actx")}
    other = {m: (reg[m] + 1) % 4 for m in reg}
    close = _tuning({**{(m, reg[m]): [70.0, 72.0] for m in reg}, **{(m, other[m]): [71.0, 73.0] for m in reg}})
    assert tuning.check_defaults(close) == {}  # one point ahead with a spread of 1.4: not clear
    far = _tuning({**{(m, reg[m]): [70.0, 70.5] for m in reg}, **{(m, other[m]): [75.0, 75.5] for m in reg}})
    flagged = tuning.check_defaults(far)
    assert set(flagged) == {"acf", "actx"} and flagged["actx"]["best"] == tuning.GRID["actx"][other["actx"]]
    missing = _tuning({(m, other[m]): [70.0, 71.0] for m in reg})
    assert all("missing" in v for v in tuning.check_defaults(missing).values())
    with pytest.raises(KeyError):
        tuning.choose(pd.DataFrame(columns=["method"]))["actx"]

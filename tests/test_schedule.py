"""actx.experiments.schedule: the schedule's shape for any length, the study's folders, and the rule that picks the
number of epochs on val (no method worse than the reference by more than the seed spread)."""

from __future__ import annotations

import pandas as pd
import pytest

import actx.config
from actx.experiments.schedule import choose_epochs, compare_to, milestones, profile_schedule, schedule_config


def test_milestones_keep_the_default_shape():
    assert milestones(12) == (8, 11)  # the profile's schedule before the study
    assert [milestones(n) for n in (8, 6, 4, 3)] == [(5, 7), (4, 5), (2, 3), (2, 2)]
    with pytest.raises(ValueError, match="at least 3"):
        milestones(2)


def test_shorter_schedules_get_their_own_folders_and_no_test_split(tmp_path):
    cfg = actx.config.make_config("default", tmp_path, "cpu")
    assert profile_schedule(cfg, "flow") == (12, (8, 11)) and profile_schedule(cfg, "rgb") == (6, (4, 5))
    assert schedule_config(cfg, 12, "flow") is cfg and schedule_config(cfg, 6, "rgb") is cfg  # the course's runs
    short = schedule_config(cfg, 12, "rgb")
    assert short.train["epochs"] == 12 and tuple(short.train["milestones"]) == (8, 11)
    assert short.train["stream_epochs"] is None
    assert short.data_root == tmp_path / "studies" / "epochs=12" and tuple(short.dataset["eval_splits"]) == ()


def test_a_stream_named_in_stream_epochs_trains_that_schedule(tmp_path):
    from actx.experiments import get_method
    from actx.experiments.runner import method_settings

    cfg = actx.config.make_config("default", tmp_path, "cpu")
    rgb, flow = (method_settings(cfg, get_method("actx"), 0, s) for s in ("rgb", "flow"))
    assert (rgb.epochs, rgb.milestones) == (6, (4, 5)) and (flow.epochs, flow.milestones) == (12, (8, 11))
    assert _recipe(cfg, "rgb")["settings"]["epochs"] == 6 and _recipe(cfg, "flow")["settings"]["epochs"] == 12


def _recipe(cfg, stream):
    from actx.experiments import recipe_for

    return recipe_for(cfg, "avgpool", stream, 0, "thread")


def _table(values: dict[tuple[int, str], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([dict(epochs=n, method=m, stream="rgb", seed=s, val_mAP=v)
                         for (n, m), vs in values.items() for s, v in enumerate(vs)])


def test_the_fewest_epochs_that_leave_every_method_within_the_spread_are_chosen():
    table = _table({(12, "a"): [70, 72, 74], (12, "b"): [50, 51, 52],
                    (6, "a"): [69, 71, 73],  # 1 point lower, spread 2: within
                    (6, "b"): [50, 52, 54],  # higher
                    (4, "a"): [71, 72, 73],
                    (4, "b"): [46, 47, 48]})  # 4 points lower, spread 1: worse
    judged = compare_to(table, 12).set_index(["epochs", "method"])
    assert not judged.loc[(6, "a"), "worse"] and judged.loc[(4, "b"), "worse"]
    assert judged.loc[(6, "a"), "diff"] == pytest.approx(-1.0) and judged.loc[(6, "a"), "spread"] == pytest.approx(2)
    assert choose_epochs(table, 12) == {"rgb": 6}
    # a drop of 1.5 spreads (suggestive, not clear) already counts as worse
    worse = _table({(12, "a"): [70, 72, 74], (6, "a"): [67, 69, 71]})
    assert choose_epochs(worse, 12) == {"rgb": 12}


def test_the_default_profile_trains_what_the_tracked_study_picks():
    """figures/schedule.csv is the study's table (benchmarks/schedule.py); notebook 04 checks it only when it
    writes to the repository's figures/, so the same check runs here on every commit."""
    from actx.config import REPO_ROOT
    from actx.experiments.schedule import STUDY_FILE

    table = pd.read_csv(REPO_ROOT / "figures" / STUDY_FILE)
    cfg = actx.config.make_config("default", None, "cpu")
    picks = choose_epochs(table)
    assert set(picks) == {"rgb", "flow"} and table.groupby(["epochs", "method", "stream"]).size().eq(3).all()
    assert {s: profile_schedule(cfg, s) for s in picks} == {s: (n, milestones(n)) for s, n in picks.items()}

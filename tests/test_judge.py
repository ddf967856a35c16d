"""actx.experiments.judge: the one rule for "more than the seed spread"."""

import math

import pytest

from actx.experiments.judge import compare_seeds, judge


def test_thresholds_and_one_seed():
    assert judge(2.5, 1.0, 0.5, 3).verdict == "clear"  # 2.5 spreads
    assert judge(-1.5, 0.5, 1.0, 3).verdict == "suggestive"  # the larger std is the spread
    assert judge(0.9, 1.0, 1.0, 3).verdict == "within spread"
    assert judge(2.0, 1.0, 1.0, 3).verdict == "suggestive"  # exactly two spreads is not yet clear
    assert judge(1.0, 1.0, 1.0, 3).verdict == "within spread"  # exactly one is not yet suggestive
    one = judge(5.0, math.nan, math.nan, 1)
    assert one.verdict == "one seed" and math.isnan(one.ratio) and "unknown" in one.describe()


def test_a_ratio_of_exactly_one_is_judged_as_one():
    # top-1 over 96 clips comes in steps of 100/96: these means differ by exactly one sample std of b, which
    # float64 computes as 1.0000000000000018 spreads; before rounding that printed "suggestive"
    a = [x * 100 / 96 for x in (50, 51, 52)]
    b = [x * 100 / 96 for x in (51, 53, 55)]
    d = compare_seeds(a, b)
    assert d.ratio == 1.0 and d.verdict == "within spread"
    assert d.diff == pytest.approx(-200 / 96) and d.spread == pytest.approx(200 / 96)


def test_compare_seeds_needs_two_series_of_one_length():
    with pytest.raises(ValueError, match="same, non-zero length"):
        compare_seeds([1.0, 2.0], [1.0])
    assert compare_seeds([70.0], [60.0]).verdict == "one seed"

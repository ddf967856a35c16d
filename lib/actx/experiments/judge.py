"""One rule for "is this difference more than the spread over seeds?", used by every notebook that compares two
methods (or two settings) run with several seeds.

The spread is the larger of the two sample standard deviations over seeds (ddof = 1): the noise of the noisier
series. The difference of the means is then judged by its ratio to that spread:

    ratio > 2        a clear difference
    1 < ratio <= 2   suggestive, not conclusive
    ratio <= 1       within the seed spread: no evidence either way
    one seed         no spread is known: only the sign is reported

The thresholds are the usual one- and two-sigma marks; with two or three seeds a sample std is itself rough, so
"clear" asks for twice the spread. The ratio is rounded to RATIO_DIGITS decimals before it meets a threshold:
scores that come in steps (top-1 over a few dozen clips) can make a difference exactly one or two spreads in
exact arithmetic, and floating-point rounding must not decide which side of the mark it lands on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CLEAR, SUGGESTIVE = 2.0, 1.0  # ratio thresholds (see the module docstring)
RATIO_DIGITS = 9  # far below any real difference, far above float64 rounding (about 1e-15 relative)


@dataclass(frozen=True)
class Difference:
    """``diff`` = mean(a) - mean(b); ``spread`` the larger sample std (NaN with one seed); ``ratio`` =
    |diff| / spread; ``verdict`` one of "clear", "suggestive", "within spread", "one seed"."""

    diff: float
    spread: float
    ratio: float
    seeds: int
    verdict: str

    @property
    def clear(self) -> bool:
        return self.verdict == "clear"

    def describe(self) -> str:
        """A clause for a sentence, e.g. '3.1 times the larger seed spread (0.8): a clear difference'."""
        if self.verdict == "one seed":
            return "one seed only, so the spread over seeds is unknown"
        words = {"clear": "a clear difference", "suggestive": "suggestive, not conclusive",
                 "within spread": "within the seed spread: no evidence either way"}[self.verdict]
        return f"{self.ratio:.1f} times the larger seed spread ({self.spread:.1f}): {words}"


def judge(diff: float, std_a: float, std_b: float, seeds: int) -> Difference:
    """Judge a difference of means from the two series' sample stds (see the module docstring)."""
    if seeds < 2 or not (math.isfinite(std_a) and math.isfinite(std_b)):
        return Difference(float(diff), math.nan, math.nan, int(seeds), "one seed")
    spread = max(float(std_a), float(std_b))
    ratio = round(abs(float(diff)) / max(spread, 1e-9), RATIO_DIGITS)
    verdict = "clear" if ratio > CLEAR else "suggestive" if ratio > SUGGESTIVE else "within spread"
    return Difference(float(diff), spread, ratio, int(seeds), verdict)


def compare_seeds(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Judge mean(a) - mean(b) for two per-seed series (e.g. mAP of two methods over the same seeds)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"two per-seed series of the same, non-zero length are needed, got {len(a)} and {len(b)}")
    std = (lambda x: float(x.std(ddof=1))) if len(a) > 1 else (lambda x: math.nan)
    return judge(float(a.mean() - b.mean()), std(a), std(b), len(a))

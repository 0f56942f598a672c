"""The statistics of A/B results: a rate's 95 % confidence interval (Wilson score), the two-sided
two-proportion z-test, and the rule that declares a winner."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
ALPHA = 0.05
MIN_EXPOSURES = 30
WINNER_RULE = (
    "the variant with the highest rate wins when every variant has at least "
    f"{MIN_EXPOSURES} exposures and a two-sided two-proportion z-test of it against each other variant "
    f"gives p < {ALPHA} divided by the number of comparisons (Bonferroni); otherwise no winner"
)


@dataclass(frozen=True)
class VariantResult:
    """One variant's exposures and conversions, its rate with a 95 % interval, and the p-value of the
    test against the leading variant (None for the leader itself)."""

    variant: str
    exposures: int
    conversions: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Every variant's result and the winner, if the rule declares one."""

    variants: list[VariantResult]
    winner: str | None
    rule: str = WINNER_RULE


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """The two-sided p-value of the pooled two-proportion z-test; None when it is undefined (no
    trials, or every trial the same)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return None
    z = (x1 / n1 - x2 / n2) / spread
    return math.erfc(abs(z) / math.sqrt(2))


def compare_variants(counts: dict[str, tuple[int, int]]) -> Comparison:
    """`counts` maps a variant to (exposures, conversions)."""
    rated = {name: (n, x, x / n if n else None) for name, (n, x) in counts.items()}
    leader = max(
        (name for name, (_, _, rate) in rated.items() if rate is not None),
        key=lambda name: (rated[name][2] or 0.0, name),
        default=None,
    )
    results = []
    significant = leader is not None and len(rated) > 1
    comparisons = max(1, len(rated) - 1)
    for name, (n, x, rate) in sorted(rated.items()):
        interval = wilson_interval(x, n)
        p_value = None
        if leader is not None and name != leader:
            ln, lx, _ = rated[leader]
            p_value = two_proportion_p_value(lx, ln, x, n)
            significant = significant and p_value is not None and p_value < ALPHA / comparisons
        significant = significant and n >= MIN_EXPOSURES
        results.append(
            VariantResult(
                name,
                n,
                x,
                rate,
                interval[0] if interval else None,
                interval[1] if interval else None,
                p_value,
            )
        )
    return Comparison(results, leader if significant else None)

"""A/B statistics: Wilson intervals and two-proportion tests match textbook values; a winner only when
the rule holds."""

from __future__ import annotations

import pytest

from aftercare.analytics.stats import compare_variants, two_proportion_p_value, wilson_interval


def test_the_wilson_interval_of_a_known_proportion() -> None:
    # 50 of 100: 0.4038 to 0.5962 (Wilson, 95 %).
    low, high = wilson_interval(50, 100) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert wilson_interval(0, 0) is None
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))


def test_the_two_proportion_test_of_a_known_pair() -> None:
    # 60/100 against 40/100: z = 2.828, two-sided p = 0.00468.
    assert two_proportion_p_value(60, 100, 40, 100) == pytest.approx(0.004678, abs=1e-5)
    assert two_proportion_p_value(5, 10, 5, 10) == pytest.approx(1.0)
    assert two_proportion_p_value(0, 10, 0, 10) is None


def test_a_clear_difference_declares_the_better_variant() -> None:
    result = compare_variants({"plain": (400, 40), "urgent": (400, 80)})

    assert result.winner == "urgent"
    plain = next(row for row in result.variants if row.variant == "plain")
    assert plain.p_value is not None
    assert plain.p_value < 0.001
    assert "Bonferroni" in result.rule


def test_no_winner_when_the_difference_could_be_chance_or_the_groups_are_small() -> None:
    assert compare_variants({"a": (400, 40), "b": (400, 44)}).winner is None
    assert compare_variants({"a": (20, 2), "b": (20, 15)}).winner is None  # fewer than 30 each
    assert compare_variants({"only": (500, 50)}).winner is None
    # three variants: the leader must beat both at 0.05 / 2
    assert compare_variants({"a": (400, 40), "b": (400, 80), "c": (400, 70)}).winner is None

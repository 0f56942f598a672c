"""A funnel step's drop-off class: those who exited after it or neither passed it nor wait there."""

from __future__ import annotations

from console.analytics_page import drop_off


def test_drop_off_counts_the_lost_not_those_still_waiting() -> None:
    assert drop_off(0, 0, 0, 0) == "none"
    assert drop_off(10, 0, 10, 0) == "low"
    assert drop_off(100, 95, 0, 0) == "low"
    assert drop_off(100, 80, 0, 0) == "medium"
    assert drop_off(100, 100, 0, 40) == "high"

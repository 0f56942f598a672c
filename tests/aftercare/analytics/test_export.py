"""CSV exports hide counts under the small-cell threshold and the rates taken of them."""

from __future__ import annotations

from aftercare.analytics.export import rate_cell, to_csv
from api.routes.analytics_export import Export


def test_counts_under_the_threshold_are_shown_as_less_than_it_and_zero_stays_zero() -> None:
    text = to_csv(["key", "sent", "delivered", "rate"], [["sms", 120, 7, None], ["email", 0, 11, 0.5]], 11)

    assert text.splitlines() == ["key,sent,delivered,rate", "sms,120,<11,", "email,0,11,0.5"]


def test_without_the_rule_every_count_is_exact() -> None:
    assert to_csv(["n"], [[3]], None).splitlines() == ["n", "3"]


def test_a_rate_of_a_hidden_count_is_left_empty() -> None:
    assert rate_cell(7 / 120, 7, 120, 11) == ""
    assert rate_cell(20 / 120, 20, 120, 11) == round(20 / 120, 6)
    assert rate_cell(None, 0, 0, 11) == ""
    assert rate_cell(7 / 120, 7, 120, None) == round(7 / 120, 6)


def test_a_download_s_file_name_keeps_no_control_characters() -> None:
    answer = Export(csv=True, small_cell=11).response("funnel-\x05\u0089é key", ["n"], [[1]])

    assert answer.headers["content-disposition"] == 'attachment; filename="funnel-____key.csv"'

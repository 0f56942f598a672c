"""Rules as configured: `fields[:auto|review]`, names compared normalised."""

from __future__ import annotations

from datetime import date

import pytest

from aftercare.identity.rules import MatchProfile, normalise_name, parse_rule, parse_rules


def test_rules_review_unless_marked_automatic_and_identifier_always_merges() -> None:
    assert parse_rule("identifier").action == "auto"
    assert parse_rule("phone+birth_date").action == "review"
    assert parse_rule("email+birth_date:auto").action == "auto"
    assert [rule.name for rule in parse_rules(["identifier", "name+birth_date"])] == [
        "identifier",
        "name+birth_date",
    ]


@pytest.mark.parametrize("text", ["shoe+birth_date", "phone", "phone+birth_date:maybe", "identifier:review"])
def test_a_wrong_rule_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rule"):
        parse_rule(text)


def test_names_compare_without_case_accents_or_punctuation() -> None:
    assert normalise_name("O'Brien-Núñez") == normalise_name("obrien nunez")
    rule = parse_rule("name+birth_date")
    one = MatchProfile("a", None, None, "José", "García", date(1980, 1, 2))
    two = MatchProfile("b", None, None, "jose", "GARCIA", date(1980, 1, 2))
    assert one.key(rule) == two.key(rule) is not None
    assert MatchProfile("c", None, None, None, "Garcia", date(1980, 1, 2)).key(rule) is None

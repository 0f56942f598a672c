"""A pause the patient chose defers their sends until it ends; an urgent send goes anyway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aftercare.guardrails.facts import PAUSED_UNTIL_ATTRIBUTE, PatientFacts
from aftercare.guardrails.pause import paused

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def facts(value: object) -> PatientFacts:
    return PatientFacts(attributes={PAUSED_UNTIL_ATTRIBUTE: value})


def test_a_send_during_a_pause_waits_until_it_ends() -> None:
    until = NOW + timedelta(days=7)
    decision = paused(facts(until.isoformat()), NOW, urgent=None)
    assert decision is not None
    assert (decision.outcome, decision.rule, decision.until) == ("defer", "paused", until)


def test_an_urgent_send_goes_through_a_pause() -> None:
    assert paused(facts((NOW + timedelta(days=1)).isoformat()), NOW, urgent="the step is urgent") is None


def test_an_ended_cleared_or_unreadable_pause_holds_nothing() -> None:
    assert paused(facts((NOW - timedelta(minutes=1)).isoformat()), NOW, urgent=None) is None
    assert paused(facts(None), NOW, urgent=None) is None
    assert paused(facts("next tuesday"), NOW, urgent=None) is None
    assert paused(facts("2026-12-31T00:00:00"), NOW, urgent=None) is None  # no zone: not ours

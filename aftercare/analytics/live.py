"""The rollups as every analytics read sees them: each rollup table's folded rows with its pending
deltas (`models.analytics_tables.live`), so a read counts exactly the facts of its snapshot."""

from __future__ import annotations

from models.analytics_tables import (
    AnalyticsDecision,
    AnalyticsDuration,
    AnalyticsEntry,
    AnalyticsFailure,
    AnalyticsMessages,
    AnalyticsOutcome,
    AnalyticsPath,
    AnalyticsStep,
    AnalyticsStepExit,
    AnalyticsWaiting,
    live,
)

DECISIONS = live(AnalyticsDecision)
DURATIONS = live(AnalyticsDuration)
ENTRIES = live(AnalyticsEntry)
EXITS = live(AnalyticsStepExit)
FAILURES = live(AnalyticsFailure)
MESSAGES = live(AnalyticsMessages)
OUTCOMES = live(AnalyticsOutcome)
PATHS = live(AnalyticsPath)
STEPS = live(AnalyticsStep)
WAITING = live(AnalyticsWaiting)

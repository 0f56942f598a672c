"""Frequency caps over every message of a patient, whatever journey or campaign sent it.

The patient's row is locked (`FOR UPDATE`, `facts.lock_and_count_recent`) in the transaction that then
records the intent, so two sends racing for the last slot under a cap are serialised: the second
counts the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from aftercare.guardrails.decision import Decision
from aftercare.guardrails.facts import RecentMessage
from aftercare.guardrails.policy import FrequencyCap

WINDOWS = (("per_day", timedelta(days=1), "day"), ("per_week", timedelta(days=7), "week"))
# How far back caps look: the longest window.
LOOK_BACK = max(window for _, window, _ in WINDOWS)


def caps_applying(caps: Sequence[FrequencyCap], channel: str, purpose: str) -> list[FrequencyCap]:
    """The caps a send on this channel for this purpose counts against."""
    return [cap for cap in caps if cap.applies(channel, purpose)]


def over_cap(
    caps: Sequence[FrequencyCap],
    recent: Sequence[RecentMessage],
    *,
    channel: str,
    purpose: str,
    now: datetime,
    over_cap: str,
) -> Decision | None:
    """A `defer` (until a slot frees) or `skip` decision when the send would exceed a cap; else None.

    `recent` is the patient's counted messages, newest first, read under the patient's lock."""
    applying = caps_applying(caps, channel, purpose)
    if not applying:
        return None
    latest_until: datetime | None = None
    reasons: list[str] = []
    for cap in applying:
        for attribute, window, word in WINDOWS:
            limit: int | None = getattr(cap, attribute)
            if limit is None:
                continue
            sent = [
                message.created_at
                for message in recent
                if message.created_at > now - window
                and cap.channel in ("*", message.channel)
                and cap.purpose in ("*", message.purpose)
            ]
            if len(sent) < limit:
                continue
            # Room comes back when the oldest message that keeps the count at the limit leaves the window.
            frees_at = (sent[limit - 1] if limit else now) + window + timedelta(seconds=1)
            latest_until = frees_at if latest_until is None else max(latest_until, frees_at)
            reasons.append(f"{len(sent)} of {limit} per {word} ({cap.channel} / {cap.purpose})")
    if latest_until is None:
        return None
    reason = "frequency cap reached: " + "; ".join(reasons)
    if over_cap == "drop" or not any(cap_limit(cap) for cap in applying):
        return Decision("skip", "frequency_cap", reason)
    return Decision("defer", "frequency_cap", reason, until=max(latest_until, now + timedelta(seconds=1)))


def cap_limit(cap: FrequencyCap) -> bool:
    """False for a cap of zero (nothing may ever go, so waiting is pointless)."""
    return bool(cap.per_day or cap.per_week) and cap.per_day != 0 and cap.per_week != 0

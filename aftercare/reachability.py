"""Where a patient can be reached, channel by channel, and which channel a send uses.

A channel is reachable when the patient has a contact point on it, its address is not suppressed, the
patient has not withdrawn consent for it, and the patient is alive. `choose_channels` orders the
candidates for a send: the patient's preference first, then the journey's fallback order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.guardrails.facts import PatientFacts, load_facts
from aftercare.letters.address import address_block
from models.journey import CHANNELS, SendSpec
from models.tables import Patient

SUPPRESSION_REASONS = {
    "stop": "the number texted STOP",
    "invalid": "the address is invalid",
    "landline": "the number cannot receive texts",
    "bounce": "email to the address bounced",
    "spamreport": "the address reported our email as spam",
    "unsubscribe": "the address unsubscribed",
    "manual": "the address was suppressed by staff",
}


@dataclass(frozen=True)
class Reachability:
    """For each channel asked about: the address to send to, or why the patient cannot be reached."""

    addresses: dict[str, str]
    blocked: dict[str, str]

    def explain(self, channels: Iterable[str]) -> str:
        """Why none of these channels can be used, channel by channel."""
        return "; ".join(
            f"{channel}: {self.blocked[channel]}" for channel in channels if channel in self.blocked
        )


def contact_point(channel: str, profile: Patient, push_devices: int = 0) -> tuple[str | None, str | None]:
    """The patient's address on a channel, or why there is none."""
    if channel in ("sms", "voice"):
        if profile.phone:
            return profile.phone, None
        if profile.phone_status == "invalid":
            return None, "the patient's phone number could not be normalised"
        return None, "the patient has no phone number"
    if channel == "email":
        return (profile.email, None) if profile.email else (None, "the patient has no email address")
    if channel == "letter":
        lines = address_block(profile.name, profile.address) if profile.address else []
        return ("\n".join(lines), None) if lines else (None, "the patient has no postal address")
    if channel == "push":
        if push_devices:
            return f"{push_devices} device{'s' if push_devices > 1 else ''}", None
        return None, "the patient has no device subscribed to notifications"
    return None, f"unknown channel {channel}"


def reach(profile: Patient, channels: Iterable[str], facts: PatientFacts) -> Reachability:
    """Check each channel: contact point, deceased, consent, suppression (from the patient's facts)."""
    addresses: dict[str, str] = {}
    blocked: dict[str, str] = {}
    revoked = facts.revoked_channels()
    for channel in dict.fromkeys(channels):
        address, missing = contact_point(channel, profile, facts.push_devices)
        if profile.deceased:
            blocked[channel] = "the patient is deceased"
        elif channel in revoked:
            blocked[channel] = f"the patient withdrew consent ({revoked[channel].source})"
        elif address is None:
            blocked[channel] = missing or "no contact point"
        elif channel in ("sms", "email") and (suppressed := facts.suppression(channel, address)):
            blocked[channel] = f"{SUPPRESSION_REASONS.get(suppressed, suppressed)} (suppressed)"
        else:
            addresses[channel] = address
    return Reachability(addresses, blocked)


async def reachability(session: AsyncSession, profile: Patient, channels: Iterable[str]) -> Reachability:
    """Check each channel: contact point, deceased, consent, suppression."""
    wanted = list(dict.fromkeys(channels))
    facts = await load_facts(session, [profile], channels=wanted, attributes=())
    return reach(profile, wanted, facts[profile.id])


def choose_channels(spec: SendSpec, available: set[str], preference: str | None) -> list[str]:
    """The channels to try, in order, among those the send has content for."""
    if spec.channel not in (None, "best"):
        return [spec.channel] if spec.channel in available else []
    if not spec.chooses_channel and len(available) == 1:
        return sorted(available)
    order: list[str] = list(spec.fallback or CHANNELS)
    if preference in available and (spec.fallback is None or preference in spec.fallback):
        order.insert(0, preference)
    return [channel for channel in dict.fromkeys(order) if channel in available]

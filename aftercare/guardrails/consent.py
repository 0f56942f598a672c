"""Consent per channel and purpose, and consent to receive PHI on a channel."""

from __future__ import annotations

from aftercare.guardrails.decision import Decision, allow
from aftercare.guardrails.facts import PatientFacts
from aftercare.store.consents import PHI


def purpose_consent(
    facts: PatientFacts, channel: str, purpose: str, opt_in: frozenset[str]
) -> Decision | None:
    """A `suppress` decision when the patient withdrew consent for this channel and purpose, or never
    gave it for a purpose that needs an opt-in; None when the send may go."""
    consent = facts.consent_for(channel, purpose)
    if consent is not None and consent.status == "revoked":
        return Decision(
            "suppress",
            "consent",
            f"the patient withdrew consent for {purpose} by {channel} ({consent.source})",
        )
    if purpose in opt_in:
        # An opt-in is a grant for this very purpose: a START text or a grant for everything is not one.
        granted = facts.consent_for(channel, purpose, exact_purpose=True)
        if granted is None or granted.status != "granted":
            return Decision("suppress", "consent", f"{purpose} needs the patient's opt-in on {channel}")
    return None


def phi_consent(facts: PatientFacts, channel: str, has_non_phi_variant: bool) -> Decision | None:
    """For a PHI template: None when the patient consented to PHI on the channel; otherwise allow with
    the non-PHI variant, or skip when the template has none."""
    consent = facts.consent_for(channel, PHI)
    if consent is not None and consent.status == "granted":
        return None
    reason = f"the patient has not consented to receive PHI by {channel}"
    if has_non_phi_variant:
        return allow("phi", f"{reason}: the non-PHI variant was sent", non_phi=True)
    return Decision("skip", "phi", f"{reason} and the template has no non-PHI variant")

"""Consent and compliance guardrails: the one decision point every send passes through.

`decide` applies the rules in order (one module each): suppression (deceased, minors without a
guardian), reachability, consent per channel and purpose, PHI, quiet hours, frequency caps. It
answers allow, defer (until when), suppress or skip, with the rule that decided.
"""

from aftercare.guardrails.decide import SendContext, decide
from aftercare.guardrails.decision import Decision
from aftercare.guardrails.policy import FrequencyCap, GuardrailPolicy

__all__ = ["Decision", "FrequencyCap", "GuardrailPolicy", "SendContext", "decide"]

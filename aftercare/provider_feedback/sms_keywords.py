"""The carriers' standard SMS keywords (CTIA; Twilio's default Advanced Opt-Out set).

A message is a keyword when, without surrounding spaces and punctuation, it is exactly one of them in
any case: "stop", " STOP. " and "Stop!" are; "please stop texting me" is a reply for a person to read.
"""

from __future__ import annotations

from typing import Literal

Keyword = Literal["opt_out", "opt_in", "help"]

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "UNSTOP"})
# YES opts back in only a number that opted out; otherwise it is an ordinary answer.
OPT_IN_WHEN_OPTED_OUT = frozenset({"YES"})
HELP = frozenset({"HELP", "INFO"})

_PUNCTUATION = " \t\r\n.!?,;:'\"()"


def normalised(body: str) -> str:
    """The message as keywords are matched: trimmed of spaces and punctuation, upper case."""
    return body.strip(_PUNCTUATION).upper()


def keyword_of(body: str, *, opted_out: bool) -> Keyword | None:
    """Which keyword the message is, if any; `opted_out` says whether the sender's number is opted out."""
    word = normalised(body)
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN or (opted_out and word in OPT_IN_WHEN_OPTED_OUT):
        return "opt_in"
    if word in HELP:
        return "help"
    return None

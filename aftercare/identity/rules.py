"""Matching rules: their names, the profile fields they compare, and what a match does.

A rule is written `fields[:action]`, e.g. `phone+birth_date:auto` or `name+birth_date:review`. The
`identifier` rule (records share an identifier system and value) always merges automatically; the
others propose a candidate for review unless `:auto` is given.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

Action = Literal["auto", "review"]

IDENTIFIER_RULE = "identifier"
# The profile fields a rule may combine, and the `patients` column each one compares.
RULE_FIELDS = ("phone", "email", "name", "birth_date")
DEFAULT_RULES = ("identifier", "phone+birth_date", "email+birth_date", "name+birth_date")


@dataclass(frozen=True)
class Rule:
    """A matching rule: `fields` must all be present and equal (names compared normalised)."""

    name: str
    fields: tuple[str, ...]
    action: Action


@dataclass(frozen=True)
class MatchProfile:
    """What the rules compare about one patient record."""

    record_id: str
    phone: str | None
    email: str | None
    given: str | None
    family: str | None
    birth_date: date | None

    def key(self, rule: Rule) -> tuple[str, ...] | None:
        """The values a rule compares, or None when one of them is missing."""
        values: list[str] = []
        for field in rule.fields:
            value = self.value(field)
            if value is None:
                return None
            values.append(value)
        return tuple(values)

    def value(self, field: str) -> str | None:
        """One field, normalised for comparison."""
        if field == "phone":
            return self.phone
        if field == "email":
            return self.email.strip().lower() if self.email else None
        if field == "birth_date":
            return self.birth_date.isoformat() if self.birth_date else None
        if field == "name":
            given, family = normalise_name(self.given), normalise_name(self.family)
            return f"{given}|{family}" if given and family else None
        raise ValueError(f"unknown field {field!r}")


def normalise_name(value: str | None) -> str | None:
    """Lower case, accents removed, only letters kept: `O'Brien-Núñez` and `obrien nunez` compare equal."""
    if not value:
        return None
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(char for char in decomposed if char.isalpha()).casefold()
    return letters or None


def parse_rule(text: str) -> Rule:
    """One rule from its written form; ValueError names what is wrong."""
    body, _, action = text.strip().partition(":")
    if body == IDENTIFIER_RULE:
        if action not in ("", "auto"):
            raise ValueError("the identifier rule always merges automatically")
        return Rule(IDENTIFIER_RULE, (), "auto")
    fields = tuple(part.strip() for part in body.split("+"))
    unknown = [field for field in fields if field not in RULE_FIELDS]
    if unknown or not fields:
        raise ValueError(f"rule {text!r}: unknown fields {unknown}; known: {', '.join(RULE_FIELDS)}")
    if len(fields) < 2:
        raise ValueError(f"rule {text!r}: a rule compares at least two fields")
    if action not in ("", "auto", "review"):
        raise ValueError(f"rule {text!r}: the action is `auto` or `review`")
    return Rule("+".join(fields), fields, "auto" if action == "auto" else "review")


def parse_rules(texts: Sequence[str]) -> tuple[Rule, ...]:
    """Rules in order of precedence (the first rule that matches a pair decides)."""
    return tuple(parse_rule(text) for text in texts)

"""Finding which arriving patient records match records already known (pure: no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aftercare.identity.rules import IDENTIFIER_RULE, MatchProfile, Rule

Identifier = tuple[str, str]
"""An identifier's (system, value)."""


@dataclass(frozen=True)
class Match:
    """An arriving record that matches another record by a rule, with the evidence (no PHI values)."""

    record_id: str
    other_id: str
    rule: Rule
    evidence: dict[str, Any]


def hashed(value: str) -> str:
    """A short SHA-256 of a value, so that evidence can show two values were equal without showing them."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def find_matches(
    arriving: Sequence[MatchProfile],
    identifiers: Mapping[str, Iterable[Identifier]],
    holders: Mapping[Identifier, Iterable[str]],
    known: Iterable[MatchProfile],
    rules: Sequence[Rule],
    *,
    same_person: Mapping[str, str],
    blocked: set[frozenset[str]],
) -> list[Match]:
    """One match per pair of records, by the first rule (in order) that matches it.

    `identifiers` are the arriving records' identifiers, `holders` the records holding each of them,
    `known` the stored records that may match a rule; pairs already one person (`same_person` maps a
    record to its person) or `blocked` (a reversed merge or dismissed candidate) are left alone.
    """
    keyed: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for profile in known:
        for rule in rules:
            key = profile.key(rule) if rule.name != IDENTIFIER_RULE else None
            if key is not None:
                keyed.setdefault((rule.name, key), set()).add(profile.record_id)
    matches: dict[frozenset[str], Match] = {}
    for profile in arriving:
        record = profile.record_id
        for rule in rules:
            for other, evidence in _matches_of(profile, rule, identifiers, holders, keyed):
                pair = frozenset({record, other})
                if other == record or pair in matches or _blocked(record, other, same_person, blocked):
                    continue
                if same_person.get(record, record) == same_person.get(other, other):
                    continue
                matches[pair] = Match(record, other, rule, {"rule": rule.name, **evidence})
    return list(matches.values())


def _matches_of(
    profile: MatchProfile,
    rule: Rule,
    identifiers: Mapping[str, Iterable[Identifier]],
    holders: Mapping[Identifier, Iterable[str]],
    keyed: Mapping[tuple[str, tuple[str, ...]], set[str]],
) -> list[tuple[str, dict[str, Any]]]:
    record = profile.record_id
    if rule.name == IDENTIFIER_RULE:
        shared: dict[str, list[Identifier]] = {}
        for identifier in identifiers.get(record, ()):
            for other in holders.get(identifier, ()):
                if other != record:
                    shared.setdefault(other, []).append(identifier)
        return [
            (
                other,
                {
                    "records": [record, other],
                    "fields": ["identifier"],
                    "identifiers": [
                        {"system": system, "value_sha256": hashed(value)} for system, value in sorted(found)
                    ],
                },
            )
            for other, found in sorted(shared.items())
        ]
    key = profile.key(rule)
    if key is None:
        return []
    evidence = {"fields": list(rule.fields), "value_sha256": hashed("|".join(key))}
    return [
        (other, {"records": [record, other], **evidence})
        for other in sorted(keyed.get((rule.name, key), set()))
        if other != record
    ]


def _blocked(record: str, other: str, same_person: Mapping[str, str], blocked: set[frozenset[str]]) -> bool:
    return any(
        frozenset({a, b}) in blocked
        for a in {record, same_person.get(record, record)}
        for b in {other, same_person.get(other, other)}
    )

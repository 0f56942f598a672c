"""Checks beyond structure: codes of required bindings, the invariants triggers rely on, and
references inside a Bundle.

The bindings come from `r4_required_bindings.json`, built from HL7's R4 definitions
(`aftercare/fhir/binding_table.py`). Problems are (FHIRPath of the element, reason) pairs, as
`validation_problems` gives them; a reason names the element and the value set, never patient data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from aftercare.fhir.binding_table import RESOURCE, TABLE_PATH

Problem = tuple[str, str]
# Quantity and the data types that constrain it (Age, Duration, Distance, Count) are walked as Quantity.
_QUANTITY = "Quantity"
_CODED = frozenset({"Coding", "CodeableConcept"})
_LISTED_CODES = 12
_UNRESOLVABLE = ("urn:uuid:", "urn:oid:")


@cache
def _table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(TABLE_PATH.read_text("utf-8"))
    return table


def required_codes(value_set: str) -> dict[str, list[str]]:
    """The codes of a required value set by code system (empty when the table does not hold it)."""
    codes: dict[str, list[str]] = _table()["valueSets"].get(value_set, {})
    return codes


def conformance_problems(resource: dict[str, Any]) -> list[Problem]:
    """Codes outside required bindings and broken invariants in a structurally valid resource."""
    resource_type = str(resource.get("resourceType"))
    return list(_walk(resource, resource_type, resource_type))


def _walk(node: dict[str, Any], type_name: str, path: str) -> Iterator[Problem]:
    members = _table()["types"].get(type_name)
    if type_name == _QUANTITY:
        yield from _quantity_problems(node, path)
    if not members:
        return
    for key, value in node.items():
        spec = members.get(key)
        if spec is None:
            continue
        target, value_set = spec
        items = value if isinstance(value, list) else [value]
        for position, item in enumerate(items):
            where = f"{path}.{key}[{position}]" if isinstance(value, list) else f"{path}.{key}"
            if value_set and isinstance(item, str):
                yield from _code_problems(item, value_set, where)
            if not isinstance(item, dict):
                continue
            if value_set and target in _CODED:
                yield from _coded_problems(item, target, value_set, where)
            if target == RESOURCE:
                yield from _walk(item, str(item.get("resourceType")), where)
            elif target:
                yield from _walk(item, target, where)


def _code_problems(code: str, value_set: str, path: str) -> Iterator[Problem]:
    allowed = {code for codes in required_codes(value_set).values() for code in codes}
    if code not in allowed:
        yield path, _not_in(value_set, sorted(allowed))


def _coded_problems(node: dict[str, Any], target: str, value_set: str, path: str) -> Iterator[Problem]:
    """A coding from a code system of the value set must be one of its codes."""
    codings = [(path, node)] if target == "Coding" else []
    if target == "CodeableConcept":
        codings = [(f"{path}.coding[{n}]", c) for n, c in enumerate(node.get("coding") or [])]
    by_system = required_codes(value_set)
    for where, coding in codings:
        if not isinstance(coding, dict):
            continue
        allowed = by_system.get(str(coding.get("system")))
        if allowed is not None and coding.get("code") not in allowed:
            yield f"{where}.code", _not_in(value_set, allowed)


def _not_in(value_set: str, allowed: list[str]) -> str:
    listed = ", ".join(allowed) if len(allowed) <= _LISTED_CODES else f"{len(allowed)} codes"
    return f"the code is not in the required value set {value_set} ({listed})"


def _quantity_problems(node: dict[str, Any], path: str) -> Iterator[Problem]:
    """qty-3 (a unit code needs its system), and a system needs a code: criteria compare units by both."""
    has_code, has_system = node.get("code") is not None, node.get("system") is not None
    if has_code and not has_system:
        yield f"{path}.system", "a Quantity with a unit code must name the code's system (qty-3)"
    if has_system and not has_code:
        yield f"{path}.code", "a Quantity that names a unit system must give the unit's code in it"


def unresolved_references(resource: dict[str, Any]) -> list[Problem]:
    """References to bundle entries (`urn:uuid:`, `urn:oid:`) left once the Bundle's full URLs are
    resolved, and `#id` references to contained resources that are not there."""
    resource_type = str(resource.get("resourceType"))
    contained = {item.get("id") for item in resource.get("contained") or [] if isinstance(item, dict)}
    problems = []
    for path, reference in _references(resource, resource_type):
        if reference.startswith(_UNRESOLVABLE):
            problems.append((path, f"the reference {reference} is to no entry of the Bundle"))
        elif reference.startswith("#") and len(reference) > 1 and reference[1:] not in contained:
            problems.append((path, f"the reference {reference} is to no contained resource"))
    return problems


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield f"{path}.reference", value
            elif key != "contained":
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for position, item in enumerate(node):
            yield from _references(item, f"{path}[{position}]")


def bundle_problems(bundle: dict[str, Any]) -> list[Problem]:
    """Required codes of the Bundle itself (`type`, `entry.request.method`), its entries' resources
    left out: each is checked on its own."""
    entries = bundle.get("entry")
    shell = dict(bundle)
    if isinstance(entries, list):
        shell["entry"] = [_without_resource(entry) for entry in entries]
    return conformance_problems(shell)


def _without_resource(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    return {key: value for key, value in entry.items() if key != "resource"}

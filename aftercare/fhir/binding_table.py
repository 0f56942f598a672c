"""The table of FHIR R4 required bindings, built from the official definitions.

`python -m aftercare.fhir.binding_table PACKAGE_DIR` writes `r4_required_bindings.json` from the
unpacked npm package `hl7.fhir.r4.examples@4.0.1` (HL7's R4 release: its StructureDefinitions,
ValueSets and CodeSystems). `make install-test` installs that package under `tools/fhir-r4`, and a test
rebuilds the table from it and compares. Nothing here is typed by hand: an element's value set comes
from its StructureDefinition's binding, and the codes from the ValueSet's compose over the CodeSystems.

The table holds, per type (a resource, a data type, or a backbone element by its path), the elements
on the way to a required binding: `{"key": [target type or null, value set url or null]}`, with choice
elements under their JSON names (`valueQuantity`). Value sets whose codes the package cannot enumerate
(MIME types, currencies, languages, UCUM) are left out: their bindings are not checked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("r4_required_bindings.json")
RESOURCE = "*resource"
_PRIMITIVE = None


def _load(package: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text("utf-8")) for path in sorted(package.glob(f"{prefix}-*.json"))]


def _flatten(concepts: Iterable[dict[str, Any]]) -> Iterable[tuple[str, list[str]]]:
    """(code, ancestors) for every concept of a hierarchical CodeSystem."""
    stack = [(concept, list[str]()) for concept in concepts]
    while stack:
        concept, ancestors = stack.pop()
        yield concept["code"], ancestors
        stack.extend((child, [*ancestors, concept["code"]]) for child in concept.get("concept", []))


class _Expander:
    def __init__(self, value_sets: list[dict[str, Any]], code_systems: list[dict[str, Any]]) -> None:
        self.value_sets = {vs["url"]: vs for vs in value_sets if "url" in vs}
        self.systems = {
            cs["url"]: dict(_flatten(cs.get("concept", [])))
            for cs in code_systems
            if cs.get("content") == "complete" and "url" in cs
        }
        self.cache: dict[str, dict[str, set[str]] | None] = {}

    def expand(self, url: str) -> dict[str, set[str]] | None:
        """The codes of a value set by system, or None when they cannot all be listed from the package."""
        url = url.split("|")[0]
        if url not in self.cache:
            self.cache[url] = None  # a value set that includes itself is not enumerable
            self.cache[url] = self._expand(url)
        return self.cache[url]

    def _expand(self, url: str) -> dict[str, set[str]] | None:
        value_set = self.value_sets.get(url)
        if value_set is None or "compose" not in value_set:
            return None
        codes: dict[str, set[str]] = {}
        for include in value_set["compose"].get("include", []):
            part = self._part(include)
            if part is None:
                return None
            for system, found in part.items():
                codes.setdefault(system, set()).update(found)
        for exclude in value_set["compose"].get("exclude", []):
            part = self._part(exclude)
            if part is None:
                return None
            for system, found in part.items():
                codes.get(system, set()).difference_update(found)
        return codes

    def _part(self, include: dict[str, Any]) -> dict[str, set[str]] | None:
        nested: dict[str, set[str]] = {}
        for url in include.get("valueSet", []):
            expanded = self.expand(url)
            if expanded is None:
                return None
            for included, found in expanded.items():
                nested.setdefault(included, set()).update(found)
        if "system" not in include:
            return nested
        system = str(include["system"])
        if "concept" in include:
            codes = {concept["code"] for concept in include["concept"]}
        else:
            hierarchy = self.systems.get(system)
            if hierarchy is None:
                return None
            codes = set(hierarchy)
            for rule in include.get("filter", []):
                if rule.get("property") != "concept" or rule.get("op") not in {"is-a", "descendent-of"}:
                    return None
                value = rule["value"]
                below = {code for code, ancestors in hierarchy.items() if value in ancestors}
                codes &= below | ({value} if rule["op"] == "is-a" else set())
        if nested:
            codes &= nested.get(system, set())
        return {system: codes}


def _target(code: str, aliases: dict[str, str]) -> str | None:
    if code in {"Resource", "DomainResource"}:
        return RESOURCE
    if code[:1].islower() or code.startswith("http://hl7.org/fhirpath/"):
        return _PRIMITIVE
    return aliases.get(code, code)


def build_table(package: Path) -> dict[str, Any]:
    """The required-binding table from an unpacked `hl7.fhir.r4.examples` package."""
    manifest = json.loads((package / "package.json").read_text("utf-8"))
    definitions = _load(package, "StructureDefinition")
    expander = _Expander(_load(package, "ValueSet"), _load(package, "CodeSystem"))
    bases = [
        sd
        for sd in definitions
        if sd.get("kind") in {"resource", "complex-type"}
        and sd.get("derivation") in {"specialization", None}
        and sd.get("url", "").startswith("http://hl7.org/fhir/StructureDefinition/")
        and sd["id"] == sd["type"]
    ]
    # Data types that constrain another (Age, Duration, SimpleQuantity) are walked as their base.
    aliases = {
        sd["id"]: sd["type"]
        for sd in definitions
        if sd.get("kind") == "complex-type"
        and sd.get("derivation") == "constraint"
        and sd["id"][:1].isupper()
    }
    types: dict[str, dict[str, list[str | None]]] = {}
    value_sets: dict[str, dict[str, list[str]]] = {}
    for sd in bases:
        for element in sd.get("snapshot", {}).get("element", [])[1:]:
            parent, _, name = element["path"].rpartition(".")
            members = types.setdefault(parent, {})
            binding = element.get("binding") or {}
            bound = None
            if binding.get("strength") == "required" and "valueSet" in binding:
                expanded = expander.expand(binding["valueSet"])
                if expanded:
                    bound = binding["valueSet"].split("|")[0]
                    value_sets[bound] = {system: sorted(codes) for system, codes in sorted(expanded.items())}
            if "contentReference" in element:
                members[name] = [element["contentReference"].lstrip("#"), bound]
                continue
            codes = [kind["code"] for kind in element.get("type", [])]
            for code in codes:
                target = _target(code, aliases)
                if code in {"BackboneElement", "Element"} and len(codes) == 1:
                    target = element["path"]
                key = name.removesuffix("[x]") + code[:1].upper() + code[1:] if name.endswith("[x]") else name
                members[key] = [target, bound]
    return {
        "source": {"package": manifest["name"], "version": manifest["version"]},
        "types": _prune(types),
        "valueSets": dict(sorted(value_sets.items())),
    }


def _prune(types: dict[str, dict[str, list[str | None]]]) -> dict[str, dict[str, list[str | None]]]:
    """Only the elements from which a required binding can be reached."""
    relevant = {name for name, members in types.items() if any(bound for _, bound in members.values())}
    relevant.add(RESOURCE)
    changed = True
    while changed:
        changed = False
        for name, members in types.items():
            if name not in relevant and any(target in relevant for target, _ in members.values()):
                relevant.add(name)
                changed = True
    return {
        name: {key: spec for key, spec in sorted(members.items()) if spec[1] or spec[0] in relevant}
        for name, members in sorted(types.items())
        if name in relevant
    }


def render(table: dict[str, Any]) -> str:
    """The table as it is checked in."""
    lines = [f'{{"source": {json.dumps(table["source"], sort_keys=True)},']
    for section in ("types", "valueSets"):
        items = sorted(table[section].items())
        lines.append(f'"{section}": {{')
        rows = [f"{json.dumps(name)}: {json.dumps(value, sort_keys=True)}" for name, value in items]
        lines.append(",\n".join(rows))
        lines.append("}," if section == "types" else "}}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TABLE_PATH.write_text(render(build_table(Path(sys.argv[1]))), "utf-8")

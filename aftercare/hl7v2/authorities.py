"""Which identifier system each HL7 v2 assigning authority stands for.

A feed names the authority of an identifier in CX.4 (`12345^^^NORTH_MRN^MR`); a FHIR server names the
same medical record numbers by a system URI (`http://north-hospital.example/mrn`). Without a mapping an
ADT patient's identifiers carry `urn:aftercare:hl7v2:authority:NORTH_MRN` and match no FHIR record;
with `HL7V2_AUTHORITY_SYSTEMS={"NORTH_MRN": "http://north-hospital.example/mrn"}` they carry the FHIR
system, so the identity rules link the two records as one person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aftercare.hl7v2.datatypes import AUTHORITY_SYSTEM


@dataclass(frozen=True)
class AuthoritySystems:
    """Authority namespace (CX.4.1) → identifier system URI; authorities not listed keep the URN."""

    systems: Mapping[str, str] = field(default_factory=dict)

    def system(self, system: str) -> str:
        """The configured system for an authority URN, or the system as it is."""
        if not system.startswith(AUTHORITY_SYSTEM):
            return system
        return self.systems.get(system.removeprefix(AUTHORITY_SYSTEM), system)

    def identifiers(self, identifiers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of the identifiers with their systems mapped."""
        return [{**identifier, "system": self.system(identifier["system"])} for identifier in identifiers]

    def rewrite(self, resources: Iterable[dict[str, Any]]) -> None:
        """Map, in place, every identifier (a `system` with a `value`) anywhere in the resources."""
        if self.systems:
            for resource in resources:
                self._walk(resource)

    def _walk(self, node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("system"), str) and "value" in node:
                node["system"] = self.system(node["system"])
            for value in node.values():
                self._walk(value)
        elif isinstance(node, list):
            for item in node:
                self._walk(item)

"""What is derived from current FHIR resources in the same transaction: clinical facts and identities.

`store_resources` calls `record_derived` for the versions that became current; an importer that writes
`fhir_resources` itself (bulk import) calls it for each batch of resources it made current.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aftercare.identity.rules import DEFAULT_RULES, parse_rules
from aftercare.store.clinical_facts import record_clinical_facts
from aftercare.store.fhir_consents import record_fhir_consents
from aftercare.store.identity import IdentityOutcome, record_identities
from aftercare.store.risk_scores import record_risk_scores


async def record_derived(
    session: AsyncSession,
    resources: Sequence[dict[str, Any]],
    *,
    phone_region: str,
    identity_rules: Sequence[str] | None = None,
    first_seen: Collection[tuple[str, str]] = (),
) -> IdentityOutcome:
    """Upsert the clinical fact rows of these current resources, append the consents their `Consent`
    resources state, score again the discharges of patients whose Encounters or Conditions changed
    (`aftercare/store/risk_scores.py`), and record the identities of their Patients (identifiers,
    person links, merges, review candidates).

    The `patients` rows of these Patients must already be up to date (rules compare stored profiles).
    `identity_rules` are `Settings.identity_rules` (the defaults when None). `first_seen`: the (type,
    id) of resources that had no current version before, so no fact rows to tidy.
    """
    await record_clinical_facts(session, resources, first_seen=first_seen)
    await record_fhir_consents(session, resources)
    await record_risk_scores(session, resources)
    patients = [resource for resource in resources if resource.get("resourceType") == "Patient"]
    if not patients:
        return IdentityOutcome()
    rules = parse_rules(identity_rules if identity_rules is not None else DEFAULT_RULES)
    return await record_identities(session, patients, phone_region=phone_region, rules=rules)

"""`%risk` and `%tcm` in expressions, `risk` and `tcm` in templates: the scores and episode of the
triggering discharge (else the patient's latest), usable in branches and in `wait.at`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from activities.store import parse_moment
from aftercare.fhir.fhirpath import evaluate, is_true
from aftercare.journey_variables import load_journey_variables
from aftercare.store.resources import store_resources
from aftercare.templating import render
from models.temporal import EnrollmentTrigger, ExpressionScope, FhirResourceRef

NOW = datetime.now(UTC).replace(microsecond=0)


async def test_risk_and_tcm_of_the_triggering_discharge(
    sessions: async_sessionmaker[AsyncSession], empty_database: AsyncEngine
) -> None:
    stay = {
        "resourceType": "Encounter",
        "id": "var-stay",
        "meta": {"versionId": "1"},
        "status": "finished",
        "class": {"code": "IMP"},
        "priority": {"coding": [{"code": "UR"}]},
        "subject": {"reference": "Patient/var-p"},
        "period": {
            "start": (NOW - timedelta(days=8)).isoformat(),
            "end": (NOW - timedelta(hours=1)).isoformat(),
        },
    }
    async with sessions.begin() as session:
        await store_resources(
            session,
            [{"resourceType": "Patient", "id": "var-p", "name": [{"given": ["Vera"]}]}, stay],
            source="test",
            phone_region="US",
            fire_triggers=False,
        )
    trigger = EnrollmentTrigger(
        kind="fhir",
        resource=FhirResourceRef(resource_type="Encounter", resource_id="var-stay", version_id="1"),
    )
    async with sessions() as session:
        variables = await load_journey_variables(
            session, ExpressionScope(enrollment_id="e-1", patient_id="var-p", trigger=trigger)
        )
        manual = await load_journey_variables(
            session,
            ExpressionScope(
                enrollment_id="e-2", patient_id="var-p", trigger=EnrollmentTrigger(kind="manual")
            ),
        )
    root, names = variables.fhirpath_root(), variables.fhirpath_variables()
    assert evaluate("%risk.lace", root, names) == [5 + 3]  # 8 days, urgent
    assert is_true("%risk.band = 'moderate' and %risk.lace >= 5", root, names)
    [due] = evaluate("%tcm.contact_due", root, names)
    moment = parse_moment(str(due), ZoneInfo("UTC"))
    assert moment is not None
    assert moment > NOW
    assert evaluate("%tcm.complexity", root, names) == ["moderate"]
    text = render(
        "LACE {{ risk.lace }} ({{ risk.band }}), contact by {{ tcm.contact_due | date }}",
        variables.template_variables(),
    )
    assert text.startswith("LACE 8 (moderate), contact by ")
    # Without a triggering Encounter: the patient's latest discharge.
    assert manual.risk == variables.risk
    assert manual.tcm == variables.tcm

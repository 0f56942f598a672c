"""Facilities: the group's tree through the API, patients placed by `managingOrganization` and their
encounters, and scoped access. Two facilities with a patient each, keys of every role in each: every
route walked, and no record of the other facility returned anywhere (ids, lists, counts, previews,
exports, audit searches); another facility's record is a 404."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.route_rules import RULES, Access
from models.roles import Role
from tests.api.test_route_rules import ROUTES, Route
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

GROUP = {"key": "group", "name": "Riverside Health", "timezone": "America/New_York", "parent": None}
NORTH = {
    "key": "north-hospital",
    "name": "North Hospital",
    "timezone": "America/New_York",
    "parent": "group",
    "organization": "Organization/north",
    "senders": {"sms": {"from": "+15005550001"}},
    "help_phone": "+15005550101",
}
SOUTH = {
    "key": "south-clinic",
    "name": "South Clinic",
    "timezone": "America/Los_Angeles",
    "parent": "group",
    "organization": "Organization/south",
    "senders": {"sms": {"from": "+15005550002"}},
    "help_phone": "+15005550102",
}
JOURNEY = {
    "key": "check-in",
    "version": 1,
    "name": "Check in",
    "steps": [
        {"id": "hello", "send": {"channel": "sms", "body": "Hello {{ patient.given }}, how are you?"}},
        {
            "id": "call",
            "task": {"queue": "care-coordinators", "title": "Call {{ patient.name }}", "due": "P1D"},
        },
    ],
}
SEGMENT = {"key": "everyone", "version": 1, "name": "Everyone", "criteria": {"all": [{"age": {"gte": 0}}]}}


def patient(patient_id: str, given: str, phone: str, organization: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"given": [given], "family": "Facilityson"}],
        "birthDate": "1960-05-01",
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "managingOrganization": {"reference": organization},
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


@dataclass
class Side:
    """One facility's patient and what was made for them."""

    facility: str
    patient_id: str
    given: str
    phone: str
    enrollment_id: str = ""
    task_id: str = ""
    message_id: str = ""
    episode_id: str = ""

    def secrets(self) -> list[str]:
        """Strings that only this side's records carry."""
        return [
            self.patient_id,
            self.given,
            self.phone,
            self.enrollment_id,
            self.task_id,
            self.message_id,
            self.episode_id,
            f"{self.patient_id}-stay",
        ]


def discharge(patient_id: str) -> dict[str, Any]:
    """A stay that ended an hour ago: it is scored and opens a TCM episode."""
    end = datetime.now(UTC) - timedelta(hours=1)
    return {
        "resourceType": "Encounter",
        "id": f"{patient_id}-stay",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": (end - timedelta(days=3)).isoformat(), "end": end.isoformat()},
    }


async def _add_facilities(api: httpx.AsyncClient) -> None:
    for facility in (GROUP, NORTH, SOUTH):
        made = await api.post("/v1/facilities", json=facility)
        assert made.status_code == 201, made.text


async def _made_for(api: httpx.AsyncClient, side: Side) -> None:
    created = await api.post(
        f"/v1/journeys/{JOURNEY['key']}/enrollments", json={"patient_id": side.patient_id}
    )
    assert created.status_code == 201, created.text
    side.enrollment_id = created.json()["enrollment_id"]

    async def task() -> str | None:
        items = (await api.get("/v1/tasks", params={"patient_id": side.patient_id})).json()["items"]
        return str(items[0]["id"]) if items else None

    side.task_id = await eventually(task)
    messages = (await api.get("/v1/messages", params={"patient_id": side.patient_id})).json()["items"]
    side.message_id = messages[0]["id"]


@pytest.fixture
async def sides(api: httpx.AsyncClient) -> tuple[Side, Side]:
    await _add_facilities(api)
    north = Side("north-hospital", "fac-north-patient", "Norberta", "+12125550111")
    south = Side("south-clinic", "fac-south-patient", "Southwick", "+13105550122")
    imported = await api.post(
        "/v1/fhir/import",
        params={"triggers": "false"},
        json=bundle(
            patient(north.patient_id, north.given, north.phone, "Organization/north"),
            patient(south.patient_id, south.given, south.phone, "Organization/south"),
            discharge(north.patient_id),
            discharge(south.patient_id),
        ),
    )
    assert imported.status_code == 200, imported.text
    assert (await api.post("/v1/journeys", json=JOURNEY)).status_code == 201
    for side in (north, south):
        await _made_for(api, side)
    episodes = (await api.get("/v1/tcm/episodes")).json()["items"]
    for side in (north, south):
        side.episode_id = next(item["id"] for item in episodes if item["patient_id"] == side.patient_id)
    assert (await api.post("/v1/segments", json=SEGMENT)).status_code == 201
    assert (await api.post(f"/v1/segments/{SEGMENT['key']}/refresh")).status_code in (200, 202)
    for side in (north, south):  # audit rows naming each patient
        assert (await api.get(f"/v1/patients/{side.patient_id}")).status_code == 200
    return north, south


async def _keys(api: httpx.AsyncClient, facility: str) -> dict[str, str]:
    made = {}
    combos = {role.value: [role.value] for role in Role} | {
        "healthcare+marketing": ["healthcare", "marketing"]
    }
    for name, roles in combos.items():
        answer = await api.post(
            "/v1/api-keys", json={"name": f"{facility}-{name}", "roles": roles, "facilities": [facility]}
        )
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["key"]
    return made


async def test_facilities_are_made_and_listed_as_a_tree(api: httpx.AsyncClient) -> None:
    await _add_facilities(api)
    listed = (await api.get("/v1/facilities")).json()["items"]
    assert [item["key"] for item in listed] == ["group", "north-hospital", "south-clinic"]
    north = listed[1]
    assert north["organization"] == "Organization/north"
    assert north["senders"]["sms"]["from"] == "+15005550001"
    again = await api.post("/v1/facilities", json=NORTH)
    assert again.status_code == 409
    orphan = await api.post(
        "/v1/facilities", json={**NORTH, "key": "x", "organization": None, "parent": "nope"}
    )
    assert orphan.status_code == 409
    bad_zone = await api.post("/v1/facilities", json={**NORTH, "key": "y", "timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422


async def test_managing_organization_and_encounters_place_patients(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    north, south = sides
    north_key = (await _keys(api, "north-hospital"))["healthcare"]
    seen = await api.get(f"/v1/patients/{north.patient_id}", headers={"X-API-Key": north_key})
    assert seen.status_code == 200
    hidden = await api.get(f"/v1/patients/{south.patient_id}", headers={"X-API-Key": north_key})
    assert hidden.status_code == 404
    # an encounter at North places the South patient there too (a patient may belong to several)
    encounter = {
        "resourceType": "Encounter",
        "id": "fac-enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{south.patient_id}"},
        "serviceProvider": {"reference": "Organization/north"},
    }
    assert (
        await api.post("/v1/fhir/import", json=bundle(encounter), params={"triggers": "false"})
    ).status_code == 200
    now_seen = await api.get(f"/v1/patients/{south.patient_id}", headers={"X-API-Key": north_key})
    assert now_seen.status_code == 200


async def test_scoped_keys_grant_only_within_their_facilities(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    north_admin = (await _keys(api, "north-hospital"))["admin"]
    as_north = {"X-API-Key": north_admin}
    south = await api.post(
        "/v1/api-keys",
        json={"name": "x", "roles": ["admin"], "facilities": ["south-clinic"]},
        headers=as_north,
    )
    assert south.status_code == 403
    whole = await api.post("/v1/api-keys", json={"name": "x", "roles": ["admin"]}, headers=as_north)
    assert whole.status_code == 403
    unknown = await api.post(
        "/v1/api-keys", json={"name": "x", "roles": ["admin"], "facilities": ["nowhere"]}
    )
    assert unknown.status_code == 422
    listed = (await api.get("/v1/facilities", headers=as_north)).json()["items"]
    assert [item["key"] for item in listed] == ["north-hospital"]
    # the audit trail names the facilities a caller was limited to
    audited = (await api.get("/v1/audit", params={"resource_type": "api_key"})).json()["items"]
    refused = [item for item in audited if item["status_code"] == 403]
    assert refused
    assert {tuple(item["actor_facilities"]) for item in refused} == {("north-hospital",)}


# Path parameters that name a patient's records, filled with the other facility's.
def _url(route: Route, other: Side) -> str:
    values = {
        "patient_id": other.patient_id,
        "enrollment_id": other.enrollment_id,
        "task_id": other.task_id,
        "episode_id": other.episode_id,
        "resource_type": "Patient",
        "resource_id": other.patient_id,
        "date": "2026-01-01",
        "channel": "sms",
        "key": SEGMENT["key"] if "/segments/" in route.path else JOURNEY["key"],
    }
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match[1], "unknown-1"), route.path)


NAMES_A_RECORD = ("{patient_id}", "{enrollment_id}", "{task_id}", "{episode_id}")


async def test_every_route_with_every_role_of_one_facility_shows_nothing_of_the_other(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    north, south = sides
    leaks: list[str] = []
    for own, other in ((north, south), (south, north)):
        keys = await _keys(api, own.facility)
        for role, key in keys.items():
            for route in ROUTES:
                access = RULES[(route.method, route.path)].access
                console_page = access is Access.CONSOLE and route.method == "GET"
                if access is not Access.PERMISSION and not console_page:
                    continue
                url = _url(route, other)
                answer = await api.request(route.method, url, headers={"X-API-Key": key})
                text = answer.text
                # What the caller sent may be echoed back ("no patient 'x'"); nothing else of the other's.
                echoed = set(re.findall(r"[\w-]+", url))
                found = [secret for secret in other.secrets() if secret not in echoed and secret in text]
                if found:
                    leaks.append(f"{role} {route.method} {url}: {answer.status_code} shows {found}")
                names_a_record = any(part in route.path for part in NAMES_A_RECORD)
                if route.method == "GET" and names_a_record and answer.status_code not in (403, 404):
                    leaks.append(f"{role} {route.method} {url}: {answer.status_code}, not 404")
    assert leaks == []


async def test_own_records_stay_visible_and_counts_are_the_facility_s(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    north, south = sides
    key = {"X-API-Key": (await _keys(api, "north-hospital"))["healthcare+marketing"]}
    patients = (await api.get("/v1/patients", headers=key)).json()["items"]
    assert [item["id"] for item in patients] == [north.patient_id]
    messages = (await api.get("/v1/messages", headers=key)).json()["items"]
    assert {item["patient_id"] for item in messages} == {north.patient_id}
    # a journey's text goes out as the patient's facility, from its number
    assert {(item["facility"], item["sender"]) for item in messages} == {("north-hospital", "+15005550001")}
    tasks = (await api.get("/v1/tasks", headers=key)).json()["items"]
    assert {item["patient_id"] for item in tasks} == {north.patient_id}
    enrollments = (await api.get("/v1/enrollments", headers=key)).json()["items"]
    assert {item["patient_id"] for item in enrollments} == {north.patient_id}
    preview = (await api.get(f"/v1/segments/{SEGMENT['key']}/preview", headers=key)).json()
    assert preview["sample"] == [north.patient_id]
    members = (await api.get(f"/v1/segments/{SEGMENT['key']}/members", headers=key)).json()
    assert [
        member if isinstance(member, str) else member.get("patient_id") for member in members["members"]
    ] == [north.patient_id]
    # the whole group, unchanged: a key without facilities, and a key of the root facility
    group_key = (await _keys(api, "group"))["healthcare"]
    for headers in ({}, {"X-API-Key": group_key}):
        everyone = (await api.get("/v1/patients", headers=headers)).json()["items"]
        assert {item["id"] for item in everyone} == {north.patient_id, south.patient_id}


NORTH_CLINIC = {
    "key": "north-clinic",
    "name": "North Clinic",
    "timezone": "America/New_York",
    "parent": "north-hospital",
}
TEMPLATE = {"key": "north-welcome", "channel": "sms", "body": "Welcome to North, {{ patient.given }}"}
NORTH_SEGMENT = {"key": "north-adults", "name": "North adults", "criteria": {"age": {"gte": 18}}}


async def _admins(api: httpx.AsyncClient, *facilities: str) -> dict[str, dict[str, str]]:
    """An admin key's headers of each facility."""
    made = {}
    for facility in facilities:
        answer = await api.post(
            "/v1/api-keys", json={"name": f"{facility}-owner", "roles": ["admin"], "facilities": [facility]}
        )
        assert answer.status_code == 201, answer.text
        made[facility] = {"X-API-Key": answer.json()["key"]}
    return made


async def test_definitions_belong_to_a_facility_and_are_shared_down_its_tree(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    assert (await api.post("/v1/facilities", json=NORTH_CLINIC)).status_code == 201
    keys = await _admins(api, "north-hospital", "south-clinic", "north-clinic")
    north, south, clinic = keys["north-hospital"], keys["south-clinic"], keys["north-clinic"]
    # a caller of one facility publishes for it without naming it
    assert (await api.post("/v1/templates", json=TEMPLATE, headers=north)).status_code == 201
    assert (await api.post("/v1/segments", json=NORTH_SEGMENT, headers=north)).status_code == 201
    campaign = {
        "key": "north-flu",
        "name": "North flu",
        "segment": "north-adults",
        "template": "north-welcome",
    }
    made = await api.post("/v1/campaigns", json=campaign, headers=north)
    assert made.status_code == 201, made.text
    journey = {**JOURNEY, "key": "north-check-in", "facility": "north-hospital"}
    assert (await api.post("/v1/journeys", json=journey, headers=north)).status_code == 201

    shown = (await api.get("/v1/templates/north-welcome", headers=north)).json()
    assert shown["variants"][0]["facility"] == "north-hospital"
    for path, key in (
        ("/v1/segments", "north-adults"),
        ("/v1/campaigns", "north-flu"),
        ("/v1/journeys", "north-check-in"),
    ):
        # shown with its facility to the owner, its subtree and the group; hidden from the other facility
        for headers in (north, clinic, {}):
            listed = {item["key"]: item for item in (await api.get(path, headers=headers)).json()["items"]}
            assert listed[key]["facility"] == "north-hospital", (path, headers)
            assert (await api.get(f"{path}/{key}", headers=headers)).json()["facility"] == "north-hospital"
        listed = [item["key"] for item in (await api.get(path, headers=south)).json()["items"]]
        assert key not in listed
        assert (await api.get(f"{path}/{key}", headers=south)).status_code == 404
    # a facility's segment holds only patients of its subtree, whoever evaluates it
    north_patient, _ = sides
    for headers in (north, {}):
        preview = (await api.get("/v1/segments/north-adults/preview", headers=headers)).json()
        assert (preview["count"], preview["sample"]) == (1, [north_patient.patient_id])
    templates = [item["key"] for item in (await api.get("/v1/templates", headers=south)).json()["items"]]
    assert "north-welcome" not in templates
    assert (await api.get("/v1/templates/north-welcome", headers=south)).status_code == 404
    # the group's definitions stay everyone's
    for headers in (north, south, clinic):
        shared = (await api.get(f"/v1/journeys/{JOURNEY['key']}", headers=headers)).json()
        assert shared["key"] == JOURNEY["key"]
        assert "facility" not in shared

    # writes only within the caller's reach
    elsewhere = await api.post(
        "/v1/segments", json={**NORTH_SEGMENT, "key": "x", "facility": "south-clinic"}, headers=north
    )
    assert elsewhere.status_code == 403
    upward = await api.post(
        "/v1/segments", json={**NORTH_SEGMENT, "key": "y", "facility": "north-hospital"}, headers=clinic
    )
    assert upward.status_code == 403
    # a key keeps its facility across versions: North does not write the group's journey
    group_journey = await api.post("/v1/journeys", json={**JOURNEY, "version": 2}, headers=north)
    assert group_journey.status_code == 403
    assert "whole group" in group_journey.json()["detail"]
    moved = await api.post("/v1/segments", json={**NORTH_SEGMENT, "version": 2, "facility": "group"})
    assert moved.status_code == 409
    unknown = await api.post("/v1/segments", json={**NORTH_SEGMENT, "key": "z", "facility": "nowhere"})
    assert unknown.status_code == 422
    # a campaign of South cannot use North's segment: it does not see it
    borrowed = await api.post("/v1/campaigns", json={**campaign, "key": "south-flu"}, headers=south)
    assert borrowed.status_code == 422
    # the clinic below North uses North's segment
    below = await api.post("/v1/campaigns", json={**campaign, "key": "clinic-flu"}, headers=clinic)
    assert below.status_code == 201, below.text
    assert (await api.get("/v1/campaigns/clinic-flu")).json()["facility"] == "north-clinic"


async def test_a_fhir_source_names_the_facility_of_its_patients(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    keys = await _admins(api, "north-hospital")
    source = {"key": "south-ehr", "base_url": "https://ehr.example", "watched_types": ["Patient"]}
    saved = await api.post("/v1/fhir/sources", json={**source, "facility": "south-clinic"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["facility"] == "south-clinic"
    assert (await api.get("/v1/fhir/sources/south-ehr")).json()["facility"] == "south-clinic"
    # a caller of North cannot point a source at South's facility, nor at one that does not exist
    elsewhere = await api.post(
        "/v1/fhir/sources",
        json={**source, "key": "x-ehr", "facility": "south-clinic"},
        headers=keys["north-hospital"],
    )
    assert elsewhere.status_code == 403
    unknown = await api.post("/v1/fhir/sources", json={**source, "key": "y-ehr", "facility": "nowhere"})
    assert unknown.status_code == 422


async def test_enrollments_tasks_decisions_and_audit_rows_name_their_facility(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    for side in sides:
        enrollment = (await api.get(f"/v1/enrollments/{side.enrollment_id}")).json()
        assert enrollment["facility"] == side.facility
        listed = (await api.get("/v1/enrollments", params={"patient_id": side.patient_id})).json()["items"]
        assert {item["facility"] for item in listed} == {side.facility}
        assert (await api.get(f"/v1/tasks/{side.task_id}")).json()["facility"] == side.facility
        decisions = (await api.get(f"/v1/patients/{side.patient_id}/decisions")).json()["items"]
        assert decisions
        assert {item["facility"] for item in decisions} == {side.facility}
        audited = await api.get(
            "/v1/audit", params={"resource_type": "patient", "resource_id": side.patient_id}
        )
        assert {item["facility"] for item in audited.json()["items"]} == {side.facility}


async def test_a_journey_of_a_facility_enrolls_only_its_patients(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    north, south = sides
    journey = {**JOURNEY, "key": "north-only", "facility": "north-hospital"}
    assert (await api.post("/v1/journeys", json=journey)).status_code == 201
    refused = await api.post("/v1/journeys/north-only/enrollments", json={"patient_id": south.patient_id})
    assert refused.status_code == 409
    assert "facility" in refused.json()["detail"]
    made = await api.post("/v1/journeys/north-only/enrollments", json={"patient_id": north.patient_id})
    assert made.status_code == 201
    enrollment = (await api.get(f"/v1/enrollments/{made.json()['enrollment_id']}")).json()
    assert enrollment["facility"] == "north-hospital"
    batch = await api.post(
        "/v1/journeys/north-only/enrollments/batch",
        json={"patients": [{"patient_id": south.patient_id}, {"patient_id": north.patient_id}]},
    )
    south_result, north_result = (item["result"] for item in batch.json()["results"])
    assert south_result == "refused"
    assert north_result in {"existing", "created"}  # the first enrollment may have ended by now


async def test_a_facility_is_changed_and_removed_only_when_nothing_belongs_to_it(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    changed = await api.patch(
        "/v1/facilities/south-clinic",
        json={"name": "South Health Center", "quiet_hours": "20:00-09:00", "senders": {"push_app": "South"}},
    )
    assert changed.status_code == 200, changed.text
    south = changed.json()
    assert (south["name"], south["quiet_hours"]) == ("South Health Center", "20:00-09:00")
    assert (south["senders"]["push_app"], south["senders"]["sms"]) == ("South", None)  # sent: replaced
    assert south["organization"] == "Organization/south"  # what was not sent stays
    assert (
        await api.patch("/v1/facilities/south-clinic", json={"timezone": "Mars/Olympus"})
    ).status_code == 422
    assert (await api.patch("/v1/facilities/south-clinic", json={"key": "renamed"})).status_code == 422
    loop = await api.patch("/v1/facilities/group", json={"parent": "south-clinic"})
    assert loop.status_code == 409
    taken = await api.patch("/v1/facilities/south-clinic", json={"organization": "Organization/north"})
    assert taken.status_code == 409
    # a caller of North neither sees nor changes South, and cannot move North out of its reach
    north_admin = (await _admins(api, "north-hospital"))["north-hospital"]
    assert (
        await api.patch("/v1/facilities/south-clinic", json={"name": "x"}, headers=north_admin)
    ).status_code == 404
    assert (await api.delete("/v1/facilities/south-clinic", headers=north_admin)).status_code == 404
    moved = await api.patch(
        "/v1/facilities/north-hospital", json={"parent": "south-clinic"}, headers=north_admin
    )
    assert moved.status_code == 403

    # South still has its patient, enrollment, task, decisions and messages: a 409 that names them
    refused = await api.delete("/v1/facilities/south-clinic")
    assert refused.status_code == 409
    assert "patients" in refused.json()["detail"]
    assert "enrollments" in refused.json()["detail"]
    assert (await api.delete("/v1/facilities/group")).status_code == 409  # facilities below it
    # an empty facility goes
    empty = {"key": "west-annex", "name": "West Annex", "timezone": "UTC", "parent": "group"}
    assert (await api.post("/v1/facilities", json=empty)).status_code == 201
    assert (await api.delete("/v1/facilities/west-annex")).status_code == 204
    listed = [item["key"] for item in (await api.get("/v1/facilities")).json()["items"]]
    assert "west-annex" not in listed
    assert (await api.delete("/v1/facilities/west-annex")).status_code == 404


async def test_the_console_editors_publish_for_the_caller_s_facility(
    api: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    keys = await _admins(api, "north-hospital")
    north = keys["north-hospital"]
    text = "key: north-kids\nname: North kids\ncriteria:\n  age: {lt: 18}\n"
    saved = await api.post("/console/segments/north-kids/editor", data={"definition": text}, headers=north)
    assert saved.status_code == 303, saved.text
    assert (await api.get("/v1/segments/north-kids")).json()["facility"] == "north-hospital"
    elsewhere = text.replace("key: north-kids", "key: south-kids\nfacility: south-clinic")
    refused = await api.post(
        "/console/segments/south-kids/editor", data={"definition": elsewhere}, headers=north
    )
    assert refused.status_code == 422
    assert "acts only for them" in refused.text
    assert (await api.get("/v1/segments/south-kids")).status_code == 404

"""Hospital ADT feeds over MLLP, end to end on the real Temporal dev server and PostgreSQL, sent by
the `hl7` package's own client (`MLLPClient`, and its `mllp_send` tool): discharges start journeys
once, acknowledgements follow the commit, resends and crashes lose and duplicate nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import hl7
import httpx
import psycopg
import pytest
from hl7.client import MLLPClient
from hl7.mllp import open_hl7_connection
from psycopg.errors import SerializationFailure
from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from aftercare.db.engine import create_engine, session_factory
from aftercare.enrollment.starter import EnrollmentStarter
from aftercare.hl7v2.authorities import AuthoritySystems
from aftercare.hl7v2.intake import AdtIntake, Handled, _patients_holding
from aftercare.hl7v2.sealing import RawSealer, Sealed
from aftercare.hl7v2.server import MllpListener
from aftercare.security.codec import parse_codec_keys
from aftercare.settings import Settings
from aftercare.store.adt_messages import answers_given
from models.adt_tables import AdtMessage
from models.tables import Enrollment, FhirResource
from tests.aftercare.hl7v2.samples import SAMPLES, sample, with_control_id
from tests.integration.test_observation_to_sms import eventually

pytestmark = pytest.mark.usefixtures("worker")

JOURNEY = """
key: adt-discharge
version: 1
name: Welcome home after a discharge
entry:
  fhir:
    resource: Encounter
    interactions: [create, update]
    criteria: "Encounter.status = 'finished'"
steps:
  - id: welcome
    send: {channel: sms, body: "Welcome home, {{ patient.given }}."}
  - id: settle
    wait: {duration: P7D}
"""
YAML = {"content-type": "application/yaml"}


def build_intake(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], env: WorkflowEnvironment
) -> AdtIntake:
    assert settings.aftercare_codec_keys is not None
    return AdtIntake(
        sessions=sessions,
        starter=EnrollmentStarter(sessions, env.client, settings.temporal_task_queue),
        temporal=env.client,
        sealer=RawSealer(parse_codec_keys(settings.aftercare_codec_keys.get_secret_value())),
        zone=ZoneInfo(settings.hospital_timezone),
        phone_region=settings.phone_default_region,
    )


@pytest.fixture
async def intake(
    api_settings: Settings, sessions: async_sessionmaker[AsyncSession], dev_server: WorkflowEnvironment
) -> AdtIntake:
    return build_intake(api_settings, sessions, dev_server)


@pytest.fixture
async def mllp_port(intake: AdtIntake, api: httpx.AsyncClient) -> AsyncIterator[int]:
    """A listener on a free port, with the discharge journey published."""
    assert (await api.post("/v1/journeys", content=JOURNEY, headers=YAML)).status_code == 201
    server = await MllpListener(intake).start("127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def send(port: int, *texts: str) -> list[hl7.Message]:
    """Each message over one connection by the `hl7` package's client; the parsed ACKs."""

    def blocking() -> list[hl7.Message]:
        with MLLPClient("127.0.0.1", port) as client:
            return [hl7.parse(client.send_message(text).decode().strip("\x0b\x1c\r")) for text in texts]

    return await asyncio.to_thread(blocking)


def msa(ack: hl7.Message) -> tuple[str, str]:
    segment = ack.segment("MSA")
    return str(segment[1]), str(segment[2])


def err_location(ack: hl7.Message) -> str:
    return str(ack.segment("ERR")[2])


async def count(sessions: async_sessionmaker[AsyncSession], statement: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(statement) or 0)


async def outbox(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.get("/v1/messages")).json()["items"]
    return items


async def test_a_discharge_over_mllp_starts_the_journey_and_is_acknowledged_after_commit(
    mllp_port: int, api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admit, discharge = await send(mllp_port, sample("a01_admit"), sample("a03_discharge"))

    assert msa(admit) == ("AA", "MSG0001")
    assert msa(discharge) == ("AA", "MSG0003")
    assert str(discharge.segment("MSH")[9]) == "ACK^A03^ACK"
    # AA came after the commit: the resources and the enrollment are already there
    assert (
        await count(
            sessions,
            select(func.count()).select_from(FhirResource).where(FhirResource.resource_type == "Encounter"),
        )
        == 1
    )
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 1
    sent = await eventually(lambda: outbox(api), 30)
    assert [m["body"] for m in sent] == ["Welcome home, Alfreda."]
    assert sent[0]["to"] == "+16175559876"


async def test_a_resent_control_id_is_processed_once_and_acknowledged_again(
    mllp_port: int, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await send(mllp_port, sample("a03_discharge"))
    again = await send(mllp_port, sample("a03_discharge"), sample("a03_discharge"))

    assert [msa(a) for a in first + again] == [("AA", "MSG0003")] * 3
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == 1
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 1


async def test_an_update_after_the_discharge_starts_nothing_again(
    mllp_port: int, sessions: async_sessionmaker[AsyncSession]
) -> None:
    discharge = sample("a03_discharge")
    updated = with_control_id(discharge.replace("ADT^A03^ADT_A03", "ADT^A08^ADT_A01"), "MSG0003-A08")
    updated = updated.replace("Discharged to home", "Home")

    acks = await send(mllp_port, discharge, updated)

    assert [msa(a)[0] for a in acks] == ["AA", "AA"]
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 1


async def test_a_discharge_arriving_as_adt_and_as_fhir_starts_the_journey_once(
    mllp_port: int, api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    [ack] = await send(mllp_port, sample("a03_discharge"))
    async with sessions() as session:
        encounter = await session.scalar(
            select(FhirResource.content).where(FhirResource.resource_type == "Encounter")
        )
    assert msa(ack)[0] == "AA"
    assert encounter is not None
    fhir_encounter = {
        "resourceType": "Encounter",
        "id": "epic-enc-777",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": encounter["identifier"],
        "subject": encounter["subject"],
        "period": {"start": "2026-12-01T13:00:00Z", "end": "2026-12-05T19:30:00Z"},  # the same instants
    }

    posted = await api.post("/v1/fhir/notifications", json=fhir_encounter)

    assert posted.status_code == 200
    assert (
        await count(
            sessions,
            select(func.count()).select_from(FhirResource).where(FhirResource.resource_type == "Encounter"),
        )
        == 2
    )
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 1


async def test_an_authority_mapped_to_the_fhir_system_joins_the_patient_the_ehr_already_sent(
    api: httpx.AsyncClient,
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "fhir-alfreda",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"}],
        "name": [{"family": "Wyman", "given": ["Alfreda"]}],
    }
    assert (await api.post("/v1/fhir/notifications", json=patient)).status_code == 200
    intake = replace(
        build_intake(api_settings, sessions, dev_server),
        authorities=AuthoritySystems({"SSA": "http://hl7.org/fhir/sid/us-ssn"}),
    )

    handled = await intake.handle(sample("a03_discharge"))

    assert handled.code == "AA"
    async with sessions() as session:
        subject = await session.scalar(
            select(FhirResource.content["subject"]["reference"].as_string()).where(
                FhirResource.resource_type == "Encounter"
            )
        )
    assert subject == "Patient/fhir-alfreda"


async def test_a_cancelled_discharge_ends_the_journey_it_started_with_an_outcome_saying_so(
    mllp_port: int, sessions: async_sessionmaker[AsyncSession]
) -> None:
    acks = await send(mllp_port, sample("a03_discharge"), sample("a13_cancel_discharge"))

    assert [msa(a)[0] for a in acks] == ["AA", "AA"]

    async def ended() -> bool:
        async with sessions() as session:
            row = (await session.execute(select(Enrollment.status, Enrollment.outcome))).one()
            return tuple(row) == ("exited", "discharge_cancelled")

    assert await eventually(ended, 30)


@pytest.mark.parametrize(
    ("name", "code", "location"),
    [
        ("malformed_missing_pid3", "AE", "PID^1^3"),
        ("malformed_bad_date", "AE", "PID^1^7"),
        ("malformed_wrong_delimiters", "AE", "PID"),
        ("malformed_unknown_event", "AR", "MSH^1^9"),
        ("malformed_unsupported_version", "AR", "MSH^1^12"),
    ],
)
async def test_a_message_that_cannot_be_mapped_is_parked_sealed_and_answered_with_the_field(
    mllp_port: int,
    intake: AdtIntake,
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    code: str,
    location: str,
) -> None:
    [ack] = await send(mllp_port, sample(name))

    assert msa(ack)[0] == code
    assert err_location(ack) == location
    async with sessions() as session:
        parked = (await session.scalars(select(AdtMessage))).one()
    assert parked.ack_code == code
    assert parked.reason
    assert parked.raw_sealed is not None
    assert b"Wyman" not in parked.raw_sealed  # PHI at rest is sealed
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 0
    retried = await intake.retry(parked.id)  # an operator's retry: still the same answer
    assert retried is not None
    assert retried.code == code


async def test_an_operator_lists_parked_messages_without_their_text_and_retries_one_through_the_api(
    mllp_port: int, api: httpx.AsyncClient
) -> None:
    [ack] = await send(mllp_port, sample("malformed_bad_date"))
    assert msa(ack)[0] == "AE"

    listed = await api.get("/v1/hl7v2/messages/parked")

    assert listed.status_code == 200
    [parked] = listed.json()["items"]
    assert (parked["ack_code"], parked["error_location"], parked["retryable"]) == ("AE", "PID-7", True)
    assert "Wyman" not in listed.text
    retried = await api.post(f"/v1/hl7v2/messages/{parked['id']}/retry")
    assert retried.status_code == 200
    assert retried.json()["ack_code"] == "AE"
    assert retried.json()["reason"]
    [after] = (await api.get("/v1/hl7v2/messages/parked")).json()["items"]
    assert after["retried_at"] is not None
    assert (await api.post("/v1/hl7v2/messages/999999/retry")).status_code == 404


async def test_a_merge_joins_the_two_records(
    mllp_port: int, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = sample("a01_admit").replace("MRN12345", "MRN99999").replace("V0001", "V0099")
    other = other.replace("999-12-3456", "999-00-0000").replace("5559876", "5550101")
    other = with_control_id(other, "MSG-OTHER")

    acks = await send(mllp_port, sample("a01_admit"), other, sample("a40_merge"))

    assert [msa(a)[0] for a in acks] == ["AA", "AA", "AA"]
    from aftercare.hl7v2.mapping import patient_id_for, patient_identifiers
    from aftercare.hl7v2.messages import V2Message
    from aftercare.store.identity import person_of, records_of

    survivor = patient_id_for(patient_identifiers(V2Message(sample("a01_admit"))))
    async with sessions() as session:
        person = await person_of(session, survivor)
        assert person is not None
        assert len(await records_of(session, person)) == 2


async def test_the_hl7_packages_mllp_send_tool_gets_an_aa(mllp_port: int) -> None:
    tool = Path(sys.executable).parent / "mllp_send"

    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(tool),
            "--loose",
            "--port",
            str(mllp_port),
            "--file",
            str(SAMPLES / "a01_admit.hl7"),
            "127.0.0.1",
        ],
        capture_output=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert b"MSA|AA|MSG0001" in result.stdout


async def test_messages_for_different_patients_go_concurrently_and_each_patient_in_order(
    mllp_port: int, sessions: async_sessionmaker[AsyncSession]
) -> None:
    def visit(n: int) -> list[str]:
        def person(text: str) -> str:  # their own MRN, SSN and visit
            text = text.replace("MRN12345", f"MRN{n:05d}").replace("999-12-3456", f"999-00-{n:04d}")
            return text.replace("V0001", f"V{n:04d}")

        return [
            with_control_id(person(sample("a01_admit")), f"A{n}"),
            with_control_id(person(sample("a03_discharge")), f"D{n}"),
        ]

    results = await asyncio.gather(*(send(mllp_port, *visit(n)) for n in range(4)))

    assert all(msa(a)[0] == "AA" for acks in results for a in acks)
    async with sessions() as session:
        statuses = (
            await session.scalars(
                select(FhirResource.content["status"].as_string()).where(
                    FhirResource.resource_type == "Encounter"
                )
            )
        ).all()
    assert statuses == ["finished"] * 4
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 4


def visit_of(number: int, *events: str) -> list[str]:
    """These samples for patient `number` (their own MRN, SSN and visit), control ids `<event><n>`."""

    def person(text: str) -> str:
        text = text.replace("MRN12345", f"MRN{number:05d}").replace("999-12-3456", f"999-00-{number:04d}")
        return text.replace("V0001", f"V{number:04d}")

    return [with_control_id(person(sample(event)), f"{event[:3]}-{number}") for event in events]


async def test_a_batch_is_two_commits_and_keeps_each_patients_order_and_each_control_id_once(
    mllp_port: int,
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """What group commit hands the intake: admissions and discharges of several patients together,
    one patient's admission and discharge in the same batch, a resend inside the batch and a message
    that cannot be mapped. The intake has an engine of its own, so its commits can be counted."""
    admissions = [text for n in range(6) for text in visit_of(n, "a01_admit")]
    same_patient = visit_of(6, "a01_admit", "a03_discharge")
    discharges = [text for n in range(3) for text in visit_of(n, "a03_discharge")]
    broken = with_control_id(sample("malformed_missing_pid3"), "BROKEN-1")
    batch = [*admissions, same_patient[0], broken, *discharges, same_patient[1], discharges[0]]
    engine = create_engine(api_settings.database_url, pool_size=2)
    commits: list[object] = []
    event.listen(engine.sync_engine, "commit", commits.append)
    try:
        outcomes = await build_intake(api_settings, session_factory(engine), dev_server).handle_batch(batch)
    finally:
        await engine.dispose()

    assert all(isinstance(o, Handled) for o in outcomes)
    codes = [o.code for o in outcomes if isinstance(o, Handled)]
    assert codes == ["AA"] * 7 + ["AE"] + ["AA"] * 5
    assert len(commits) == 2  # the store and the record, for thirteen messages
    async with sessions() as session:
        recorded = await session.scalar(select(func.count()).select_from(AdtMessage))
        statuses = dict(
            (
                await session.execute(
                    select(FhirResource.resource_id, FhirResource.content["status"].as_string()).where(
                        FhirResource.resource_type == "Encounter"
                    )
                )
            ).all()
        )
    assert recorded == 12  # the resend within the batch is recorded once
    assert sorted(statuses.values()) == ["finished"] * 4 + ["in-progress"] * 3
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 4
    again = await send(mllp_port, discharges[1], same_patient[1])  # resent later: answered from the record
    assert [msa(a) for a in again] == [("AA", "a03-1"), ("AA", "a03-6")]
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 4


def too_long_family_name(control_id: str) -> str:
    """An A01 whose PID-5 family name is longer than the profile column takes: it maps, then the
    database refuses it."""
    return with_control_id(sample("a01_admit").replace("Wyman^Alfreda", "W" * 400 + "^Alfreda"), control_id)


async def parked_rows(sessions: async_sessionmaker[AsyncSession]) -> list[AdtMessage]:
    async with sessions() as session:
        return list((await session.scalars(select(AdtMessage).where(AdtMessage.ack_code != "AA"))).all())


ENCOUNTERS = select(func.count()).select_from(FhirResource).where(FhirResource.resource_type == "Encounter")


async def test_a_value_the_database_refuses_parks_that_message_alone_and_its_batch_commits_the_others(
    intake: AdtIntake, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The batch's transaction fails on one message's value: the others are committed and answered `AA`,
    that one is parked (sealed) and answered `AE` naming PID-5, and its resend gets the same answer."""
    healthy = [text for n in range(40, 43) for text in visit_of(n, "a01_admit")]
    too_long = too_long_family_name("TOO-LONG")
    recorded = await count(sessions, select(func.count()).select_from(AdtMessage))
    stored = await count(sessions, ENCOUNTERS)

    outcomes = await intake.handle_batch([healthy[0], too_long, *healthy[1:]])

    assert [o.code if isinstance(o, Handled) else repr(o) for o in outcomes] == ["AA", "AE", "AA", "AA"]
    refused = hl7.parse(outcomes[1].ack)  # type: ignore[union-attr]
    assert msa(refused) == ("AE", "TOO-LONG")
    assert err_location(refused) == "PID^1^5"
    assert str(refused.segment("ERR")[3][0][0]) == "102"
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == recorded + 4
    assert await count(sessions, ENCOUNTERS) == stored + 3
    [parked] = [row for row in await parked_rows(sessions) if row.control_id == "TOO-LONG"]
    assert (parked.control_id, parked.ack_code, parked.error_location) == ("TOO-LONG", "AE", "PID-5")
    assert parked.reason is not None
    assert "WWWW" not in parked.reason
    assert parked.raw_sealed is not None
    assert b"WWWW" not in parked.raw_sealed
    assert intake.sealer.open(Sealed(str(parked.raw_key_id), parked.raw_sealed)) == too_long
    [again] = await intake.handle_batch([too_long])  # the sender's resend: the same answer, once
    assert isinstance(again, Handled)
    assert again.code == "AE"
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == recorded + 4


async def test_the_hl7_packages_clients_get_an_ae_naming_the_field_for_a_value_the_database_refuses(
    mllp_port: int, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Before, such a message was never answered: its connection closed and every resend failed the
    same way, so the sender hung on it. `mllp_send` sends a file of three, waiting for each ACK; the
    asyncio client pipelines four, which group commit takes as batches."""
    stored = await count(sessions, ENCOUNTERS)
    feed = tmp_path / "feed.hl7"
    first, second = visit_of(50, "a01_admit") + visit_of(51, "a01_admit")
    feed.write_text("\n".join([first, too_long_family_name("TOO-LONG-1"), second]).replace("\r", "\n"))
    tool = Path(sys.executable).parent / "mllp_send"
    command = [str(tool), "--loose", "--port", str(mllp_port), "--file", str(feed), "127.0.0.1"]

    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=60)

    assert result.returncode == 0, result.stderr
    answers = [line for line in result.stdout.decode().replace("\r", "\n").splitlines() if line]
    assert [line for line in answers if line.startswith("MSA")] == [
        "MSA|AA|a01-50",
        "MSA|AE|TOO-LONG-1",
        "MSA|AA|a01-51",
    ]
    assert any(line.startswith("ERR||PID^1^5|102^") for line in answers)

    pipelined = [*visit_of(52, "a01_admit"), too_long_family_name("TOO-LONG-2"), *visit_of(53, "a01_admit")]
    pipelined.append(visit_of(54, "a01_admit")[0])
    reader, writer = await open_hl7_connection("127.0.0.1", mllp_port)
    try:
        for text in pipelined:
            writer.writemessage(text)
        await writer.drain()
        acks = [await asyncio.wait_for(reader.readmessage(), 60) for _ in pipelined]
    finally:
        writer.close()

    assert [msa(ack) for ack in acks] == [
        ("AA", "a01-52"),
        ("AE", "TOO-LONG-2"),
        ("AA", "a01-53"),
        ("AA", "a01-54"),
    ]
    assert err_location(acks[1]) == "PID^1^5"
    assert {"TOO-LONG-1", "TOO-LONG-2"} <= {row.control_id for row in await parked_rows(sessions)}
    assert await count(sessions, ENCOUNTERS) == stored + 5


class CrashBeforeAck(AdtIntake):
    """The listener's process dies after the commit, before the ACK leaves: the sender sees the
    connection drop and resends."""

    async def handle_batch(self, texts: Sequence[str]) -> list[Handled | Exception]:
        await super().handle_batch(texts)
        raise ConnectionResetError("killed between commit and ACK")


async def test_a_crash_between_commit_and_ack_and_the_resend_lose_and_duplicate_nothing(
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dev_server: WorkflowEnvironment,
    mllp_port: int,
    api: httpx.AsyncClient,
) -> None:
    healthy = build_intake(api_settings, sessions, dev_server)
    crashing = CrashBeforeAck(**{f: getattr(healthy, f) for f in healthy.__dataclass_fields__})
    server = await MllpListener(crashing).start("127.0.0.1", 0)
    async with server:
        with pytest.raises((ConnectionError, OSError, IndexError, hl7.ParseException, ValueError)):
            await send(server.sockets[0].getsockname()[1], sample("a03_discharge"))

    [ack] = await send(mllp_port, sample("a03_discharge"))  # the sender's resend, to the restarted listener

    assert msa(ack) == ("AA", "MSG0003")
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 1
    sent = await eventually(lambda: outbox(api), 30)
    await asyncio.sleep(1)
    assert len(await outbox(api)) == len(sent) == 1


def davinci_discharge(patient: dict[str, Any], encounter: dict[str, Any]) -> dict[str, Any]:
    """A Da Vinci Unsolicited Notifications discharge message Bundle."""
    header = {
        "resourceType": "MessageHeader",
        "id": "dv-header-1",
        "eventCoding": {
            "system": "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event",
            "code": "notification-discharge",
        },
        "source": {"endpoint": "https://ehr.example.org/fhir"},
        "focus": [{"reference": f"Encounter/{encounter['id']}"}],
    }
    return {
        "resourceType": "Bundle",
        "id": "dv-bundle-1",
        "type": "message",
        "timestamp": "2026-12-05T19:31:00Z",
        "entry": [
            {"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in (header, patient, encounter)
        ],
    }


async def test_a_da_vinci_discharge_notification_and_the_adt_discharge_start_the_journey_once(
    mllp_port: int, api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "ehr-pat-1",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.72.5.20", "value": "MRN12345"}],
        "name": [{"family": "Wyman", "given": ["Alfreda"]}],
        "telecom": [{"system": "phone", "value": "+16175559876", "use": "mobile"}],
    }
    encounter = {
        "resourceType": "Encounter",
        "id": "ehr-enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": [
            {
                "system": "urn:aftercare:hl7v2:authority:GENHOSP",
                "value": "V0001",
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}]
                },
            }
        ],
        "subject": {"reference": "Patient/ehr-pat-1"},
        "period": {"start": "2026-12-01T08:00:00-05:00", "end": "2026-12-05T14:30:00-05:00"},
    }
    message = davinci_discharge(patient, encounter)

    first = await api.post("/v1/fhir/$process-message", json=message)
    again = await api.post("/v1/fhir/$process-message", json=message)
    [ack] = await send(mllp_port, sample("a03_discharge"))

    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["type"] == "message"
    assert answer["entry"][0]["resource"]["response"] == {"identifier": "dv-header-1", "code": "ok"}
    assert again.status_code == 200
    assert msa(ack)[0] == "AA"
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == 1
    async with sessions() as session:
        patient_id = await session.scalar(select(Enrollment.patient_id))
    assert patient_id == "ehr-pat-1"  # ADT found the hospital's record by its MRN


async def test_a_message_that_is_not_a_notification_is_an_operation_outcome(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/v1/fhir/$process-message", json={"resourceType": "Bundle", "type": "collection"}
    )

    assert answer.status_code == 422
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["expression"] == ["Bundle.type"]


def listener_environment(settings: Settings, temporal: WorkflowEnvironment) -> dict[str, str]:
    """What `aftercare mllp` run as its own process needs: the test's database and Temporal."""
    import os

    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "LOG_LEVEL": "WARNING",
    }


def discharge_of(number: int) -> str:
    """An A03 for patient `number`: its own MRN, SSN, visit and control id."""
    text = sample("a03_discharge").replace("MRN12345", f"K{number:05d}").replace("V0001", f"KV{number:04d}")
    return with_control_id(text.replace("999-12-3456", f"K-{number:05d}"), f"KILL{number}")


async def test_killing_the_mllp_process_between_message_and_ack_loses_and_duplicates_nothing(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    api: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """`aftercare mllp` as its own process, SIGKILLed while a sender streams discharges; the sender resends
    what was not acknowledged to the restarted listener, as interface engines do."""
    import signal

    from tests.integration.parts import free_port, wait_for_port

    assert (await api.post("/v1/journeys", content=JOURNEY, headers=YAML)).status_code == 201
    port = free_port()
    environment = listener_environment(api_settings, dev_server)

    def listener() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "aftercare", "mllp", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=(tmp_path / "mllp.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, 60)
        return process

    total = 24
    acked: set[int] = set()

    def stream(kill_after: int | None, process: subprocess.Popen[bytes]) -> None:
        with MLLPClient("127.0.0.1", port) as client:
            for number in range(total):
                if number in acked:
                    continue
                if number == kill_after:  # the message leaves, the process dies before its ACK
                    client.socket.send(b"\x0b" + discharge_of(number).encode() + b"\x1c\r")
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return
                answer = client.send_message(discharge_of(number)).decode()
                assert f"MSA|AA|KILL{number}" in answer
                acked.add(number)

    first = listener()
    try:
        await asyncio.to_thread(stream, total // 2, first)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(acked) == total // 2
    second = listener()
    try:
        await asyncio.to_thread(stream, None, second)  # the resend, then the rest
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    assert acked == set(range(total))
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == total
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == total
    assert await count(sessions, select(func.count(func.distinct(Enrollment.patient_id)))) == total
    sent = await eventually(lambda: _all_sent(api, total), 60)
    assert len({m["patient_id"] for m in sent}) == total


async def _all_sent(api: httpx.AsyncClient, total: int) -> list[dict[str, Any]] | None:
    items = await outbox(api)
    return items if len(items) >= total else None


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


async def test_listener_processes_share_the_port_and_keep_each_patients_order(
    api_settings: Settings,
    dev_server: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    api: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """`aftercare mllp --processes 3`: three processes on one port; connections spread over them, a
    patient's discharge sent on another connection after the admission's ACK finds the visit admitted,
    and the listeners stop together (one that dies takes the first down, for its supervisor)."""
    import os
    import signal

    from tests.integration.parts import free_port, wait_for_port

    assert (await api.post("/v1/journeys", content=JOURNEY, headers=YAML)).status_code == 201
    port = free_port()
    environment = listener_environment(api_settings, dev_server)
    command = [sys.executable, "-m", "aftercare", "mllp", "--host", "127.0.0.1", "--port", str(port)]

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / "mllp.log").open("ab")
        return subprocess.Popen([*command, "--processes", "3"], env=environment, stdout=log, stderr=log)

    async def started() -> list[int] | None:
        children = children_of(first.pid)
        return children if len(children) == 2 else None

    first = start()
    try:
        await asyncio.to_thread(wait_for_port, port, 60)
        others = await eventually(started, 60)
        for pid in others:
            assert b"--share-port" in Path(f"/proc/{pid}/cmdline").read_bytes()

        visits = [visit_of(n, "a01_admit", "a03_discharge") for n in range(60, 66)]
        admitted = await asyncio.gather(*(send(port, admit) for admit, _ in visits))
        discharged = await asyncio.gather(*(send(port, discharge) for _, discharge in visits))

        assert [msa(ack)[0] for [ack] in admitted + discharged] == ["AA"] * 12
        async with sessions() as session:
            statuses = (
                await session.scalars(
                    select(FhirResource.content["status"].as_string()).where(
                        FhirResource.resource_type == "Encounter",
                        FhirResource.content["identifier"][0]["value"].as_string().like("V006%"),
                    )
                )
            ).all()
        assert statuses == ["finished"] * 6

        os.kill(others[0], signal.SIGKILL)  # one listener dies: the first stops the rest and fails
        assert await asyncio.to_thread(first.wait, 60) == 1
        for pid in others[1:]:
            assert not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes()
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
            first.wait(30)


async def test_a_patients_lock_holds_another_listeners_batch_about_them_and_a_merge_holds_every_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """What keeps order across listener processes: a batch's transaction holds its patients' advisory
    locks (another transaction about one of them waits; one about others does not), an A40's holds the
    one every batch shares."""
    from psycopg.errors import LockNotAvailable
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from aftercare.store.adt_messages import hold_patients

    async def other(patients: list[str], *, everyone: bool = False) -> bool:
        """Whether another listener's transaction gets these locks within 300 ms."""
        async with sessions.begin() as session:
            await session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            try:
                await hold_patients(session, patients, everyone=everyone)
            except DBAPIError as error:
                if isinstance(error.orig, LockNotAvailable):  # lock_timeout
                    return False
                raise
            return True

    async with sessions.begin() as session:
        await hold_patients(session, ["MRN12345|GENHOSP", "MRN7|GENHOSP"], everyone=False)
        assert not await asyncio.create_task(other(["MRN1|GENHOSP", "MRN12345|GENHOSP"]))
        assert await asyncio.create_task(other(["MRN2|GENHOSP", "MRN3|GENHOSP"]))
        assert not await asyncio.create_task(other([], everyone=True))
    async with sessions.begin() as session:
        await hold_patients(session, [], everyone=True)
        assert not await asyncio.create_task(other(["MRN2|GENHOSP"]))
    assert await asyncio.create_task(other(["MRN12345|GENHOSP"]))


async def test_temporal_out_of_reach_leaves_the_message_unanswered_and_the_resend_starts_the_journey_once(
    mllp_port: int,
    intake: AdtIntake,
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The discharge is stored, then its journey cannot be handed to Temporal: no answer and no record
    (nothing about the message is wrong: it is not parked), so the sender resends; the resend, with
    Temporal back, starts the journey once."""
    from temporalio.client import Client

    from tests.integration.parts import free_port

    gone = await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=intake.temporal.data_converter
    )
    starter = EnrollmentStarter(intake.sessions, gone, api_settings.temporal_task_queue)
    cut_off = replace(intake, temporal=gone, starter=starter)
    discharge = visit_of(70, "a03_discharge")[0]
    recorded = await count(sessions, select(func.count()).select_from(AdtMessage))
    enrolled = await count(sessions, select(func.count()).select_from(Enrollment))

    [outcome] = await cut_off.handle_batch([discharge])

    assert isinstance(outcome, Exception)
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == recorded
    [ack] = await send(mllp_port, discharge)  # the sender's resend, Temporal reachable again
    assert msa(ack) == ("AA", "a03-70")
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == recorded + 1
    assert await count(sessions, select(func.count()).select_from(Enrollment)) == enrolled + 1
    async with sessions() as session:
        workflow_id = await session.scalar(select(Enrollment.workflow_id).order_by(Enrollment.id.desc()))
    assert workflow_id is not None
    await intake.temporal.get_workflow_handle(workflow_id).describe()  # started, once


class LosesARace(AdtIntake):
    """Its batch's first run hits a serialisation failure (another transaction won), as PostgreSQL
    raises it; the runs after it go through."""

    failed: ClassVar[list[Sequence[str]]] = []

    async def _batch(self, texts: Sequence[str]) -> list[Handled | Exception]:
        if not self.failed:
            self.failed.append(texts)
            raise sa_exc.DBAPIError.instance("UPDATE ...", {}, SerializationFailure(), psycopg.Error)
        return await super()._batch(texts)


class FailsOn(AdtIntake):
    """Fails inside Aftercare (not the database) on the message with control id `BUG-1`, every time."""

    async def _batch(self, texts: Sequence[str]) -> list[Handled | Exception]:
        if any("|BUG-1|" in text for text in texts):
            raise KeyError("a mapping bug")
        return await super()._batch(texts)


async def test_a_batch_that_loses_a_race_runs_again_and_a_message_aftercare_fails_on_is_parked(
    intake: AdtIntake, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Every message gets its answer: a serialisation failure runs the batch again (each message
    stored and recorded once); a message that fails inside Aftercare the same way twice is parked
    with `AE` 207 and the others of its batch are answered `AA`."""
    fields = {name: getattr(intake, name) for name in intake.__dataclass_fields__}
    racing = [text for n in range(80, 83) for text in visit_of(n, "a01_admit")]
    recorded = await count(sessions, select(func.count()).select_from(AdtMessage))

    outcomes = await LosesARace(**fields).handle_batch(racing)

    assert [o.code for o in outcomes if isinstance(o, Handled)] == ["AA"] * 3
    assert LosesARace.failed == [racing]
    assert await count(sessions, select(func.count()).select_from(AdtMessage)) == recorded + 3

    buggy = with_control_id(visit_of(84, "a01_admit")[0], "BUG-1")
    batch = [visit_of(85, "a01_admit")[0], buggy, visit_of(86, "a01_admit")[0]]
    outcomes = await FailsOn(**fields).handle_batch(batch)

    assert [o.code if isinstance(o, Handled) else repr(o) for o in outcomes] == ["AA", "AE", "AA"]
    refused = hl7.parse(outcomes[1].ack)  # type: ignore[union-attr]
    assert str(refused.segment("ERR")[3][0][0]) == "207"
    [parked] = [row for row in await parked_rows(sessions) if row.control_id == "BUG-1"]
    assert parked.raw_sealed is not None
    assert parked.reason is not None
    assert "KeyError" in parked.reason


@pytest.mark.usefixtures("empty_database")
async def test_the_look_ups_by_two_arrays_match_pairs_not_a_value_under_another_system_or_sender(
    intake: AdtIntake, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The resend check and the patient look-up take the systems (senders) and values (control ids)
    as two arrays, side by side; a pair made of one's system and another's value is no match."""
    assert (await intake.handle(with_control_id(sample("a01_admit"), "PAIR-1"))).code == "AA"
    mrn, ssn = "urn:oid:2.16.840.1.113883.3.72.5.20", "urn:aftercare:hl7v2:authority:SSA"
    sender = "GENHOSP^2.16.840.1.113883.3.72.5.20^ISO"

    async with sessions() as session:
        holders = await _patients_holding(
            session, {(ssn, "MRN12345"), (mrn, "999-12-3456"), (mrn, "MRN12345")}
        )
        crossed = await answers_given(session, [("OTHER", "PAIR-1"), (sender, "PAIR-2")])
        answered = await answers_given(session, [(sender, "PAIR-1")])

    assert list(holders) == [(mrn, "MRN12345")]
    assert crossed == {}
    assert list(answered) == [(sender, "PAIR-1")]

"""The print room's view of postal letters: daily batches listed, downloaded as a zip or one merged PDF,
and marked printed, which moves their messages to `printed` once."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.messaging.letters import LetterProvider
from activities.messaging.outbox import OutboxProvider
from activities.messaging.providers import ProviderRegistry
from activities.messaging.send import MessagingActivities
from aftercare.settings import Settings
from models.journey import SendSpec
from models.tables import Letter, Message
from tests.helpers import load_synthea_patient, send_request

ALBERTO_BUNDLE = "Alberto_Armstrong_dc9335d0-bbdd-4120-8ae9-baa6604343b6.json"
LONG_BODY = "\n\n".join(
    f"Paragraph {number}. " + "Please keep this letter safe. " * 25 for number in range(14)
)


def today(settings: Settings) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(settings.hospital_timezone)).date()


async def send_letter(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, patient_id: str, step: str, body: str
) -> str:
    """A journey's letter step, sent through the real send activity and letter provider."""
    activities = MessagingActivities(
        sessions, ProviderRegistry({"letter": LetterProvider(sessions, settings)}, OutboxProvider())
    )
    request = send_request(
        SendSpec(channel="letter", subject="Your discharge", body=body),
        step=step,
        enrollment_id=f"enr-{patient_id}",
        patient_id=patient_id,
        journey_key="discharge",
    )
    result = await ActivityEnvironment().run(activities.send_message, request)
    assert result.status == "queued"
    assert result.message_id is not None
    return result.message_id


@pytest.fixture
async def batch(
    sessions: async_sessionmaker[AsyncSession], api_settings: Settings, api: httpx.AsyncClient
) -> list[str]:
    """Today's batch: a one-page letter to Abdul, a long one to Abdul, a one-page letter to Alberto."""
    abdul = await load_synthea_patient(sessions)
    alberto = await load_synthea_patient(sessions, ALBERTO_BUNDLE)
    return [
        await send_letter(
            sessions, api_settings, abdul["id"], "welcome", "Dear {{ patient.given }},\n\nWelcome home."
        ),
        await send_letter(sessions, api_settings, abdul["id"], "advice", LONG_BODY),
        await send_letter(
            sessions, api_settings, alberto["id"], "welcome", "Dear {{ patient.given }},\n\nWelcome home."
        ),
    ]


async def test_batches_are_listed_newest_first_with_their_counts(
    api: httpx.AsyncClient,
    batch: list[str],
    sessions: async_sessionmaker[AsyncSession],
    api_settings: Settings,
) -> None:
    day = today(api_settings)
    async with sessions.begin() as session:
        await session.execute(
            update(Letter).where(Letter.message_id == batch[2]).values(batch_date=day - timedelta(days=1))
        )

    response = await api.get("/v1/letters/batches")

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {"date": day.isoformat(), "letters": 2, "queued": 2, "printed": 0},
            {"date": (day - timedelta(days=1)).isoformat(), "letters": 1, "queued": 1, "printed": 0},
        ]
    }


async def test_no_letters_means_no_batches(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/letters/batches")
    assert (response.status_code, response.json()) == (200, {"items": []})


async def test_a_batch_downloads_as_a_zip_of_numbered_pdfs_with_a_manifest(
    api: httpx.AsyncClient, batch: list[str], api_settings: Settings
) -> None:
    day = today(api_settings).isoformat()

    response = await api.get(f"/v1/letters/batches/{day}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="letters-{day}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    files = [f"{number:04d}-{message_id}.pdf" for number, message_id in enumerate(batch, start=1)]
    assert archive.namelist() == [*files, "manifest.csv"]
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [(row["message_id"], row["file"]) for row in manifest] == list(zip(batch, files, strict=True))
    pages = [len(PdfReader(io.BytesIO(archive.read(name))).pages) for name in files]
    assert [int(row["pages"]) for row in manifest] == pages
    assert pages[0] == 1
    assert pages[1] > 1
    first = PdfReader(io.BytesIO(archive.read(files[0]))).pages[0].extract_text()
    assert "313 Lockman Row Suite 4" in first
    assert "Dear Abdul," in first
    assert "Dear Alberto," in PdfReader(io.BytesIO(archive.read(files[2]))).pages[0].extract_text()


async def test_a_batch_downloads_as_one_merged_pdf_by_format_or_accept_header(
    api: httpx.AsyncClient, batch: list[str], api_settings: Settings
) -> None:
    day = today(api_settings).isoformat()
    archive = zipfile.ZipFile(io.BytesIO((await api.get(f"/v1/letters/batches/{day}")).content))
    total_pages = sum(
        int(row["pages"]) for row in csv.DictReader(io.StringIO(archive.read("manifest.csv").decode()))
    )

    by_query = await api.get(f"/v1/letters/batches/{day}", params={"format": "pdf"})
    by_accept = await api.get(f"/v1/letters/batches/{day}", headers={"accept": "application/pdf"})
    explicit_zip = await api.get(
        f"/v1/letters/batches/{day}?format=zip", headers={"accept": "application/pdf"}
    )

    for response in (by_query, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == f'attachment; filename="letters-{day}.pdf"'
        reader = PdfReader(io.BytesIO(response.content))
        assert len(reader.pages) == total_pages
        assert "Dear Abdul," in reader.pages[0].extract_text()
        assert "Dear Alberto," in reader.pages[-1].extract_text()
    assert explicit_zip.headers["content-type"] == "application/zip"


async def test_a_duplex_pdf_starts_each_letter_on_an_odd_page(
    api: httpx.AsyncClient, batch: list[str], api_settings: Settings
) -> None:
    day = today(api_settings).isoformat()
    response = await api.get(f"/v1/letters/batches/{day}", params={"format": "pdf", "duplex": "true"})
    texts = [page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages]
    assert len(texts) % 2 == 0
    starts = [index for index, text in enumerate(texts) if "Page 1 of" in text]
    assert len(starts) == 3
    assert all(index % 2 == 0 for index in starts)


async def test_an_empty_batch_is_not_found_and_a_bad_date_is_invalid(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v1/letters/batches/2020-01-01")
    missing_printed = await api.post("/v1/letters/batches/2020-01-01/printed")
    bad = await api.get("/v1/letters/batches/2020-13-45")
    bad_printed = await api.post("/v1/letters/batches/yesterday/printed")
    bad_format = await api.get("/v1/letters/batches/2020-01-01", params={"format": "docx"})

    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "the batch of 2020-01-01 has no letters"},
    )
    assert (missing_printed.status_code, missing_printed.json()) == (404, missing.json())
    assert (bad.status_code, bad_printed.status_code, bad_format.status_code) == (422, 422, 422)
    assert bad.json()["detail"][0]["loc"] == ["path", "date"]


async def test_marking_a_batch_printed_prints_its_letters_and_their_messages_once(
    api: httpx.AsyncClient,
    batch: list[str],
    api_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    day = today(api_settings).isoformat()
    # A message that already moved past `queued` is not moved back by printing.
    async with sessions.begin() as session:
        await session.execute(update(Message).where(Message.id == batch[2]).values(status="delivered"))

    first = await api.post(f"/v1/letters/batches/{day}/printed")
    second = await api.post(f"/v1/letters/batches/{day}/printed")

    assert (first.status_code, first.json()) == (200, {"date": day, "printed": 3, "letters": 3})
    assert (second.status_code, second.json()) == (200, {"date": day, "printed": 0, "letters": 3})
    messages = (await api.get("/v1/messages", params={"channel": "letter"})).json()["items"]
    assert {item["id"]: item["status"] for item in messages} == {
        batch[0]: "printed",
        batch[1]: "printed",
        batch[2]: "delivered",
    }
    listed = (await api.get("/v1/letters/batches")).json()["items"]
    assert listed == [{"date": day, "letters": 3, "queued": 0, "printed": 3}]
    async with sessions() as session:
        letter = await session.get_one(Letter, batch[0])
    assert letter.printed_at is not None

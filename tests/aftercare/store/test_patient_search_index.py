"""Patient name search can use the trigram index of migration 0013 (`ix_patients_name_trgm`): the plan
of the very statement `search_patients` sends reads that index once scans are ruled out (over a few
thousand patients a scan is cheaper; at 100,000 the planner takes the index by itself, see
`bench/console.py`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from aftercare.store.patient_search import PatientQuery, search_patients

PATIENTS = """
INSERT INTO patients (id, version_id, name, given, family, gender)
SELECT 'p' || n, '1', 'Pat' || n || ' Bench' || (n % 97), 'Pat' || n, 'Bench' || (n % 97), 'female'
FROM generate_series(1, 5000) AS n
"""


async def test_a_name_search_reads_the_trigram_index(
    empty_database: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with empty_database.begin() as connection:
        await connection.execute(text(PATIENTS))
        await connection.execute(text("ANALYZE patients"))
    sent: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(empty_database.sync_engine, "before_cursor_execute", remember)
    try:
        async with sessions() as session:
            page = await search_patients(session, PatientQuery(name="bench42"), phone_region="US", limit=20)
    finally:
        event.remove(empty_database.sync_engine, "before_cursor_execute", remember)
    assert page.patients
    assert all("Bench42" in (patient.name or "") for patient in page.patients)

    statement, parameters = next((s, p) for s, p in sent if "FROM patients" in s)
    async with empty_database.connect() as connection:
        raw = await connection.get_raw_connection()
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        # At this size a scan is cheaper; without scans the plan shows whether the index fits at all.
        await cursor.execute("SET enable_seqscan = off")
        await cursor.execute(f"EXPLAIN {statement}", parameters)
        plan = "\n".join(row[0] for row in await cursor.fetchall())
    assert "ix_patients_name_trgm" in plan, plan

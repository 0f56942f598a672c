"""Segments at scale: each predefined segment evaluated over a million synthetic patients.

    python bench/segments.py                       # 1,000,000 patients on 127.0.0.1:5432
    python bench/segments.py --patients 100000 --server postgresql://postgres@127.0.0.1:5432/postgres

It creates a fresh database, migrates it, generates patients and clinical facts directly in SQL
(`generate_series`: conditions, HbA1c and blood pressure results, encounters, medications,
immunizations, appointments), analyses the tables, then for each predefined segment times its one
query (every member id fetched), writes the member list to a file, and prints a table:
segment, members, evaluation time, write time. The database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

if __package__ in (None, ""):  # run as `python bench/<name>.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aftercare.db.engine import create_engine, normalise_database_url, session_factory
from aftercare.db.migrate import libpq_dsn
from aftercare.segments.evaluate import members
from aftercare.segments.library import segment_library
from bench.population import create_database, drop_database, run_statements

TARGET_SECONDS = 2.0

# Every statement sees :n (the patient count). Facts are spread over patients by modulo arithmetic,
# times over the last months relative to now(), so "relative to now" criteria select real fractions.
GENERATE = [
    """
    INSERT INTO patients (id, version_id, birth_date, gender, language, deceased, address, phone_status)
    SELECT 'p' || n, '1', date '1930-01-01' + (n::bigint * 7919 % 33000)::int,
           CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END,
           CASE WHEN n % 7 = 0 THEN 'es' ELSE 'en-US' END,
           n % 97 = 0,
           jsonb_build_object('postalCode', lpad((n % 99999)::text, 5, '0')),
           'missing'
    FROM generate_series(1, :n) AS n
    """,
    # Conditions: diabetes 1 in 10, hypertension 1 in 4, heart failure 1 in 50, COPD 1 in 60, and a
    # common unrelated one for everybody; a tenth of each is resolved.
    """
    INSERT INTO clinical_conditions (resource_id, patient_id, codes, status)
    SELECT 'c' || kind || '-' || n, 'p' || n, ARRAY[code],
           CASE WHEN n % 10 = 3 THEN 'resolved' ELSE 'active' END
    FROM generate_series(1, :n) AS n,
         (VALUES (1, 10, 'http://snomed.info/sct|44054006'), (2, 4, 'http://snomed.info/sct|59621000'),
                 (3, 50, 'http://snomed.info/sct|88805009'), (4, 60, 'http://snomed.info/sct|185086009'),
                 (5, 1, 'http://snomed.info/sct|444814009')) AS k(kind, every, code)
    WHERE n % every = 0
    """,
    # HbA1c: three results for every diabetic (and one in 20 others), 5.0 to 12.9 %.
    """
    INSERT INTO clinical_observations (resource_id, patient_id, codes, effective_at, value_number, value_unit)
    SELECT 'a1c-' || n || '-' || r, 'p' || n, ARRAY['http://loinc.org|4548-4'],
           now() - make_interval(days => (n % 90) + r * 120), 5.0 + ((n * 31 + r * 17) % 80) / 10.0, '%'
    FROM generate_series(1, :n) AS n, generate_series(0, 2) AS r
    WHERE n % 10 = 0 OR n % 20 = 1
    """,
    # Blood pressure components: two readings for every second patient.
    """
    INSERT INTO clinical_observations (resource_id, patient_id, codes, effective_at, value_number, value_unit)
    SELECT 'bp-' || n || '-' || r || '-' || part, 'p' || n, ARRAY[code],
           now() - make_interval(days => (n % 200) + r * 180),
           CASE WHEN part = 's' THEN 105 + (n * 13 + r) % 60 ELSE 65 + (n * 7 + r) % 35 END, 'mm[Hg]'
    FROM generate_series(1, :n) AS n, generate_series(0, 1) AS r,
         (VALUES ('s', 'http://loinc.org|8480-6'), ('d', 'http://loinc.org|8462-4')) AS c(part, code)
    WHERE n % 2 = 0
    """,
    # Encounters: two ambulatory visits each; an inpatient stay for one in 20, discharged 0-90 days ago.
    """
    INSERT INTO clinical_encounters (resource_id, patient_id, codes, status, class_code, start_at, end_at)
    SELECT 'e' || n || '-' || r, 'p' || n, '{}', 'finished', 'AMB',
           now() - make_interval(days => (n * 3 + r * 50) % 700),
           now() - make_interval(days => (n * 3 + r * 50) % 700)
    FROM generate_series(1, :n) AS n, generate_series(0, 1) AS r
    """,
    """
    INSERT INTO clinical_encounters (resource_id, patient_id, codes, status, class_code, start_at, end_at)
    SELECT 'imp' || n, 'p' || n, '{}', 'finished', 'IMP',
           now() - make_interval(days => n % 90 + 4), now() - make_interval(days => n % 90)
    FROM generate_series(1, :n) AS n
    WHERE n % 20 = 0
    """,
    # Medications: one per patient, authored 0-364 days ago, two thirds active.
    """
    INSERT INTO clinical_medications (resource_id, patient_id, codes, status, intent, authored_at)
    SELECT 'm' || n, 'p' || n, ARRAY['http://www.nlm.nih.gov/research/umls/rxnorm|' || (n % 500)],
           CASE WHEN n % 3 = 0 THEN 'stopped' ELSE 'active' END, 'order',
           now() - make_interval(days => n % 365)
    FROM generate_series(1, :n) AS n
    """,
    # Influenza vaccines: two in three patients, 0-499 days ago.
    """
    INSERT INTO clinical_immunizations (resource_id, patient_id, codes, status, occurred_at)
    SELECT 'i' || n, 'p' || n, ARRAY['http://hl7.org/fhir/sid/cvx|140'], 'completed',
           now() - make_interval(days => n % 500)
    FROM generate_series(1, :n) AS n
    WHERE n % 3 <> 0
    """,
    # Appointments: one in five patients; a quarter of those no-shows in the last 60 days.
    """
    INSERT INTO clinical_appointments (resource_id, patient_id, codes, status, start_at)
    SELECT 'ap' || n, 'p' || n, '{}', CASE WHEN n % 20 = 0 THEN 'noshow' ELSE 'booked' END,
           CASE WHEN n % 20 = 0 THEN now() - make_interval(days => n % 60)
                ELSE now() + make_interval(days => n % 60) END
    FROM generate_series(1, :n) AS n
    WHERE n % 5 = 0
    """,
]


def generate(url: str, patients: int) -> int:
    """Fill the database; returns the number of fact rows written."""
    run_statements(url, GENERATE, {"n": patients})
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM clinical_conditions) + (SELECT count(*) FROM clinical_observations)"
            " + (SELECT count(*) FROM clinical_encounters) + (SELECT count(*) FROM clinical_medications)"
            " + (SELECT count(*) FROM clinical_immunizations) + (SELECT count(*) FROM clinical_appointments)"
        ).fetchone()
    return int(row[0]) if row else 0


async def evaluate(url: str, output: Path, as_of: datetime) -> list[tuple[str, int, float, float]]:
    """Each predefined segment: (key, members, evaluation seconds, write seconds)."""
    engine = create_engine(url, pool_size=1)
    sessions = session_factory(engine)
    results = []
    try:
        for segment in segment_library():
            async with sessions() as session:
                await members(session, segment, as_of)  # warm the cache once
                started = time.perf_counter()
                found = await members(session, segment, as_of)
                evaluated = time.perf_counter() - started
            started = time.perf_counter()
            (output / f"{segment.key}.txt").write_text("\n".join(found) + "\n")
            written = time.perf_counter() - started
            results.append((segment.key, len(found), evaluated, written))
    finally:
        await engine.dispose()
    return results


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--output", type=Path, default=None, help="where member lists go (a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    output = args.output or Path(tempfile.mkdtemp(prefix="segments-"))
    output.mkdir(parents=True, exist_ok=True)

    url = create_database(args.server)
    try:
        print(f"generating {args.patients:,} patients in {normalise_database_url(url).database}")
        started = time.perf_counter()
        facts = generate(url, args.patients)
        print(f"  {facts:,} fact rows in {time.perf_counter() - started:.0f}s (analysed)\n")
        results = asyncio.run(evaluate(url, output, datetime.now(UTC)))
    finally:
        if not args.keep:
            drop_database(args.server, url)

    print(f"{'segment':<28} {'members':>10} {'evaluation':>11} {'write':>8}  target < {TARGET_SECONDS:g}s")
    for key, count, evaluated, written in results:
        verdict = "ok" if evaluated < TARGET_SECONDS else "SLOW"
        print(f"{key:<28} {count:>10,} {evaluated:>10.2f}s {written:>7.2f}s  {verdict}")
    print(f"\nmember lists in {output}")


if __name__ == "__main__":
    main()

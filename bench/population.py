"""What the SQL-generated benchmarks share: a fresh migrated database, facts written with
`generate_series` statements (each timed), the database dropped at the end, and nearest-rank
percentiles. `bench/segments.py` generates clinical facts with it, `bench/analytics.py` messages and
enrollments; patients that go through the product's own ingestion come from `tests/population.py`."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence

import psycopg
from psycopg import sql

from aftercare.db.engine import normalise_database_url
from aftercare.db.migrate import libpq_dsn, upgrade


def create_database(server: str, purpose: str = "segments") -> str:
    """A new, migrated database on the server (`aftercare_bench_<purpose>_<random>`); its SQLAlchemy URL."""
    name = f"aftercare_bench_{purpose}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = normalise_database_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def drop_database(server: str, url: str) -> None:
    """Drop the benchmark database."""
    name = normalise_database_url(url).database or ""
    with psycopg.connect(libpq_dsn(server), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_statements(url: str, statements: Sequence[str], values: dict[str, int]) -> None:
    """Run each generating statement (`:name` replaced by `values[name]`, longest names first), print
    its table, rows and seconds, then analyse the database."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as connection:
        for statement in statements:
            text = statement
            for name in sorted(values, key=len, reverse=True):
                text = text.replace(f":{name}", str(int(values[name])))
            started = time.perf_counter()
            cursor = connection.execute(text)
            table = text.split("INSERT INTO ")[1].split()[0]
            print(f"  {table:<24} {cursor.rowcount:>11,} rows  {time.perf_counter() - started:7.1f}s")
        connection.execute("VACUUM ANALYZE")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]

"""Multi-row inserts whose rows come from arrays: one statement text whatever the number of rows.

SQLAlchemy runs an `INSERT ... RETURNING` given many rows as `INSERT ... VALUES (...), (...), ...`, one
set of parameters a row, so every batch size is another statement: SQLAlchemy expands it on every
execution, psycopg parses its text again each time (it caches no query of more than 50 parameters) and
PostgreSQL plans it afresh. `INSERT ... SELECT * FROM unnest(:a::t[], :b::u[], ...)` takes one array a
column: its text is the same for one row or a thousand, so it is compiled once, cached by psycopg and
prepared on the connection after five runs.

A JSON column travels as one JSON array (a `text[]` of JSON would escape every quote of every value),
taken apart in order by `jsonb_array_elements`. Its values are encoded here, `None` included (as JSON
`null`, what SQLAlchemy's JSON type stores for it), unless the caller passes their texts already
encoded (`parameters(..., encoded=...)`: a resource encoded once for several statements).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, String, Table, TextClause, text
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()


@dataclass(frozen=True)
class ArrayInsert:
    """An `INSERT ... SELECT * FROM unnest(...)` of some columns of a table, with its tail (`ON CONFLICT`,
    `RETURNING`); `parameters` turns rows (mappings holding at least these columns) into its arrays."""

    statement: TextClause
    columns: tuple[str, ...]
    json_columns: frozenset[str]

    def parameters(
        self, rows: Sequence[Mapping[str, Any]], encoded: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """One list a column, in the order of the rows; a JSON column as the text of one JSON array.
        `encoded` gives a JSON column's values as JSON texts already (one a row, in order)."""
        arrays: dict[str, Any] = {}
        for column in self.columns:
            if column in self.json_columns:
                texts = (encoded or {}).get(column)
                if texts is None:
                    texts = [json.dumps(row[column]) for row in rows]
                arrays[column] = "[" + ",".join(texts) + "]"
            else:
                arrays[column] = [row[column] for row in rows]
        return arrays


def array_insert(
    table: Table, columns: Sequence[str], tail: str = "", *, alias: str | None = None
) -> ArrayInsert:
    """The statement inserting `columns` of `table` from one array parameter each (named as the column),
    followed by `tail` (SQL: `ON CONFLICT ...`, `RETURNING ...`); `alias` names the table in the tail."""
    arrays = ", ".join(_array(table, name) for name in columns)
    quote = _DIALECT.identifier_preparer.quote
    target = f"{quote(table.name)} AS {alias}" if alias else quote(table.name)
    names = ", ".join(quote(name) for name in columns)
    sql = f"INSERT INTO {target} ({names}) SELECT * FROM unnest({arrays}) {tail.strip()}"  # noqa: S608 (names only)
    json_columns = frozenset(name for name in columns if _is_json(table, name))
    return ArrayInsert(text(sql), tuple(columns), json_columns)


def _array(table: Table, column: str) -> str:
    if _is_json(table, column):
        elements = f"jsonb_array_elements(CAST(:{column} AS jsonb)) WITH ORDINALITY"
        return f"ARRAY(SELECT value FROM {elements} ORDER BY ordinality)"  # noqa: S608 (a column name only)
    return f"CAST(:{column} AS {_array_type(table, column)})"


def _array_type(table: Table, column: str) -> str:
    type_ = table.c[column].type
    if isinstance(type_, String) and type_.length is not None:
        # An explicit cast to VARCHAR(n) would cut a longer value; the column's own assignment refuses it.
        return "VARCHAR[]"
    return f"{type_.compile(dialect=_DIALECT)}[]"


def _is_json(table: Table, column: str) -> bool:
    type_ = table.c[column].type.dialect_impl(_DIALECT)
    return isinstance(type_, JSON)

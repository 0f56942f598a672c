"""PostgreSQL `INSERT ... ON CONFLICT` statements compiled once instead of on every execution.

SQLAlchemy does not cache the compiled form of the PostgreSQL dialect's `insert()` (its `ON CONFLICT`
clause has no cache key), so every execution compiled it again: a measurable share of the worker's CPU
for each message and step it records. `OnceCompiled` compiles such a statement once per set of
parameter names into a typed textual statement, which SQLAlchemy does cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Executable, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.dml import Insert
from sqlalchemy.sql.dml import ReturningInsert

# Named parameters and no casts in the text: the executing dialect renders its own.
_DIALECT = postgresql.dialect(paramstyle="named")


class OnceCompiled:
    """An insert of the PostgreSQL dialect, compiled once for each set of columns given values.

    Only for tables whose columns have no Python-side defaults (a textual statement cannot fill them
    in): `OnceCompiled.for_values` refuses the others."""

    def __init__(self, statement: Insert | ReturningInsert[Any]) -> None:
        table = statement.table
        defaulted = [column.name for column in getattr(table, "columns", ()) if column.default is not None]
        if defaulted:
            raise ValueError(f"columns with Python-side defaults cannot be compiled once: {defaulted}")
        self._statement = statement
        self._compiled: dict[frozenset[str], Executable] = {}

    def for_values(self, values: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> Executable:
        """The statement for parameters naming these columns (one row's, or the first of many)."""
        row = values if isinstance(values, Mapping) else next(iter(values))
        keys = frozenset(row)
        found = self._compiled.get(keys)
        if found is None:
            found = self._compiled[keys] = self._compile(sorted(keys))
        return found

    def _compile(self, keys: list[str]) -> Executable:
        statement = self._statement
        compiled = statement.compile(dialect=_DIALECT, column_keys=keys)
        columns = statement.table.columns
        binds = [bindparam(name, type_=columns[name].type) for name in compiled.binds]
        # A cast (`:headers::JSONB`) is escaped, or text() would not see the parameter before it.
        clause: TextClause = text(compiled.string.replace("::", r"\:\:")).bindparams(*binds)
        returning = statement._returning  # its RETURNING columns, typed for the result
        return clause.columns(*returning) if returning else clause  # type: ignore[arg-type]

"""`INSERT ... ON CONFLICT` statements built once, whose compiled SQL SQLAlchemy caches.

SQLAlchemy compiles a PostgreSQL `insert()` again on every execution: its `Insert` (the one with
`on_conflict_do_update`) takes no part in the compiled cache. For the statements run on every FHIR
notification that was several compilations a request, half a millisecond of CPU each. A statement
built once as a module constant, whose every value comes from the execution's parameters, compiles to
the same SQL every time: `constant_insert` gives it that SQL as its cache key, so it is compiled once per
engine and set of parameter names, like any cached statement.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.dml import Insert
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.sql.dml import Insert as CoreInsert

_DIALECT = postgresql.dialect()
_Statement = TypeVar("_Statement", bound=CoreInsert)


class ConstantInsert(Insert):
    """A PostgreSQL `Insert` keyed by its SQL; a statement derived from it (`.values()`, `.returning()`)
    has no key again and is compiled as before."""

    inherit_cache = False
    stringify_dialect = "postgresql"

    def _generate_cache_key(self) -> CacheKey | None:
        key: tuple[Any, ...] | None = self.__dict__.get("_constant_key")
        return CacheKey(key, []) if key is not None else None

    def _generate(self) -> ConstantInsert:
        derived = super()._generate()
        derived.__dict__.pop("_constant_key", None)
        return derived


def constant_insert(statement: _Statement) -> _Statement:
    """`statement` (a PostgreSQL `insert()`) as a `ConstantInsert`. Refuses a statement holding literal
    values (`.values(x=1)`): they are not in its SQL, so two such statements would share a key."""
    every_column = [column.key for column in statement.table.columns]
    compiled = statement.compile(dialect=_DIALECT, column_keys=every_column)
    literal = sorted(name for name, bind in compiled.binds.items() if not bind.required)
    if literal:
        raise ValueError(f"a constant insert takes every value from its parameters; literal: {literal}")
    constant = ConstantInsert.__new__(ConstantInsert)
    constant.__dict__ = {**statement.__dict__, "_constant_key": (ConstantInsert.__name__, str(compiled))}
    return cast(_Statement, constant)

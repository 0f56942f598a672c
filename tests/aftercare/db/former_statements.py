"""The store's upsert of current versions and insert of versions as they were before they took arrays
(`aftercare/db/array_rows.py`): SQLAlchemy's multi-row `INSERT ... VALUES ... ON CONFLICT`."""

from __future__ import annotations

from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert

from models.tables import FhirResource, FhirResourceVersion, table_of

CURRENT = table_of(FhirResource)
_VALUES = insert(CURRENT)
UPSERT_CURRENT_VALUES = _VALUES.on_conflict_do_update(
    index_elements=[CURRENT.c.resource_type, CURRENT.c.resource_id],
    set_={
        "version_id": _VALUES.excluded.version_id,
        "content": _VALUES.excluded.content,
        "patient_id": _VALUES.excluded.patient_id,
        "last_updated": _VALUES.excluded.last_updated,
        "updated_at": func.now(),
    },
    where=or_(
        CURRENT.c.last_updated.is_(None),
        _VALUES.excluded.last_updated.is_(None),
        _VALUES.excluded.last_updated >= CURRENT.c.last_updated,
    ),
).returning(CURRENT.c.resource_type, CURRENT.c.resource_id, CURRENT.c.version_id)
_VERSIONS = table_of(FhirResourceVersion)
INSERT_VERSION_VALUES = (
    insert(_VERSIONS)
    .on_conflict_do_nothing()
    .returning(_VERSIONS.c.resource_type, _VERSIONS.c.resource_id, _VERSIONS.c.version_id)
)

"""The small-cell rule's numbers: a count from 1 to 10 is not shown to a caller who may not see patients.

`aftercare/security/minimum_necessary.py` applies the rule; the API schemas that carry counts describe it.
"""

from __future__ import annotations

SMALL_CELL_MAX = 10
SMALL_CELL_SHOWN = f"<{SMALL_CELL_MAX + 1}"
REDACTED_COUNTS = (
    f"counts from 1 to {SMALL_CELL_MAX} left out (null) for a caller without clinical:read: "
    f'"{SMALL_CELL_SHOWN}"'
)

"""The query parameters every analytics table takes to be exported as CSV, and the CSV responses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Query, Response, status

from aftercare.analytics.export import to_csv
from aftercare.security.minimum_necessary import sees_patients
from api.deps import ServicesDep
from api.security import CurrentPrincipal


@dataclass(frozen=True)
class Export:
    """JSON, or CSV with the small-cell threshold to apply (None: every count exact)."""

    csv: bool
    small_cell: int | None

    def response(self, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
        """The table as a CSV download; the file name keeps letters, digits, `.`, `_` and `-` only (it
        may carry a key from the path, and a header takes no control characters)."""
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]
        return Response(
            to_csv(header, rows, self.small_cell),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )


def export_options(
    services: ServicesDep,
    principal: CurrentPrincipal,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: the same table as a download")
    ] = "json",
    small_cells: Annotated[
        Literal["suppress", "show"],
        Query(
            description='CSV: counts under ANALYTICS_SMALL_CELL as "<N" (default), or exact (clinical:read)'
        ),
    ] = "suppress",
) -> Export:
    """How to answer; exact small counts in a CSV need `clinical:read`."""
    if small_cells == "show" and not sees_patients(principal):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "exact small counts need clinical:read")
    threshold = None if small_cells == "show" else services.settings.analytics_small_cell
    return Export(format == "csv", threshold)


ExportDep = Annotated[Export, Depends(export_options)]

"""CSV exports of the analytics tables, with the same numbers as the API and the console, and the
small-cell rule for exports that leave the hospital: a count from 1 up to one less than the threshold
is written as `<threshold` (`ANALYTICS_SMALL_CELL`, 11 by default), and a rate taken of such a count is
left empty, so a small group cannot be worked back out."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence


def suppressed(value: object, small_cell: int | None) -> bool:
    """Whether a cell is a count the rule hides."""
    return (
        small_cell is not None
        and isinstance(value, int)
        and not isinstance(value, bool)
        and 0 < value < small_cell
    )


def cell(value: object, small_cell: int | None) -> object:
    """A value as written: a hidden count as `<threshold`, None as empty."""
    if suppressed(value, small_cell):
        return f"<{small_cell}"
    return "" if value is None else value


def rate_cell(rate: float | None, part: int, whole: int, small_cell: int | None) -> object:
    """A rate, empty when it is undefined or taken of a hidden count."""
    if rate is None or suppressed(part, small_cell) or suppressed(whole, small_cell):
        return ""
    return round(rate, 6)


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]], small_cell: int | None) -> str:
    """The table as CSV text (header first); counts in `rows` are hidden by the rule when
    `small_cell` is set (rates must already be `rate_cell`s)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value, small_cell) for value in row])
    return buffer.getvalue()

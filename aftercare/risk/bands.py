"""Risk bands: a score's value read as low, moderate or high, by configurable lower bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BANDS = ("low", "moderate", "high")


@dataclass(frozen=True)
class Bands:
    """The lowest value of the moderate and of the high band."""

    moderate: int
    high: int

    def band(self, value: int) -> str:
        """`low`, `moderate` or `high`."""
        if value >= self.high:
            return "high"
        return "moderate" if value >= self.moderate else "low"


# LACE (van Walraven et al. 2010): 0-4 low, 5-9 moderate, 10 and more high.
DEFAULT_BANDS: Mapping[str, Bands] = {
    "lace": Bands(moderate=5, high=10),
    "hospital": Bands(moderate=5, high=7),
}


def parse_bands(text: str) -> dict[str, Bands]:
    """`lace:5:10,hospital:5:7` → bands per score, over the defaults; ValueError when malformed."""
    bands = dict(DEFAULT_BANDS)
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, moderate, high = part.split(":")
        if not 0 <= int(moderate) <= int(high):
            raise ValueError(f"risk bands {part!r}: moderate must not be above high")
        bands[name.strip()] = Bands(moderate=int(moderate), high=int(high))
    return bands

"""Time zone names from outside (a query string, a FHIR extension): known IANA zones only."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def known_zone(name: str) -> bool:
    """True when `name` is an IANA zone this machine knows; False for anything else, however odd (an
    unknown name, a path, a name too long for the file system)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True

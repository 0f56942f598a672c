"""Time zone names, from outside (a query string, a FHIR extension, a template, a request body) or from
settings: every name is parsed here, so a name that is not a zone is one `ValueError` (a 400 or 422 to
an API caller, a template that cannot render), never an `OSError` or `KeyError` from `zoneinfo`."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class UnknownZone(ValueError):
    """A name that is not an IANA time zone this machine knows."""


def zone_info(name: str) -> ZoneInfo:
    """The named IANA zone; `UnknownZone` for anything else, however odd (an unknown name, a path, a
    name too long for the file system)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(f"{name[:64]!r} is not an IANA time zone") from None


def known_zone(name: str) -> bool:
    """True when `name` is an IANA zone this machine knows; False for anything else."""
    try:
        zone_info(name)
    except UnknownZone:
        return False
    return True

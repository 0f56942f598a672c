"""Every time zone name is parsed by `models/zones.py`: a name that is not a zone, however odd, is a
`ValueError` (a 400 or 422 to an API caller, a template that cannot render), never an `OSError` or a
`KeyError` from `zoneinfo` (a 500)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aftercare.templating import TemplateRenderError, render
from models.zones import UnknownZone, known_zone, zone_info

ROOT = Path(__file__).resolve().parents[2]
ODD = ["Mars/Olympus", "Europe/" + "x" * 300, "../etc/passwd", "/etc/localtime", "Europe/", "", "UTC\x00"]


@pytest.mark.parametrize("name", ODD)
def test_a_name_that_is_not_a_zone_is_one_value_error(name: str) -> None:
    assert not known_zone(name)
    with pytest.raises(UnknownZone) as raised:
        zone_info(name)
    assert isinstance(raised.value, ValueError)


def test_a_zone_is_a_zone() -> None:
    assert known_zone("America/Chicago")
    assert str(zone_info("Europe/Paris")) == "Europe/Paris"


@pytest.mark.parametrize("name", ODD[:3])
def test_a_template_with_an_odd_zone_cannot_render_rather_than_fail(name: str) -> None:
    with pytest.raises(TemplateRenderError, match="not an IANA time zone"):
        render("{{ at | datetime(tz=zone) }}", {"at": "2026-01-01T10:00:00Z", "zone": name})


def test_no_module_parses_a_zone_name_itself() -> None:
    parsing = re.compile(r"\bZoneInfo\(")
    stragglers = [
        str(path.relative_to(ROOT))
        for folder in ("aftercare", "activities", "api", "console", "models", "patient_pages", "workflows")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "models" / "zones.py" and parsing.search(path.read_text())
    ]
    assert stragglers == []

"""The translation catalogue of what patients read of Aftercare itself (page texts, the email footer).

One JSON file per language in this folder; English is complete and the fallback."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from models.template import locale_candidates

_HERE = Path(__file__).parent
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}


@cache
def _catalogue(language: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((_HERE / f"{language}.json").read_text(encoding="utf-8"))
    return loaded


def language_of(locale: str | None) -> str:
    """The catalogue language for a patient's language or a message's locale (`es-MX` → `es`)."""
    return next((c for c in locale_candidates(locale) if c in LANGUAGES), "en")


def translate(language: str, key: str, **values: str) -> str:
    """The text of `key` in `language` (English when the language lacks it), with `{name}`s filled."""
    text = _catalogue(language_of(language)).get(key) or _catalogue("en")[key]
    return text.format(**values) if values else text

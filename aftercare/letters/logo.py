"""A facility's letterhead logo, from its `letter.logo_url`: a `data:` URL (base64) or an `https:` URL
fetched once per worker. A logo that cannot be read leaves the letter without one (it still goes)."""

from __future__ import annotations

import base64
import binascii
import logging

import httpx

log = logging.getLogger(__name__)

MAX_LOGO_BYTES = 2_000_000
FETCH_TIMEOUT_SECONDS = 5.0


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a base64 `data:` URL (None for anything else)."""
    header, _, data = url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


class LogoCache:
    """Logos by URL, each read once per process."""

    def __init__(self) -> None:
        self._logos: dict[str, bytes | None] = {}

    async def logo(self, url: str | None) -> bytes | None:
        """The logo's bytes, or None when there is none or it cannot be read."""
        if not url:
            return None
        if url not in self._logos:
            self._logos[url] = decode_data_url(url) if url.startswith("data:") else await self._fetch(url)
        return self._logos[url]

    async def _fetch(self, url: str) -> bytes | None:
        if not url.startswith("https://"):
            return None
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as client:
                answer = await client.get(url)
        except httpx.HTTPError as error:
            log.warning("letterhead logo not fetched: %s", type(error).__name__)
            return None
        if answer.status_code != 200 or len(answer.content) > MAX_LOGO_BYTES:
            log.warning(
                "letterhead logo not used: status %s, %d bytes", answer.status_code, len(answer.content)
            )
            return None
        return answer.content

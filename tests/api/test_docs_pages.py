"""The documentation pages render in a browser cut off from the internet: Swagger UI at `/docs` and ReDoc
at `/redoc` load everything from the API itself (pinned copies in `api/static/vendor`), under a CSP that
allows nothing else."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page
from starlette.staticfiles import StaticFiles

from aftercare.settings import Settings
from api.app import _refuse_routes_without_rules, create_app
from api.docs import STATIC_DIRECTORY
from tests.browser import axe_violations, chromium, offline_except
from tests.serving import serving


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def api_url(api_settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(api_settings)) as url:
        yield url


async def operation_tags(api_url: str) -> dict[str, int]:
    """Each tag of the OpenAPI document and how many operations carry it."""
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"{api_url}/openapi.json")).json()
    tags: dict[str, int] = {}
    for operations in document["paths"].values():
        for operation in operations.values():
            for tag in operation.get("tags", []):
                tags[tag] = tags.get(tag, 0) + 1
    return tags


async def operation_count(api_url: str) -> int:
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"{api_url}/openapi.json")).json()
    return sum(len(operations) for operations in document["paths"].values())


async def open_offline(browser: Browser, api_url: str, path: str) -> tuple[Page, list[str], list[str]]:
    """The page, opened with every other origin cut off; the requests refused and the console's errors."""
    page = await browser.new_page()
    refused = await offline_except(page, api_url)
    problems: list[str] = []
    page.on("console", lambda message: _note_error(message, problems))
    await page.goto(f"{api_url}{path}")
    return page, refused, problems


async def test_swagger_ui_lists_every_tag_and_opens_a_tags_operations_offline(
    browser: Browser, api_url: str
) -> None:
    page, refused, problems = await open_offline(browser, api_url, "/docs")
    tags = await operation_tags(api_url)
    await page.locator(".opblock-tag").nth(len(tags) - 1).wait_for(timeout=60_000)

    assert await page.locator(".opblock-tag").count() == len(tags)
    await page.locator(".opblock-tag", has_text="fhir").first.click()
    fhir = page.locator(".opblock-summary-path", has_text="/v1/fhir/notifications")
    await fhir.first.wait_for(timeout=30_000)
    assert await page.locator(".opblock").count() == tags["fhir"]
    assert refused == []
    assert problems == []
    assert await axe_violations(page) == []


async def test_redoc_renders_the_operations_offline(browser: Browser, api_url: str) -> None:
    page, refused, problems = await open_offline(browser, api_url, "/redoc")
    operations = page.locator("[data-section-id^='operation/']")
    await operations.first.wait_for(timeout=30_000)

    assert await operations.count() == await operation_count(api_url)
    assert "Receive Notification" in await page.locator("h2").all_inner_texts()
    assert refused == []
    assert problems == []
    assert await axe_violations(page) == []


def test_static_files_are_served_only_where_the_rules_allow(settings: Settings) -> None:
    app = create_app(settings)
    app.mount("/files", StaticFiles(directory=STATIC_DIRECTORY))

    with pytest.raises(RuntimeError, match="/files"):
        _refuse_routes_without_rules(app)


def test_the_vendored_files_are_the_ones_recorded() -> None:
    vendor = STATIC_DIRECTORY / "vendor"
    recorded = re.findall(r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", (vendor / "README.md").read_text())
    assert len(recorded) >= 3
    for name, digest in recorded:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert (vendor / "swagger-ui" / "LICENSE").exists()
    assert (vendor / "redoc" / "LICENSE").exists()


# ReDoc always shows Redocly's logo from its CDN in the menu's footer; the page's CSP blocks it (ReDoc then
# hides the image), and that is the one outside reference either page makes.
REDOC_ATTRIBUTION_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _note_error(message: ConsoleMessage, problems: list[str]) -> None:
    blocked_logo = REDOC_ATTRIBUTION_LOGO in message.text and "Content Security Policy" in message.text
    if message.type == "error" and not blocked_logo:
        problems.append(message.text)

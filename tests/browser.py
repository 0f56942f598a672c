"""A headless browser for page tests: Playwright driving Debian's `chromium` (`make test` installs it;
Playwright's own browser download is not used)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, Route, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's chromium, headless."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def offline_except(page: Page, origin: str) -> list[str]:
    """Cut the page off from every origin but `origin`: other requests are aborted, and listed in the
    list returned (filled as the page loads)."""
    refused: list[str] = []

    async def only_origin(route: Route) -> None:
        url = route.request.url
        if url == origin or url.startswith(f"{origin}/"):
            await route.continue_()
        else:
            refused.append(url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_origin)
    return refused


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


async def axe_violations(page: Page) -> list[str]:
    """The serious and critical accessibility violations axe-core finds on the page. axe is evaluated
    through the DevTools protocol, which the page's content security policy does not govern."""
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in result
        if violation["impact"] in ("serious", "critical")
    ]

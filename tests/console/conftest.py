"""The console in a real browser: Debian's Chromium driven by Playwright, against a crmd
serving on a real port with every actor running (the dummy vendor calls it back).

Every page a test opens fails the test on a browser console error or an uncaught page
error, and each test leaves a screenshot of each page it looked at in ``screenshots/``
(see docs/development.md)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from crmd.app import Crmd
from crmd.config import Config
from crmd.services.embedded import Urls
from tests.conftest import REPO, make_test_config

CHROMIUM = os.environ.get("CRMD_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "screenshots"


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """Receipts soon, and some failures, so that figures move while a page watches."""
    return {"delay_min": 0.2, "delay_max": 1.0, "seed": 11, "failure_rate": 0.3}


@pytest.fixture
def config(services: Urls, port: int, vendor_settings: dict[str, Any]) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={"dummy_vendor": vendor_settings},
        campaigns={"clock_interval_seconds": 1},
    )


@pytest.fixture
async def served(client: Any, system: Crmd) -> AsyncIterator[str]:
    """crmd's base address, with every actor running behind it."""
    supervisor = system.start(("ingest", "dispatch", "receipts", "clock"))
    assert await supervisor.wait_healthy(10)
    yield str(client.make_url("")).rstrip("/")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"the console tests need Chromium at {CHROMIUM}: `make test` installs it "
            "(apt-get install chromium), or set CRMD_TEST_CHROMIUM"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        await launched.close()


@dataclass
class Watched:
    """A browser page whose console errors and page errors are collected."""

    page: Page
    base: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    shots: int = 0
    allowed: list[str] = field(default_factory=list)
    """Console errors a test expects (a regular expression each)."""

    async def shot(self, name: str) -> Path:
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{name}.png"
        try:
            await self.page.screenshot(
                path=str(path), full_page=True, animations="disabled", timeout=15_000
            )
        except PlaywrightTimeoutError:
            # A live page (a campaign sending, its figures updating) can keep Chromium
            # from settling a full-page capture (it hung for 30 s once, from a fresh
            # clone): the viewport is kept instead.
            await self.page.screenshot(path=str(path), animations="disabled")
        return path

    async def go(self, path: str) -> None:
        await self.page.goto(self.base + path)

    async def nav(self, name: str) -> None:
        """Follow the main navigation's link of that name."""
        await (
            self.page.get_by_role("navigation", name="Main")
            .get_by_role("link", name=name, exact=True)
            .click()
        )
        await self.page.wait_for_load_state()

    async def sign_in(self, email: str) -> None:
        await self.go("/")
        await self.page.get_by_label("Email", exact=True).fill(email)
        await self.page.get_by_role("button", name="Sign in", exact=True).click()
        await self.page.wait_for_url(self.base + "/")

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(re.search(a, p) for a in self.allowed)]


def folder_for(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    folder = SHOTS / request.node.module.__name__.rsplit(".", 1)[-1] / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


async def watched(browser: Browser, base: str, folder: Path, **options: Any) -> Watched:
    context = await browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
    page = await context.new_page()
    seen = Watched(page, base, folder)
    page.on("pageerror", lambda error: seen.problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and seen.problems.append(f"console error on {page.url}: {message.text}")
        ),
    )
    return seen


@pytest.fixture
async def page(
    browser: Browser, served: str, request: pytest.FixtureRequest
) -> AsyncIterator[Watched]:
    """A fresh browser context (no cookies) on the console; fails the test on any
    console or page error it saw."""
    seen = await watched(browser, served, folder_for(request))
    yield seen
    await seen.shot("last")
    await seen.page.context.close()
    assert not seen.unexpected(), seen.unexpected()


@pytest.fixture
async def second_page(
    browser: Browser, served: str, request: pytest.FixtureRequest
) -> AsyncIterator[Watched]:
    """Another person's browser, on the same console."""
    seen = await watched(browser, served, folder_for(request) / "second")
    seen.folder.mkdir(exist_ok=True)
    yield seen
    await seen.shot("last")
    await seen.page.context.close()
    assert not seen.unexpected(), seen.unexpected()

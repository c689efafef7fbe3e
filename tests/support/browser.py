"""A real browser for layout checks: the system's Chromium driven by Playwright.

Playwright measures what a screenshot cannot tell (does the page scroll sideways? does a
form submit without JavaScript?). It drives the Debian `chromium` the other browser checks
use (tests/support/tools.py: skipped with the reason when missing), never a downloaded one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.support.tools import require_tool

__all__ = ["PHONE", "WIDTHS", "chromium", "layout_overflow", "shoot", "viewport"]

PHONE: Final = (390, 844)  # an iPhone 12-15 viewport, CSS pixels
DESKTOP: Final = (1280, 900)
WIDTHS: Final = {"phone": PHONE, "desktop": DESKTOP}


def viewport(name: str) -> ViewportSize:
    """The viewport of WIDTHS[name]."""
    width, height = WIDTHS[name]
    return {"width": width, "height": height}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium (the system's), closed afterwards."""
    executable = require_tool("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def layout_overflow(page: Page) -> list[str]:
    """What sticks out of the viewport sideways: the page's own horizontal scroll, and every
    element whose right edge passes the viewport's (inside a box that scrolls on its own is
    fine: `.scroll`). Empty when nothing clips."""
    found: list[str] = await page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          const scroll = document.documentElement.scrollWidth;
          if (scroll > width) out.push("page scrolls sideways: " + scroll + " > " + width);
          for (const el of document.body.querySelectorAll("*")) {
            if (el.closest(".scroll")) continue;
            const box = el.getBoundingClientRect();
            if (box.width && box.right > width + 0.5) {
              out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                       (el.className ? "." + el.className : "") + " ends at " + box.right);
            }
          }
          return out;
        }"""
    )
    return found


async def shoot(page: Page, path: Path) -> bytes:
    """A full-page PNG screenshot, written to `path` too (to look at)."""
    return await page.screenshot(path=str(path), full_page=True)

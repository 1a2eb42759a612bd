"""The web client in headless Chromium keeps its session through the HttpOnly refresh cookie:
across a reload without a stored access token (a new tab), and the account dialog lists the
session. Skipped where Playwright or Chromium is not installed."""
from __future__ import annotations

import os
import shutil

import pytest

from helpers import PASSWORD, register

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium")


async def test_reload_without_a_token_resumes_through_the_cookie(suite, http):
    user = await register(http, suite.url)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(suite.url + "/")
            await page.fill("#login-username", user["username"])
            await page.fill("#login-password", PASSWORD)
            await page.press("#login-password", "Enter")
            await page.wait_for_selector("#app-view:not([hidden])", timeout=15000)
            assert "parley_refresh" not in await page.evaluate("document.cookie")  # HttpOnly
            # Drop the access token (as a new tab has none) and reload: the cookie resumes.
            await page.evaluate("sessionStorage.clear(); localStorage.clear()")
            await page.reload()
            await page.wait_for_selector("#app-view:not([hidden])", timeout=15000)
            assert await page.evaluate("sessionStorage.getItem('parley.token')")
            await page.click("#account-btn")
            await page.wait_for_selector("#sessions-list li", timeout=10000)
            assert "this session" in await page.inner_text("#sessions-list")
        finally:
            await browser.close()

"""The web client in headless Chromium keeps its session through the HttpOnly refresh cookie:
across a reload without a stored access token (a new tab), across several token lifetimes
(the socket stays online, REST calls keep working), and the account dialog lists the
session. Skipped where Playwright or Chromium is not installed."""
from __future__ import annotations

import pytest

from browser_env import find_chromium, why_no_browser
from helpers import PASSWORD, register, short_token_suite

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=str(why_no_browser()))


async def log_in(page, base: str, username: str, shown: str) -> None:
    """Logs in through the web client's form; waits for ``shown`` (a selector)."""
    await page.goto(base + "/")
    await page.fill("#login-username", username)
    await page.fill("#login-password", PASSWORD)
    await page.press("#login-password", "Enter")
    await page.wait_for_selector(shown, timeout=15000)


async def test_reload_without_a_token_resumes_through_the_cookie(suite, http):
    user = await register(http, suite.url)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await log_in(page, suite.url, user["username"], "#app-view:not([hidden])")
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


short_lived = short_token_suite("webshort", 8)


async def test_the_session_outlives_many_token_lifetimes_and_a_closed_tab(short_lived, http):
    import asyncio

    user = await register(http, short_lived)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await log_in(page, short_lived, user["username"], "#conn-status[data-state=online]")
            first = await page.evaluate("sessionStorage.getItem('parley.token')")
            await asyncio.sleep(20)  # two and a half token lifetimes
            assert await page.get_attribute("#conn-status", "data-state") == "online"
            assert await page.is_visible("#app-view")
            current = await page.evaluate("sessionStorage.getItem('parley.token')")
            assert current != first  # renewed through the cookie
            status = await page.evaluate(
                "fetch('/api/v1/users/me', {headers: {Authorization: 'Bearer ' + "
                "sessionStorage.getItem('parley.token')}}).then(r => r.status)")
            assert status == 200
            await page.close()
            await asyncio.sleep(9)  # every access token of that tab has expired by now
            again = await context.new_page()  # a new tab: no token of its own, same cookie
            await again.goto(short_lived + "/")
            await again.wait_for_selector("#conn-status[data-state=online]", timeout=15000)
        finally:
            await browser.close()

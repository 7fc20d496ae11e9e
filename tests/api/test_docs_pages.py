"""/docs and /redoc as a user sees them, in Debian's headless chromium, with the network cut off at the
host: both pages render every operation from the assets the package ships. The app is served alone
(`alone`: no Temporal, which the pages do not need)."""

import os
import shutil
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

CHROMIUM = os.environ.get("SIGNOFF_TEST_CHROMIUM", "/usr/bin/chromium")
LOCAL = {"127.0.0.1"}
LOCAL_SCHEMES = {"data", "blob"}  # made in the page, nothing fetched


@pytest_asyncio.fixture
async def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a failure, not a skip
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # Debian's chromium, never a browser build downloaded by Playwright.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


class OfflinePage:
    """A page whose requests beyond the host are refused, and noted, with what failed in it."""

    def __init__(self, page):
        self.page = page
        self.left_host: list[str] = []
        self.refused_by_policy: list[str] = []  # by the page's Content-Security-Policy, before any request
        self.failed: list[str] = []
        self.errors: list[str] = []

    async def setup(self) -> "OfflinePage":
        async def only_local(route) -> None:
            url = urlsplit(route.request.url)
            if url.scheme in LOCAL_SCHEMES or url.hostname in LOCAL:
                await route.continue_()
            else:
                self.left_host.append(route.request.url)
                await route.abort("internetdisconnected")

        await self.page.route("**/*", only_local)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", lambda response: response.status >= 400 and self.failed.append(
            f"{response.status} {response.url}"))
        return self

    def _failed(self, request) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):  # as chromium names it
            self.refused_by_policy.append(request.url)
        else:
            self.failed.append(f"{request.failure} {request.url}")


async def operations(base_url: str) -> list[tuple[str, str, str]]:
    """(method, path, operation id) of every operation in /openapi.json."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        spec = (await http.get("/openapi.json")).json()
    return [(method.upper(), path, op["operationId"]) for path, item in spec["paths"].items()
            for method, op in item.items()]


async def test_swagger_ui_renders_every_operation_offline(alone, browser):
    expected = await operations(alone)
    assert ("POST", "/api/deliverables") in {(m, p) for m, p, _ in expected}
    offline = await OfflinePage(await browser.new_page()).setup()
    await offline.page.goto(f"{alone}/docs")

    submit = offline.page.locator(".opblock-post", has=offline.page.locator(
        '.opblock-summary-path[data-path="/api/deliverables"]'))
    await submit.wait_for(state="visible", timeout=30_000)
    rendered = offline.page.locator(".opblock-summary")
    methods_paths = [(await block.locator(".opblock-summary-method").inner_text(),
                      await block.locator(".opblock-summary-path").get_attribute("data-path"))
                     for block in await rendered.all()]
    assert sorted(methods_paths) == sorted((m, p) for m, p, _ in expected)
    assert (offline.left_host, offline.refused_by_policy, offline.failed, offline.errors) == ([], [], [], [])


async def test_redoc_renders_every_operation_offline(alone, browser):
    expected = await operations(alone)
    offline = await OfflinePage(await browser.new_page()).setup()
    await offline.page.goto(f"{alone}/redoc")

    for method, path, operation_id in expected:
        section = offline.page.locator(f'[id="operation/{operation_id}"]')
        await section.wait_for(state="attached", timeout=30_000)
        # The request line, as ReDoc shows it beside the operation: the verb, then the path.
        endpoint = section.locator(f".http-verb.{method.lower()}")
        assert await endpoint.count() >= 1, (method, path)
        assert path in await section.inner_text()
    submit = next(op for m, p, op in expected if (m, p) == ("POST", "/api/deliverables"))
    await offline.page.locator(f'[id="operation/{submit}"] h2').scroll_into_view_if_needed()
    assert await offline.page.locator(f'[id="operation/{submit}"] h2').is_visible()
    # ReDoc's sidebar asks for Redocly's logo on their CDN; the page's policy refuses it before it leaves.
    assert offline.refused_by_policy in ([], ["https://cdn.redoc.ly/redoc/logo-mini.svg"])
    assert (offline.left_host, offline.failed, offline.errors) == ([], [], [])


async def test_the_assets_come_from_the_package(alone):
    async with httpx.AsyncClient(base_url=alone) as http:
        for page in ("/docs", "/redoc"):
            r = await http.get(page)
            assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
            assert "http://" not in r.text and "https://" not in r.text, r.text
        r = await http.get("/docs-assets/swagger-ui-bundle.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")

"""The interactive API documentation (/docs, Swagger UI) and the reference (/redoc, ReDoc), served
with their scripts from the package (api/docs_assets/), so both pages load with no network."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).with_name("docs_assets")
ASSETS_URL = "/docs-assets"
# Nothing on these pages may reach beyond this host: ReDoc's sidebar footer, for one, loads Redocly's
# logo from their CDN, which the browser now refuses. Both pages start from an inline script and
# style with inline styles; ReDoc's search runs in a worker made from a blob.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; worker-src 'self' blob:; font-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'self'; base-uri 'self'; form-action 'self'")


def install(app: FastAPI) -> None:
    """Mount the vendored assets and the two pages; the app is built with docs_url=redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title, openapi_url = app.title, app.openapi_url or "/openapi.json"
    favicon = f"{ASSETS_URL}/favicon-32x32.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _local_only(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - Swagger UI", swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _local_only(get_redoc_html(
            openapi_url=openapi_url, title=f"{title} - ReDoc", redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=favicon, with_google_fonts=False))


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page

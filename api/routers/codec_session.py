"""A cookie session for the codec endpoint, for the Temporal Web UI.

The UI cannot send a Signoff token (it forwards only its own OIDC token), but with "include
cross-origin credentials" it sends cookies, and a UI on another port of the same host, or another
subdomain of the same registrable domain, is same-site. So an operator pastes an admin token once
into the page at GET /api/codec/session; the cookie then holds that very token, so the token's
expiry and a rotated JWT secret end the session as they end the token. HttpOnly (no script reads
it), SameSite=Strict (no other site's page sends it), Path=/api/codec (no other route sees it).
"""

import html
from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import parse_qs

import jwt
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from api.auth import Principal
from api.deps import Services, Svc, bearer, get_principal, principal_of
from api.problems import Problem
from config.settings import Settings

PREFIX = "/api/codec"
COOKIE = "signoff_codec"
PAGE = f"{PREFIX}/session"
# The page runs no script and may only post to itself; no other site may frame it.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                           "frame-ancestors 'none'", "Cache-Control": "no-store"}
REFUSALS = {401: {"description": "Not a valid Signoff token (problem+json)."},
            403: {"description": "A valid token without the admin role (problem+json)."}}

session_cookie = APIKeyCookie(name=COOKIE, auto_error=False,
                              description="The admin token the codec session page stored, for the Web UI.")


def allowed_origins(settings: Settings) -> set[str]:
    return {o.strip().rstrip("/") for o in settings.codec_cors_origins.split(",") if o.strip()}


def require_admin(user: Principal) -> None:
    if "admin" not in user.roles:
        raise Problem(403, "only admin may use the codec endpoint", "forbidden")


async def admin_of(services: Services, token: str) -> Principal:
    """The token read exactly as a bearer header is, and then required to be an admin's."""
    user = principal_of(services.settings, token)
    require_admin(user)
    return user


async def codec_admin(request: Request, services: Svc,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                      session: Annotated[str | None, Depends(session_cookie)]) -> Principal:
    """The caller of encode/decode: the bearer header if there is one (it wins), else the cookie.
    The cookie counts only from the Web UI origins: a browser sends it with any same-site page's
    request, and only the UI should have payloads decoded by it."""
    if "authorization" in request.headers or not session:
        user = await get_principal(request, services, credentials)
        require_admin(user)
        return user
    if request.headers.get("origin") not in allowed_origins(services.settings):
        raise Problem(403, "the codec session cookie is accepted only from the Web UI origins in "
                           "SIGNOFF_CODEC_CORS_ORIGINS", "forbidden")
    return await admin_of(services, session)


CodecAdmin = Annotated[Principal, Depends(codec_admin)]
router = APIRouter(prefix=PREFIX, tags=["codec"])


@router.get("/session", response_class=HTMLResponse)
async def session_page(services: Svc, session: Annotated[str | None, Depends(session_cookie)]) -> HTMLResponse:
    """A form where an operator pastes a Signoff admin token, so the Web UI can decode payloads."""
    status = "<p>No codec session in this browser.</p>"
    if session:
        try:
            user = await admin_of(services, session)
            until = datetime.fromtimestamp(expiry_of(session), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            status = (f"<p>Signed in as <b>{html.escape(user.user)}</b> until {until}.</p>"
                      f'<form method="post" action="{PAGE}/logout"><button>Sign out (logout)</button></form>')
        except Problem as exc:
            status = f"<p>The stored token no longer counts: {html.escape(exc.detail)}</p>"
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signoff codec session</title>
<style>body{{font:16px system-ui,sans-serif;max-width:40em;margin:2em auto}}textarea{{width:100%}}</style></head>
<body><h1>Codec session for the Temporal Web UI</h1>{status}
<p>Paste a Signoff admin token (<code>signoff token ops --role admin --ttl-minutes 60</code>). This
browser keeps it as a cookie for <code>{PREFIX}</code> until the token expires; turn on
"Include cross-origin credentials" in the Web UI's codec server settings.</p>
<form method="post" action="{PAGE}"><textarea name="token" rows="6" required autocomplete="off"></textarea>
<p><button>Sign in</button></p></form></body></html>""", headers=PAGE_HEADERS)


@router.post("/session", status_code=303, response_class=RedirectResponse,
             responses={**REFUSALS, 422: {"description": "No `token` form field (problem+json)."}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
                 "schema": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}}}}})
async def sign_in(request: Request, services: Svc) -> Response:
    """Store an admin token as the codec session cookie, then back to the page (303). A refused
    token sets nothing and answers problem+json like every other refusal of the API."""
    # A form post: parsed here rather than with Form(), which would need python-multipart.
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (fields.get("token") or [""])[0].strip().removeprefix("Bearer ").strip()
    if not token:
        raise Problem(422, "token: a Signoff admin token is required", "validation-error")
    await admin_of(services, token)
    max_age = int(expiry_of(token) - datetime.now(timezone.utc).timestamp())
    response = RedirectResponse(PAGE, status_code=303, headers={"Cache-Control": "no-store"})
    # Secure when the request came over TLS, which behind a proxy uvicorn learns from X-Forwarded-Proto
    # if the proxy is trusted (FORWARDED_ALLOW_IPS; loopback by default).
    response.set_cookie(COOKIE, token, max_age=max(max_age, 1), path=PREFIX, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/session/logout", status_code=303, response_class=RedirectResponse)
async def sign_out(request: Request) -> Response:
    """Drop the codec session cookie in this browser (the token itself stays valid until it expires)."""
    response = RedirectResponse(PAGE, status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def expiry_of(token: str) -> float:
    """`exp` of a token that has already been verified."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])

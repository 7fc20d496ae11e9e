"""The codec endpoint of Temporal's codec-server protocol: admins round-trip payloads through it,
everyone else is refused, browsers only from the Web UI origin; no key, no endpoint."""

import base64
import os
from datetime import timedelta
from http.cookies import SimpleCookie

from temporalio.contrib.pydantic import pydantic_data_converter

from api.auth import mint_token
from tests.api.conftest import serve_api

UI = "http://temporal-ui.example:8233"


def as_json(payloads) -> dict:
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                          "data": base64.b64encode(p.data).decode()} for p in payloads]}


async def test_admins_round_trip_payloads_and_others_are_refused(temporal_env, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    async with serve_api(temporal_env, tmp_path, with_worker=False, payload_key=key, codec_cors_origins=UI) as api:
        plain = await pydantic_data_converter.encode([{"title": "Homepage mockups", "comment": "budget 4711"}])
        body = as_json(plain)
        admin = {**api.auth("ops", "admin"), "Origin": UI, "X-Namespace": "default"}

        r = await api.http.post("/api/codec/encode", json=body, headers=admin)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == UI, r.text
        [sealed] = r.json()["payloads"]
        assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
        assert b"4711" not in base64.b64decode(sealed["data"])

        r = await api.http.post("/api/codec/decode", json=r.json(), headers=admin)
        assert r.status_code == 200 and r.json() == body

        for headers, status in (({}, 401), ({"Authorization": "Bearer nonsense"}, 401),
                                (api.auth("paula", "pmo"), 403), (api.auth("alice"), 403)):
            for operation in ("decode", "encode"):
                r = await api.http.post(f"/api/codec/{operation}", json={"payloads": [sealed]}, headers=headers)
                assert r.status_code == status and "4711" not in r.text, (headers, r.text)
                assert r.headers["content-type"] == "application/problem+json"

        r = await api.http.post("/api/codec/decode", content=b"{not json", headers=admin)
        assert r.status_code == 422
        tampered = {**sealed, "data": base64.b64encode(base64.b64decode(sealed["data"])[:-1] + b"\0").decode()}
        r = await api.http.post("/api/codec/decode", json={"payloads": [tampered]}, headers=admin)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"

        asked = {"Origin": UI, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
        r = await api.http.options("/api/codec/decode", headers=asked)
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == UI
        assert "authorization" in r.headers["access-control-allow-headers"]
        r = await api.http.options("/api/codec/decode", headers={**asked, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        r = await api.http.post("/api/codec/decode", json={"payloads": [sealed]},
                                headers={**admin, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


async def test_without_a_key_there_is_no_codec_endpoint(api):
    r = await api.http.post("/api/codec/decode", json={"payloads": []}, headers=api.auth("ops", "admin"))
    assert r.status_code == 404
    assert "/api/codec/decode" not in (await api.http.get("/openapi.json")).text


# The Web UI sends no Signoff token, but with "include cross-origin credentials" it sends the cookie
# that the session page sets; it calls from its own origin, as the dev server's UI does here.
WEB_UI = "http://127.0.0.1:8233"
COOKIE = "signoff_codec"


def set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def sign_in(api, token: str, **headers: str):
    r = await api.http.post("/api/codec/session", data={"token": token}, headers=headers)
    api.http.cookies.clear()  # each request below names the cookie it sends, as a browser would
    return r


async def sealed_payloads(api) -> tuple[dict, dict]:
    plain = as_json(await pydantic_data_converter.encode([{"title": "Homepage mockups", "comment": "budget 4711"}]))
    r = await api.http.post("/api/codec/encode", json=plain, headers=api.auth("ops", "admin"))
    assert r.status_code == 200, r.text
    return plain, r.json()


async def test_the_session_form_sets_the_cookie_only_for_an_admin_token(temporal_env, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    async with serve_api(temporal_env, tmp_path, with_worker=False, payload_key=key) as api:
        r = await api.http.get("/api/codec/session")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
        assert '<form method="post"' in r.text and 'name="token"' in r.text and "<script" not in r.text

        secret = api.settings.jwt_secret
        refused = {"nonsense": 401, mint_token(secret, "ops", ["admin"], timedelta(seconds=-5)): 401,
                   mint_token(secret, "ops", ["admin"], issuer="elsewhere"): 401,
                   mint_token(secret, "paula", ["pmo"]): 403, mint_token(secret, "alice"): 403}
        for token, status in refused.items():
            r = await sign_in(api, token)
            assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text
            assert "set-cookie" not in r.headers
        r = await api.http.post("/api/codec/session", data={"not-token": "x"})
        assert r.status_code == 422 and "set-cookie" not in r.headers

        admin = mint_token(secret, "ops", ["admin"], timedelta(minutes=30))
        r = await sign_in(api, admin)
        assert r.status_code == 303 and r.headers["location"] == "/api/codec/session", r.text
        cookie = set_cookie(r)[COOKIE]
        assert cookie.value == admin
        assert cookie["httponly"] and cookie["path"] == "/api/codec" and cookie["samesite"].lower() == "strict"
        assert 30 * 60 - 10 <= int(cookie["max-age"]) <= 30 * 60 and not cookie["secure"]
        r = await api.http.get("/api/codec/session", headers={"Cookie": f"{COOKIE}={admin}"})
        assert "ops" in r.text and "logout" in r.text

        # Behind a TLS proxy the app trusts (uvicorn's FORWARDED_ALLOW_IPS, loopback by default).
        r = await sign_in(api, admin, **{"X-Forwarded-Proto": "https"})
        assert r.status_code == 303 and set_cookie(r)[COOKIE]["secure"]

        r = await api.http.post("/api/codec/session/logout", headers={"Cookie": f"{COOKIE}={admin}"})
        assert r.status_code == 303
        cleared = set_cookie(r)[COOKIE]
        assert cleared.value == "" and int(cleared["max-age"]) == 0 and cleared["path"] == "/api/codec"


async def test_the_web_ui_decodes_with_the_cookie_alone(temporal_env, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    async with serve_api(temporal_env, tmp_path, with_worker=False, payload_key=key) as api:
        plain, sealed = await sealed_payloads(api)
        admin = mint_token(api.settings.jwt_secret, "ops", ["admin"], timedelta(minutes=30))
        cookie = set_cookie(await sign_in(api, admin))[COOKIE].value
        browser = {"Cookie": f"{COOKIE}={cookie}", "Origin": WEB_UI, "X-Namespace": "default"}

        r = await api.http.post("/api/codec/decode", json=sealed, headers=browser)
        assert r.status_code == 200 and r.json() == plain, r.text
        assert r.headers["access-control-allow-origin"] == WEB_UI
        assert r.headers["access-control-allow-credentials"] == "true"

        # The header wins over the cookie, even when it is worse.
        for bearer, status in (("Bearer nonsense", 401), (api.auth("paula", "pmo")["Authorization"], 403)):
            r = await api.http.post("/api/codec/decode", json=sealed, headers={**browser, "Authorization": bearer})
            assert r.status_code == status and "4711" not in r.text
        # A cookie is read as the token it holds, every time.
        for token, status in (("nonsense", 401), (mint_token(api.settings.jwt_secret, "alice"), 403)):
            r = await api.http.post("/api/codec/decode", json=sealed,
                                    headers={**browser, "Cookie": f"{COOKIE}={token}"})
            assert r.status_code == status and "4711" not in r.text

        # Another origin's page (another port of the same host is same-site) gets neither the answer
        # nor CORS headers that would let the browser show it.
        other = {**browser, "Origin": "http://127.0.0.1:9999"}
        r = await api.http.post("/api/codec/decode", json=sealed, headers=other)
        assert r.status_code == 403 and "4711" not in r.text
        assert "access-control-allow-origin" not in r.headers and "access-control-allow-credentials" not in r.headers


async def test_refusals_carry_cors_headers_so_the_ui_can_show_them(temporal_env, tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    async with serve_api(temporal_env, tmp_path, with_worker=False, payload_key=key) as api:
        _, sealed = await sealed_payloads(api)
        for headers, status in (({}, 401), (api.auth("paula", "pmo"), 403)):
            for origin in (WEB_UI, "https://evil.example"):
                r = await api.http.post("/api/codec/decode", json=sealed, headers={**headers, "Origin": origin})
                assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
                assert r.headers.get("access-control-allow-origin") == (origin if origin == WEB_UI else None)
        r = await api.http.post("/api/codec/decode", content=b"{not json",
                                headers={**api.auth("ops", "admin"), "Origin": WEB_UI})
        assert r.status_code == 422 and r.headers["access-control-allow-origin"] == WEB_UI

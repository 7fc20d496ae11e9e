"""The codec endpoint of Temporal's codec-server protocol: admins round-trip payloads through it,
everyone else is refused, browsers only from the Web UI origin; no key, no endpoint."""

import base64
import os

from temporalio.contrib.pydantic import pydantic_data_converter

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

"""The probes answer HEAD as they answer GET, without a body: load balancers and `curl -I` use it."""

import httpx


async def test_head_answers_on_the_probes(alone):
    async with httpx.AsyncClient(base_url=alone) as http:
        alive = await http.head("/healthz")
        assert alive.status_code == 200 and alive.content == b""
        assert alive.headers["content-type"] == "application/json"
        # Temporal does not answer here: not ready, to HEAD as to GET, with no body.
        ready = await http.head("/readyz")
        assert ready.status_code == 503 and ready.content == b""
        assert ready.headers["content-type"] == "application/problem+json" and ready.headers["retry-after"] == "5"
        assert (await http.get("/readyz")).json()["type"] == "/problems/not-ready"
        # GET stays the one operation each has in the contract; HEAD comes with it, as HTTP says.
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert list(paths["/healthz"]) == ["get"] and list(paths["/readyz"]) == ["get"]

"""Temporal's codec-server protocol, so operators who hold a Signoff admin token can read (and
write) encrypted payloads in the Temporal Web UI or CLI: `POST /api/codec/decode` and `/encode` with
`{"payloads": [...]}` (protobuf JSON). Mounted only when SIGNOFF_PAYLOAD_KEY is set.

Decoding hands out what the encryption hides, so only global admins may call it, by bearer token or
by the session cookie of api/routers/codec_session.py; browsers may call it only from the Temporal
Web UI origins in SIGNOFF_CODEC_CORS_ORIGINS.
"""

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payloads

from api.problems import Problem
from api.routers import codec_session
from api.routers.codec_session import PREFIX, REFUSALS, CodecAdmin, allowed_origins
from config.settings import Settings
from workflows.codec import EncryptionCodec

ALLOWED_HEADERS = "authorization, content-type, x-namespace"
OPERATIONS = ("decode", "encode")


def router_for(settings: Settings, codec: EncryptionCodec) -> APIRouter:
    origins = allowed_origins(settings)

    def cors_headers(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin not in origins:  # no CORS headers: the browser keeps the answer from that page
            return {"Vary": "Origin"}
        return {"Vary": "Origin", "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}

    class CorsRoute(APIRoute):
        """Every answer of the route carries the CORS headers, refusals too: without them the UI
        sees a network error instead of the 401/403/422."""

        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handle = super().get_route_handler()

            async def with_cors(request: Request) -> Response:
                try:
                    response = await handle(request)
                except Problem as exc:
                    raise Problem(exc.status, exc.detail, exc.type, {**(exc.headers or {}), **cors_headers(request)},
                                  **exc.extra) from None
                response.headers.update(cors_headers(request))
                return response

            return with_cors

    router = APIRouter(prefix=PREFIX, tags=["codec"], route_class=CorsRoute)

    async def payloads_of(request: Request) -> Payloads:
        try:
            return json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise Problem(422, f"not a codec request ({{\"payloads\": [...]}}): {exc}", "validation-error") from None

    def answer(message: Message) -> Response:
        return Response(json_format.MessageToJson(message), media_type="application/json")

    @router.options("/{operation}", include_in_schema=False)
    async def preflight(operation: str, request: Request) -> Response:
        if operation not in OPERATIONS:  # the session page is same-origin only
            raise Problem(404, f"no codec operation {operation}", "not-found")
        response = Response(status_code=204)
        if request.headers.get("origin") in origins:
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @router.post("/decode", responses=REFUSALS)
    async def codec_decode(request: Request, user: CodecAdmin) -> Response:
        """Decrypt payloads (admin only): what the Web UI calls to show workflow inputs and results."""
        payloads = await payloads_of(request)
        try:
            decoded = await codec.decode(payloads.payloads)
        except Exception as exc:  # an unknown key id, or a payload that does not authenticate
            raise Problem(422, f"cannot decode: {type(exc).__name__} {exc}", "undecodable-payload") from None
        return answer(Payloads(payloads=decoded))

    @router.post("/encode", responses=REFUSALS)
    async def codec_encode(request: Request, user: CodecAdmin) -> Response:
        """Encrypt payloads with the current key (admin only): what the UI calls to send a signal."""
        payloads = await payloads_of(request)
        return answer(Payloads(payloads=await codec.encode(payloads.payloads)))

    both = APIRouter()  # each keeps its route class: the session page answers no cross-origin call
    both.include_router(router)
    both.include_router(codec_session.router)
    return both

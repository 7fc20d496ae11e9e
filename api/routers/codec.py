"""Temporal's codec-server protocol, so operators who hold a Signoff admin token can read (and
write) encrypted payloads in the Temporal Web UI or CLI: `POST /api/codec/decode` and `/encode` with
`{"payloads": [...]}` (protobuf JSON). Mounted only when SIGNOFF_PAYLOAD_KEY is set.

Decoding hands out what the encryption hides, so only global admins may call it; browsers may call
it only from the Temporal Web UI origins in SIGNOFF_CODEC_CORS_ORIGINS.
"""

from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payloads

from api.deps import CurrentUser
from api.problems import Problem
from workers.settings import Settings
from workflows.codec import EncryptionCodec

PREFIX = "/api/codec"
ALLOWED_HEADERS = "authorization, content-type, x-namespace"


def router_for(settings: Settings, codec: EncryptionCodec) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["codec"])
    origins = {o.strip().rstrip("/") for o in settings.codec_cors_origins.split(",") if o.strip()}

    def cors(request: Request, response: Response) -> None:
        origin = request.headers.get("origin")
        response.headers["Vary"] = "Origin"
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"

    async def payloads_of(request: Request) -> Payloads:
        try:
            return json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise Problem(422, f"not a codec request ({{\"payloads\": [...]}}): {exc}", "validation-error") from None

    def answer(request: Request, message: Message) -> Response:
        response = Response(json_format.MessageToJson(message), media_type="application/json")
        cors(request, response)
        return response

    def require_admin(user: Any) -> None:
        if "admin" not in user.roles:
            raise Problem(403, "only admin may use the codec endpoint", "forbidden")

    @router.options("/{operation}", include_in_schema=False)
    async def preflight(operation: str, request: Request) -> Response:
        response = Response(status_code=204)
        cors(request, response)
        if "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @router.post("/decode")
    async def decode(request: Request, user: CurrentUser) -> Response:
        """Decrypt payloads (admin only): what the Web UI calls to show workflow inputs and results."""
        require_admin(user)
        payloads = await payloads_of(request)
        try:
            decoded = await codec.decode(payloads.payloads)
        except Exception as exc:  # an unknown key id, or a payload that does not authenticate
            raise Problem(422, f"cannot decode: {type(exc).__name__} {exc}", "undecodable-payload") from None
        return answer(request, Payloads(payloads=decoded))

    @router.post("/encode")
    async def encode(request: Request, user: CurrentUser) -> Response:
        """Encrypt payloads with the current key (admin only): what the UI calls to send a signal."""
        require_admin(user)
        payloads = await payloads_of(request)
        return answer(request, Payloads(payloads=await codec.encode(payloads.payloads)))

    return router

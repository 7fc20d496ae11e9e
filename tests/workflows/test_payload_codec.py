"""With SIGNOFF_PAYLOAD_KEY set, Temporal holds titles and comments only encrypted; the same
converter decodes them, replays the history, and reads payloads made with a rotated-out key."""

import base64
import os
import uuid

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from config.settings import Settings
from domain.commands import Decide
from tests.workflows.conftest import Chains
from workers.worker import WORKFLOWS, build_worker
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.client import connect
from workflows.codec import UnknownKey, data_converter

TITLE = b"Homepage mockups"
COMMENT = "the sponsor's confidential budget note 4711"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def payloads_in(node):
    """Every Payload anywhere in a history event (messages, repeated fields, maps)."""
    if isinstance(node, Payload):
        yield node
    elif isinstance(node, Message):
        for _, value in node.ListFields():
            yield from payloads_in(value)
    elif isinstance(node, str | bytes | int | float | bool):
        return
    elif hasattr(node, "values"):
        for value in node.values():
            yield from payloads_in(value)
    else:  # repeated fields iterate by index: they have no __iter__
        for value in node:
            yield from payloads_in(value)


async def test_history_is_encrypted_and_decodes_and_replays_with_the_key(temporal_env, sqlite_app):
    settings = Settings(temporal_address=temporal_env.client.service_client.config.target_host,
                        payload_key=new_key())
    client = await connect(settings)  # the client and the worker of `signoff api` / `signoff worker`
    task_queue = f"codec-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, sqlite_app, task_queue):
        handle, _ = await Chains(client, sqlite_app, task_queue).submit()
        view = await handle.execute_update(ApprovalChainWorkflow.decide,
                                           Decide(actor="bob", verdict="approve", comment=COMMENT, revision=1))
        assert view.stage.name == "engineering"

    # Fetched by a client without the codec, as the Web UI and tctl see it: nothing readable.
    history = await temporal_env.client.get_workflow_handle(handle.id).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    assert TITLE not in raw and COMMENT.encode() not in raw
    payloads = [p for event in history.events for p in payloads_in(event)]
    sealed = [p for p in payloads if p.metadata["encoding"] == b"binary/encrypted"]
    # Only search attributes (ours and the patches', typed: the server indexes them) and the SDK's
    # bookkeeping stay plain: the patch markers and the local-activity markers' timing data; their
    # results and the workflow's summary (the title) are sealed.
    plain = [p for p in payloads if p not in sealed]
    bookkeeping = (b"record-is-truth", b"search-attributes", b'"activity_type"')
    assert len(sealed) > 3 and all("type" in p.metadata or any(b in p.data for b in bookkeeping) for p in plain)
    assert {p.data for p in plain if "type" in p.metadata} >= {b'"alice"', b'"in_review"', b'"design"'}

    decoded = await data_converter(settings).payload_codec.decode(sealed)
    plain = b"".join(p.data for p in decoded)
    assert TITLE in plain and COMMENT.encode() in plain

    await Replayer(workflows=WORKFLOWS, data_converter=data_converter(settings)).replay_workflow(history)
    with pytest.raises(Exception):
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)


async def test_keys_rotate_and_plain_payloads_still_read():
    old, new = new_key(), new_key()
    before = data_converter(Settings(payload_key=old))
    after = data_converter(Settings(payload_key=new, payload_old_keys=old))
    [sealed] = await before.encode([{"comment": COMMENT}])
    assert COMMENT.encode() not in sealed.SerializeToString()
    assert await after.decode([sealed]) == [{"comment": COMMENT}]
    [plain] = await pydantic_data_converter.encode([{"comment": COMMENT}])
    assert await after.decode([plain]) == [{"comment": COMMENT}]
    with pytest.raises(UnknownKey):
        await data_converter(Settings(payload_key=new)).decode([sealed])
    assert data_converter(Settings()) is pydantic_data_converter

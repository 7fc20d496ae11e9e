"""The audit trail: who did what, when and why, across every project and kind of thing.

Members see the rows of their projects (a dependency's rows also to the providing project's
members), webhook deliveries' only where they may read deliveries (the project's pmo role); rows of
no project (policies, feed tokens) only pmo and admin. A query with no filters from a member
is scoped to their projects, not refused. Reads wait until the projector has reached what the store
held when they were asked, so a caller reads what it just did.
"""

import asyncio
import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from api.audit_models import AuditKey, AuditPage, AuditVerification
from api.auth import Principal
from api.contract import problems
from api.deps import CurrentUser, Services, Svc, require_pmo_or_admin
from api.problems import Problem
from api.routers.deliveries import PROJECT_ROLE as DELIVERIES_ROLE
from domain.audit import key_id
from store.audit_keys import public_key_for
from store.audit_view import AuditFilter, Scope
from workers.audit_verify import verify_store

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=problems(401, 503))
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
# Cells a spreadsheet would run as a formula: written with a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("seq", "at", "recorded_at", "actor", "on_behalf_of", "action", "subject_kind", "subject_id",
               "subject_title", "project_id", "revision", "reason", "details", "workflow_id", "update_id",
               "prev_hash", "hash")

Text = Annotated[str | None, Query(max_length=200)]
SubjectKind = Literal["project", "policy", "deliverable", "dependency", "delivery", "feed_tokens"]


def _filter(actor: str | None, project_id: str | None, subject_id: str | None, subject_kind: str | None,
            action: str | None, since: datetime | None, until: datetime | None) -> AuditFilter:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise Problem(422, f"{name}: give a time zone (e.g. Z)", "validation-error",
                          errors=[{"loc": ["query", name], "msg": "a moment needs a time zone", "type": "value_error"}])
    return AuditFilter(actor=actor, project_id=project_id, subject_id=subject_id, subject_kind=subject_kind,
                       action=action.rstrip(".") if action else None, since=since, until=until)


def _scope(services: Services, user: Principal) -> Scope | None:
    """None: every row (pmo, admin); else the caller's projects, and those whose deliveries they may
    read (where they hold the project's pmo role, as for GET …/deliveries)."""
    if user.is_pmo_or_admin:
        return None
    mine = services.views.projects_of(user.user)
    return Scope(projects=tuple(p["id"] for p in mine),
                 deliveries_of=tuple(p["id"] for p in mine if any(
                     m["user"] == user.user and DELIVERIES_ROLE in m["roles"] for m in p["members"])))


async def ready(services: Services) -> None:
    """Wait for the projector to reach what the store holds now (read-your-writes), else 503. The
    waiting is on the event loop: a projector that is down must not hold a worker thread per request."""
    target = await asyncio.to_thread(services.store.recorder.max_notification_id) or 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.audit_wait_seconds
    pause = 0.005
    while await asyncio.to_thread(services.audit.position) < target:
        if loop.time() > deadline:
            raise Problem(503, "the audit projector has not caught up with the event store; try again shortly "
                               "(is `signoff projector` running?)", "unavailable", headers={"Retry-After": "5"})
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


# ---- cursors: signed, and bound to the query and the caller they were given to ----------------
def _query_id(user: Principal, where: AuditFilter, ascending: bool) -> str:
    text = json.dumps({"user": user.user, "roles": sorted(user.roles), "where": where.as_json(), "asc": ascending},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mac(services: Services, payload: bytes) -> str:
    key = hashlib.sha256(b"signoff audit cursor\0" + services.settings.jwt_secret.encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()[:18]).decode()


def _cursor(services: Services, query: str, seq: int) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"q": query, "after": seq}).encode()).decode().rstrip("=")
    return f"{payload}.{_mac(services, payload.encode())}"


def _after(services: Services, query: str, cursor: str) -> int:
    payload, _, mac = cursor.partition(".")
    mark: Any = None
    if hmac.compare_digest(mac.encode(), _mac(services, payload.encode()).encode()):
        try:
            mark = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            mark = None
    if not isinstance(mark, dict) or mark.get("q") != query or not isinstance(mark.get("after"), int):
        raise Problem(422, "cursor: not a cursor this API gave out for this query", "validation-error",
                      errors=[{"loc": ["query", "cursor"], "msg": "not a cursor this API gave out for this query",
                               "type": "invalid_cursor"}])
    return mark["after"]


@router.get("", response_model=AuditPage, responses=problems(422))
async def audit_rows(user: CurrentUser, services: Svc, actor: Text = None, project_id: Text = None,
                     subject_id: Text = None,
                     subject_kind: SubjectKind | None = None,
                     action: Text = None, since: datetime | None = None, until: datetime | None = None,
                     order: Literal["asc", "desc"] = "desc", cursor: Annotated[str | None, Query(max_length=500)] = None,
                     limit: int = DEFAULT_LIMIT) -> Response:
    """Audit rows matching every filter given, newest first (`order=asc`: oldest first). `action` takes a
    name or a prefix of names (`deliverable.decision`); `since` ≤ at < `until`; `limit` is clamped to
    1..1000. Paging through with `next_cursor` never skips or repeats a row while new ones arrive."""
    where = _filter(actor, project_id, subject_id, subject_kind, action, since, until)
    ascending = order == "asc"
    query = _query_id(user, where, ascending)
    after = _after(services, query, cursor) if cursor is not None else None
    limit = max(1, min(limit, MAX_LIMIT))

    await ready(services)

    def read() -> bytes:
        page = services.audit.page(where, _scope(services, user), after, limit + 1, ascending)
        more = len(page) > limit
        page = page[:limit]
        following = json.dumps(_cursor(services, query, page[-1][0])) if more else "null"
        # The rows are stored as the JSON they are served as: joined, not parsed and dumped again.
        return f'{{"items":[{",".join(body for _, body in page)}],"next_cursor":{following}}}'.encode()

    return Response(await asyncio.to_thread(read), media_type="application/json")


@router.get("/export", responses={**problems(422), 200: {"content": {"text/csv": {}, "application/x-ndjson": {}},
                                                         "description": "The rows, streamed"}},
            response_class=StreamingResponse)
async def audit_export(user: CurrentUser, services: Svc, format: Literal["csv", "jsonl"] = "jsonl",
                       actor: Text = None, project_id: Text = None, subject_id: Text = None,
                       subject_kind: SubjectKind | None = None,
                       action: Text = None, since: datetime | None = None, until: datetime | None = None,
                       order: Literal["asc", "desc"] = "asc", until_signed: bool = False) -> StreamingResponse:
    """Every matching row, streamed (constant memory however many), oldest first unless `order=desc`.
    `jsonl`: one row per line, then the signed checkpoints within the rows' range as
    `{"checkpoint": …}` lines (an unfiltered export is what `signoff audit verify --file` checks).
    `csv`: one row per line; cells a spreadsheet would run as a formula begin with an apostrophe.
    `until_signed`: end at the newest signed checkpoint, so every row of the file is vouched for."""
    where = _filter(actor, project_id, subject_id, subject_kind, action, since, until)
    await ready(services)
    if until_signed:
        signed = await asyncio.to_thread(services.audit.checkpoints)
        where = replace(where, to_seq=signed[-1]["seq"] if signed else 0)
    scope = await asyncio.to_thread(_scope, services, user)
    lines = (jsonl_lines if format == "jsonl" else csv_lines)(services.audit, where, scope, order == "asc")
    name = f"signoff-audit.{format}"
    return StreamingResponse(lines, media_type="text/csv" if format == "csv" else "application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def jsonl_lines(view: Any, where: AuditFilter, scope: Scope | None, ascending: bool) -> Iterator[str]:
    low, high = None, 0
    for seq, body in view.stream(where, scope, ascending):
        low, high = min(low or seq, seq), max(high, seq)
        yield body + "\n"
    if low is not None and scope is None:  # checkpoints name the whole trail's head: for those who see it all
        for cp in view.checkpoints(high):
            if cp["seq"] >= low:
                yield json.dumps({"checkpoint": cp}, separators=(",", ":")) + "\n"


def csv_lines(view: Any, where: AuditFilter, scope: Scope | None, ascending: bool) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for _, body in view.stream(where, scope, ascending):
        row = json.loads(body)
        writer.writerow([safe_cell(v) for v in (
            row["seq"], row["at"], row["recorded_at"], row["actor"], ";".join(row["on_behalf_of"]), row["action"],
            row["subject"]["kind"], row["subject"]["id"], row["subject"]["title"], row["project_id"],
            row["revision"], row["reason"], json.dumps(row["details"], ensure_ascii=False),
            row["correlation"]["workflow_id"], row["correlation"]["update_id"], row["prev_hash"], row["hash"])])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading =, +, -, @, tab or CR gets an apostrophe before it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@router.get("/verify", response_model=AuditVerification, responses=problems(403))
async def audit_verify(user: CurrentUser, services: Svc) -> dict[str, Any]:
    """Recompute the whole chain from the event store and compare it with the audit view and its signed
    checkpoints: `ok`, or the first row that does not hold and why (pmo and admin)."""
    require_pmo_or_admin(user)

    await ready(services)

    def check() -> dict[str, Any]:
        return verify_store(services.store, services.audit, public_key_for(services.settings),
                            services.settings.audit_checkpoint_rows).to_json()

    return await asyncio.to_thread(check)


@router.get("/public-key", response_model=AuditKey, responses=problems(404))
async def audit_public_key(user: CurrentUser, services: Svc) -> dict[str, Any]:
    """The key the trail's checkpoints are signed with: what an auditor passes to
    `signoff audit verify --file … --public-key …`."""
    key = public_key_for(services.settings)
    if key is None:
        raise Problem(404, "no audit key is configured (SIGNOFF_AUDIT_PUBLIC_KEY)", "not-found")
    return {"public_key": base64.b64encode(key).decode(), "key_id": key_id(key)}

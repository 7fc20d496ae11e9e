"""The calendar feed (GET /api/calendar.ics) and the feed tokens that open it.

Calendar apps cannot send an Authorization header, so the feed also takes a feed token as `?token=`
(api/authenticate.py): a JWT good for this route only (403 anywhere else), made by POST
/api/me/feed-token or `signoff token USER --feed`. Each user has at most one that counts, kept in the
event store (domain/feed_token.py): issuing another replaces it and DELETE revokes it, at once on every
API replica, because the feed reads the store on every fetch. An ordinary bearer token works here too.
"""

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import APIKeyQuery
from pydantic import BaseModel, Field

from api.auth import Principal
from api.calendar_feed import due_for, ics
from api.contract import problems
from api.deps import CurrentUser, Svc
from api.feed_tokens import FEED_PATH, issue_feed_token
from api.problems import Problem
from domain.feed_token import current_token_id, record_revoked

router = APIRouter(tags=["calendar"], responses=problems(401, 403, 503))
NO_STORE = {"Cache-Control": "no-store"}

# Declared so the contract shows the second way in; api/authenticate.py reads it.
feed_token_query = APIKeyQuery(name="token", auto_error=False, scheme_name="FeedToken",
                               description="A feed token (POST /api/me/feed-token), for calendar apps that cannot "
                                           "send headers. Good for GET /api/calendar.ics only.")


class FeedTokenIssued(BaseModel):
    token: str = Field(description="A JWT good for the calendar feed only; it replaces the caller's previous one")
    url: str = Field(description="The feed's URL with the token in it, to subscribe to in a calendar app",
                     examples=["https://signoff.example/api/calendar.ics?token=eyJ..."])
    expires_at: datetime = Field(description="When the token stops working (issue a new one before)")


async def feed_caller(user: CurrentUser, services: Svc,
                      _: Annotated[str | None, Depends(feed_token_query)] = None) -> Principal:
    """The caller; a feed token only while it is the user's current one (not revoked, not replaced)."""
    if user.is_feed_token:
        current = await asyncio.to_thread(current_token_id, services.store, user.user)
        if current != user.token_id:
            raise Problem(401, "this feed token was revoked or replaced by a newer one", "unauthorized")
    return user


FEED_RESPONSE = {200: {"description": "An iCalendar (RFC 5545) feed: one VEVENT per due time that waits for the "
                                      "caller, each with a stable UID",
                       "content": {"text/calendar": {"schema": {"type": "string"}}}}}


@router.get(FEED_PATH, response_class=Response, responses=FEED_RESPONSE)
async def calendar_feed(user: Annotated[Principal, Depends(feed_caller)], services: Svc) -> Response:
    """What waits for the caller, with its due time, as an iCalendar feed to subscribe to: the SLAs of open
    stages they are still to decide, escalation steps that notify them or grant them the decision
    (raised or still due), needed-by and reminder times of the open or in-progress dependencies they own,
    and escalation steps of stalled dependencies aimed at them. Each VEVENT's UID is
    `{deliverable|dependency}-{id}[-{stage}]-{kind}-{level}@signoff`, so calendar apps update events
    rather than duplicate them. Takes a bearer token, or a feed token as `?token=`."""
    due = await asyncio.to_thread(due_for, services, user.user)
    return Response(ics(user.user, due), media_type="text/calendar; charset=utf-8",
                    headers={**NO_STORE, "Content-Disposition": 'inline; filename="signoff.ics"'})


@router.post("/api/me/feed-token", response_model=FeedTokenIssued)
async def issue_my_feed_token(user: CurrentUser, services: Svc, response: Response) -> dict[str, object]:
    """A new feed token for the caller (any signed-in user; not with a feed token), valid for 90 days. It
    replaces the previous one at once: the old feed URL answers 401 from now on."""
    response.headers.update(NO_STORE)
    return await asyncio.to_thread(issue_feed_token, services.store, services.settings, user.user)


@router.delete("/api/me/feed-token", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_my_feed_token(user: CurrentUser, services: Svc) -> Response:
    """Revoke the caller's feed token at once (on every API replica); 204 whether there was one or not."""
    await asyncio.to_thread(record_revoked, services.store, user.user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

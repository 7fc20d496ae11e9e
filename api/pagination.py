"""Lists come a page at a time, all in one shape: `{"items": [...], "next_cursor": "..."}`.

`limit` is clamped to 1..MAX_LIMIT; `cursor` is opaque to clients: the position of the last item
of the page before, so a page stays right while items are added (keyset, not offset).
"""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from api.problems import Problem

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(description=f"Items per page, {DEFAULT_LIMIT} unless given; clamped to 1..{MAX_LIMIT}")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the page before; none for the "
                                                                 "first page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def paginate(items: Sequence[Any], limit: int, cursor: str | None, key: Callable[[Any], list[Any]],
             after: Callable[[list[Any], list[Any]], bool], kind: str) -> dict[str, Any]:
    """The page of `items` (in their list order) that follows `cursor`. `key(item)` is an item's
    position; `after(key, cursor_key)` says whether a position comes after the cursor's; `kind`
    names the list, so a cursor of another list is refused rather than misread."""
    limit = max(1, min(limit, MAX_LIMIT))
    start = 0
    if cursor is not None:
        mark = _decode(cursor, kind)
        try:
            start = next((i for i, item in enumerate(items) if after(key(item), mark)), len(items))
        except (TypeError, IndexError):  # a cursor of another list, or made up
            raise _invalid() from None
    page = list(items[start:start + limit])
    more = start + limit < len(items)
    return {"items": page, "next_cursor": _encode(kind, key(page[-1])) if more and page else None}


def ascending(position: list[Any], mark: list[Any]) -> bool:
    return position > mark


def newest_first(position: list[Any], mark: list[Any]) -> bool:
    """For lists ordered by (time descending, id ascending)."""
    return position[0] < mark[0] or (position[0] == mark[0] and position[1] > mark[1])


def _encode(kind: str, position: list[Any]) -> str:
    text = json.dumps({"list": kind, "after": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> list[Any]:
    try:
        mark = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        mark = None
    if not isinstance(mark, dict) or mark.get("list") != kind or not isinstance(mark.get("after"), list):
        raise _invalid()
    return mark["after"]


def _invalid() -> Problem:
    return Problem(422, "cursor: not a cursor this API gave out", "validation-error",
                   errors=[{"loc": ["query", "cursor"], "msg": "not a cursor this API gave out",
                            "type": "invalid_cursor"}])

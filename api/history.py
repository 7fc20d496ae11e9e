"""Every `…/{id}/history` route pages the same way: by the aggregate's version, oldest first unless
`order=desc`. A cursor names its list and its order, so one from another history, or from the other
order, is a 422 rather than a misread page."""

from typing import Annotated, Any, Literal

from fastapi import Query

from api.pagination import ascending, paginate

Order = Annotated[Literal["asc", "desc"], Query(description="`asc` (the default): oldest first; `desc`: newest first")]


def history_page(entries: list[dict[str, Any]], limit: int, cursor: str | None, order: str,
                 kind: str) -> dict[str, Any]:
    """The page of `entries` (oldest first, as the store gives them) after `cursor`, in `order`."""
    if order == "desc":
        return paginate(entries[::-1], limit, cursor, lambda e: [e["version"]], newer_first, f"{kind}:desc")
    return paginate(entries, limit, cursor, lambda e: [e["version"]], ascending, kind)


def newer_first(position: list[Any], mark: list[Any]) -> bool:
    return position < mark

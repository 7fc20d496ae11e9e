"""Ambiguous JSON: a key given twice in one object.

Python's json keeps the last value silently, so `{"verdict": "reject", "verdict": "approve"}`
would be recorded as an approval while a reader (or a proxy, or an audit of the raw request)
sees a rejection. Such a body is refused instead.
"""

import json
from email.message import Message
from typing import Any


class _Duplicated(dict):  # type: ignore[type-arg]
    """An object that held `key` more than once."""

    key: str


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        duplicated = _Duplicated(pairs)
        duplicated.key = next(key for i, key in enumerate(keys) if key in keys[:i])
        return duplicated
    return dict(pairs)


class TooDeep(ValueError):
    pass


def is_json(content_type: str | None) -> bool:
    """The bodies FastAPI reads as JSON: application/json and application/*+json."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def duplicate_key(body: bytes) -> list[str | int] | None:
    """The path to the first key given twice, or None; None too for a body that is not JSON
    (FastAPI refuses that one itself). Raises TooDeep for nesting the parser cannot follow."""
    try:
        document = json.loads(body, object_pairs_hook=_object)
    except RecursionError:
        raise TooDeep() from None
    except ValueError:  # not JSON, or not UTF-8
        return None
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:  # iterative: a document as deep as the parser allows must not overflow this walk
        value, path = stack.pop()
        if isinstance(value, _Duplicated):
            return [*path, value.key]
        if isinstance(value, dict):
            stack += [(item, [*path, key]) for key, item in reversed(value.items())]
        elif isinstance(value, list):
            stack += [(item, [*path, index]) for index, item in reversed(list(enumerate(value)))]
    return None

"""What a name, a text, an id or a link may hold: what a reader sees is what was recorded.

Bidirectional overrides and zero-width characters make a title or comment read differently
from what it holds (`\u202eFDP.exe`), control characters garble terminals, exports and logs.
"""

import re
from datetime import date
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, StringConstraints, WithJsonSchema

from domain import bounds

# U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates; zero-width spaces, joiners and
# marks, the word joiner and the byte-order mark.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u2060\ufeff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1 and line/paragraph separators
_CONTROL_BUT_NEWLINE_AND_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _refuse(value: str, pattern: re.Pattern[str], what: str) -> None:
    found = pattern.search(value)
    if found:
        raise ValueError(f"holds {what} U+{ord(found.group()):04X} at position {found.start()}")


def clean_name(value: str) -> str:
    """One line of visible text, trimmed."""
    # Checked before trimming, since str.strip() would quietly drop a trailing \x1f or \x85.
    _refuse(value, _CONTROL, "the control character")
    _refuse(value, _INVISIBLE, "the invisible or direction-changing character")
    value = value.strip()
    if not value:
        raise ValueError("must hold visible text")
    return value


def clean_text(value: str) -> str:
    """Free text: may span lines and hold tabs; kept as sent, but for line ends made \n."""
    # Browsers send a textarea's lines as \r\n: one line end, not a control character.
    value = value.replace("\r\n", "\n")
    _refuse(value, _CONTROL_BUT_NEWLINE_AND_TAB, "the control character")
    _refuse(value, _INVISIBLE, "the invisible or direction-changing character")
    return value


def visible_text(value: str) -> str:
    value = clean_text(value)
    if not value.strip():
        raise ValueError("must hold visible text")
    return value


def http_uri(value: str) -> str:
    """An http(s) link with a host and no credentials, kept exactly as sent."""
    _refuse(value, _CONTROL, "the control character")
    _refuse(value, _INVISIBLE, "the invisible or direction-changing character")
    if any(c.isspace() for c in value):
        raise ValueError("a URI holds no spaces")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an https:// or http:// URI")
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise ValueError(f"has an invalid port: {exc}") from None
    if not parts.hostname:
        raise ValueError("must name a host, e.g. https://files.example/report.pdf")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password")
    return value


def iso_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date such as 2026-11-27") from None
    return value


# The same rules as patterns in the published schema (ECMA-262 and Python alike), so a client or a
# fuzzer knows them; the validators above are what the API enforces.
_INVISIBLE_CLASS = "\\u202a-\\u202e\\u2066-\\u2069\\u200b-\\u200f\\u2060\\ufeff"
_NAME_BAD = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029" + _INVISIBLE_CLASS
_TEXT_BAD = "\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f" + _INVISIBLE_CLASS
_TEXT_CHAR = f"(?:[^{_TEXT_BAD}]|\\r\\n)"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_URI_CHAR = f"[^\\s{_NAME_BAD}]"


def _text_schema(max_length: int, pattern: str, description: str, min_length: int = 0) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "maxLength": max_length, "pattern": pattern,
                           "description": description, **({"minLength": min_length} if min_length else {})})


Name = Annotated[str, StringConstraints(max_length=bounds.MAX_NAME_CHARS), AfterValidator(clean_name),
                 _text_schema(bounds.MAX_NAME_CHARS, f"^[^{_NAME_BAD}]*[^\\s{_NAME_BAD}][^{_NAME_BAD}]*$",
                              "One line of visible text (no control, invisible or direction-changing characters); "
                              "kept trimmed")]
StageName = Annotated[str, StringConstraints(max_length=bounds.MAX_STAGE_NAME_CHARS), AfterValidator(clean_name),
                      _text_schema(bounds.MAX_STAGE_NAME_CHARS,
                                   f"^[^{_NAME_BAD}]*[^\\s{_NAME_BAD}][^{_NAME_BAD}]*$",
                                   "One line of visible text; kept trimmed")]
Text = Annotated[str, StringConstraints(max_length=bounds.MAX_TEXT_CHARS), AfterValidator(clean_text),
                 _text_schema(bounds.MAX_TEXT_CHARS, f"^{_TEXT_CHAR}*$",
                              "Free text: lines and tabs, no other control, invisible or direction-changing characters")]
RequiredText = Annotated[str, StringConstraints(max_length=bounds.MAX_TEXT_CHARS), AfterValidator(visible_text),
                         _text_schema(bounds.MAX_TEXT_CHARS, f"^{_TEXT_CHAR}*[^\\s{_TEXT_BAD}]{_TEXT_CHAR}*$",
                                      "Free text with something visible in it", 1)]
Note = Annotated[str, StringConstraints(max_length=bounds.MAX_NOTE_CHARS), AfterValidator(clean_text),
                 _text_schema(bounds.MAX_NOTE_CHARS, f"^{_TEXT_CHAR}*$", "Free text")]
HttpUri = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_URI_CHARS), AfterValidator(http_uri),
                    _text_schema(bounds.MAX_URI_CHARS,
                                 f"^[hH][tT][tT][pP][sS]?://[^\\s/?#@:\\[\\]{_NAME_BAD}]+(?::{_PORT}?)?"
                                 f"(?:[/?#]{_URI_CHAR}*)?$",
                                 "An http(s) link with a host and no user name or password", 1)]
IsoDate = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(iso_date),
                    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-11-27"]})]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_USER_ID_CHARS,
                                          pattern=r"^[A-Za-z0-9._@-]+$")]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=bounds.MAX_ROLE_CHARS,
                                            pattern=r"^[a-z0-9][a-z0-9_-]*$")]
# An escalation notifies project roles or members by user id; every role name is a valid user id.
UserOrRole = UserId

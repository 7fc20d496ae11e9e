"""A stored event's facts as the audit trail reads them: position, class path, originator, version,
time stored and fields, decoded straight from the stored JSON.

eventsourcing's mapper makes a domain event object through a JSON decoder with a Python hook on
every object; the trail needs only the fields, and reading them with orjson is several times
faster. A state the fast path cannot read exactly (a cipher or compressor configured, or a value of
a custom type besides the event's own timestamp) goes through the mapper, so both paths give the
same facts.
"""

from datetime import datetime
from typing import Any, NamedTuple

import orjson

TYPED = b'"_type_"'  # how eventsourcing's transcoder marks a value of a custom type (UUID, datetime, …)
SKIP = ("originator_id", "originator_version", "timestamp", "originator_topic")


class Facts(NamedTuple):
    position: int
    name: str  # the event's class path in its module: `Deliverable.DecisionRecorded`
    uid: str
    version: int
    recorded_at: datetime
    fields: dict[str, Any]


def facts_of_event(position: int, event: Any) -> Facts:
    return Facts(position, type(event).__qualname__, str(event.originator_id), event.originator_version,
                 event.timestamp, {k: v for k, v in event.__dict__.items() if k not in SKIP})


def facts_of(app: Any, notification: Any) -> Facts:
    state = notification.state
    mapper = app.mapper
    if mapper.cipher is None and mapper.compressor is None and state.count(TYPED) == 1:
        try:
            fields = orjson.loads(state)
        except orjson.JSONDecodeError:  # what orjson refuses (a lone surrogate, 1e400) the mapper may read
            return facts_of_event(notification.id, mapper.to_domain_event(notification))
        stamp = fields.pop("timestamp", None)
        if isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso":
            fields.pop("originator_topic", None)
            return Facts(notification.id, notification.topic.partition(":")[2], str(notification.originator_id),
                         notification.originator_version, datetime.fromisoformat(stamp["_data_"]), fields)
    return facts_of_event(notification.id, mapper.to_domain_event(notification))

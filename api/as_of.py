"""The `as_of` query parameter every record's GET takes: a moment with a time zone.

A moment without one would be read in the server's zone, which a client cannot know: it is a 422
rather than a guess. One dependency, so each route refuses it with the same problem."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from api.problems import Problem

AS_OF_DOC = ("Read the record as it stood at this moment (ISO 8601 with a time zone, e.g. 2026-11-27T10:00:00Z): "
             "every event at or before it counts, one at exactly this moment included")


def as_of_param(as_of: Annotated[datetime | None, Query(description=AS_OF_DOC)] = None) -> datetime | None:
    if as_of is not None and (as_of.tzinfo is None or as_of.utcoffset() is None):
        raise Problem(422, "as_of needs a timezone, e.g. 2026-11-27T10:00:00Z", "validation-error",
                      errors=[{"loc": ["query", "as_of"], "msg": "needs a timezone", "type": "timezone_aware"}])
    return as_of


AsOf = Annotated[datetime | None, Depends(as_of_param)]

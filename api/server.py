"""How uvicorn serves the API, the same for `signoff api` and the tests.

uvicorn answers a request its HTTP parser gives up on (a head over the limit, a malformed line)
with plain text, before the app sees it; here that answer is problem+json like every other one.
"""

from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.feed_tokens import redact_access_log
from api.problems import problem_response
from config.settings import Settings


class _Connection(h11.Connection):
    """Remembers why the request could not be parsed, which uvicorn does not pass on."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise


class ProblemH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Nothing has been received yet, so the connection can still be swapped for one that remembers.
        self.conn = _Connection(h11.SERVER, self.config.h11_max_incomplete_event_size)

    def send_400_response(self, msg: str) -> None:
        error = getattr(self.conn, "error", None)
        status = 431 if error is not None and error.error_status_hint == 431 else 400
        detail = (f"request line and headers over {self.config.h11_max_incomplete_event_size} bytes" if status == 431
                  else f"not a valid HTTP/1.1 request: {error or msg}")
        response = problem_response(status, detail, "request-header-fields-too-large" if status == 431 else "bad-request")
        headers = [(b"content-type", b"application/problem+json"), (b"connection", b"close")]
        events = (h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase),
                  h11.Data(data=response.body), h11.EndOfMessage())
        for event in events:
            self.transport.write(self.conn.send(event))
        self.transport.close()


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "http": ProblemH11Protocol,
                               "h11_max_incomplete_event_size": settings.max_header_bytes, **overrides}
    config = uvicorn.Config(app, **options)  # configures uvicorn's loggers
    redact_access_log()  # the calendar feed's ?token= never reaches the access log
    return config

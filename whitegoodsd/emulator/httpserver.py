"""The HTTP/1.1 side of emulated plugs: h11 parses, a callback answers.

:class:`Connection` is an asyncio protocol for one client connection.  Each
whole request (head and body, the body capped at ``limit``) goes to the
``respond`` callback as a :class:`Request`; its :class:`Reply` goes back
with a ``Content-Length``.  Keep-alive works as the client asks; a request
h11 cannot parse, or one too large, closes the connection, as small
embedded servers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import h11

MAX_REQUEST = 16 * 1024
REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden",
           404: b"Not Found", 405: b"Method Not Allowed"}  # fmt: skip


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased
    body: bytes

    def cookies(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in self.headers:
            if name == "cookie":
                for pair in value.split(";"):
                    key, _, content = pair.strip().partition("=")
                    found.setdefault(key, content)
        return found


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    cookie: str | None = None  # a Set-Cookie value
    content_type: str = "text/html"


class Connection(asyncio.Protocol):
    """One client connection to an emulated plug's HTTP server."""

    def __init__(
        self,
        respond: Callable[[Request], Reply],
        transports: set[asyncio.Transport],
        on_accept: Callable[[], None] | None = None,
        limit: int = MAX_REQUEST,
    ) -> None:
        self.respond = respond
        self.transports = transports  # the open connections, for the server to close
        self.on_accept = on_accept
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        self._request: h11.Request | None = None
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.transports.add(transport)
        if self.on_accept is not None:
            self.on_accept()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._drain()

    def eof_received(self) -> bool:
        self.h11.receive_data(b"")
        self._drain()
        return False

    def _drain(self) -> None:
        assert self.transport is not None
        try:
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    return
                if event is h11.PAUSED:
                    if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                        self.h11.start_next_cycle()
                        continue
                    return
                if isinstance(event, h11.Request):
                    self._request, self._body = event, bytearray()
                elif isinstance(event, h11.Data):
                    self._body += event.data
                    if len(self._body) > self.limit:
                        raise h11.RemoteProtocolError("request body too large", 413)
                elif isinstance(event, h11.EndOfMessage):
                    self._answer()
                elif isinstance(event, h11.ConnectionClosed):
                    self.transport.close()
                    return
        except (h11.RemoteProtocolError, h11.LocalProtocolError):
            self.transport.close()

    def _answer(self) -> None:
        assert self.transport is not None and self._request is not None
        head = self._request
        request = Request(
            method=head.method.decode("latin-1"),
            target=head.target.decode("latin-1"),
            headers=tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers
            ),
            body=bytes(self._body),
        )
        reply = self.respond(request)
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
        if reply.cookie:
            headers.append(("Set-Cookie", reply.cookie))
        out = self.h11.send(
            h11.Response(status_code=reply.status, headers=headers,
                         reason=REASONS.get(reply.status, b""))
        )  # fmt: skip
        out = (out or b"") + (self.h11.send(h11.Data(data=reply.body)) or b"")
        out += self.h11.send(h11.EndOfMessage()) or b""
        self.transport.write(out)
        if self.h11.our_state is h11.MUST_CLOSE:
            self.transport.close()

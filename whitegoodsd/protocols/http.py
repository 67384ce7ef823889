"""HTTP/1.1 for the plugs that speak it, without I/O: h11 frames, we bound.

An :class:`Exchange` is one request and its response.  It makes the request's
bytes and takes the response's bytes as they come, through h11 (the sans-I/O
HTTP/1.1 library), and stops a plug from making it hold more than ``limit``
bytes of body or 16 KiB of head.  Replies we did not ask to be compressed
(``Content-Encoding``) are refused rather than inflated.  Every failure is a
ProtocolError with a one-line reason.

:func:`request` is the conversation step (see ``conversation.py``) that
sends an exchange on the open socket and returns its response.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import h11

from whitegoodsd.conversation import Conversation, exchange
from whitegoodsd.errors import ProtocolError

MAX_BODY = 64 * 1024  # a plug's status reply is a few KiB at most
MAX_HEAD = 16 * 1024
USER_AGENT = "whitegoodsd"
_COOKIE_ATTRIBUTES = frozenset({"path", "domain", "expires", "max-age", "samesite"})


@dataclass(frozen=True)
class Response:
    """A whole HTTP response."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in order
    body: bytes
    keep_alive: bool = field(default=False)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), if any."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def cookies(self) -> dict[str, str]:
        """``Set-Cookie`` names and values, attributes (Path, Expires...) left out.

        Some plugs put two cookies in one header (``TP_SESSIONID=..;TIMEOUT=..``):
        every ``name=value`` pair counts.
        """
        found: dict[str, str] = {}
        for key, value in self.headers:
            if key != "set-cookie":
                continue
            for pair in value.split(";"):
                name, sep, content = pair.partition("=")
                name = name.strip()
                if sep and name and name.lower() not in _COOKIE_ATTRIBUTES:
                    found[name] = content.strip()
        return found


class Exchange:
    """One HTTP/1.1 request and the response to it."""

    def __init__(
        self,
        method: str,
        target: str,
        host: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        limit: int = MAX_BODY,
    ) -> None:
        self.limit = limit
        self._connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        fields = [("Host", host), ("User-Agent", USER_AGENT), *headers]
        if body is not None:
            fields.append(("Content-Length", str(len(body))))
        try:
            data = self._connection.send(h11.Request(method=method, target=target, headers=fields))
            if body:
                data += self._connection.send(h11.Data(data=body)) or b""
            data += self._connection.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise ProtocolError(f"cannot make the request: {exc}") from None
        self.request: bytes = data or b""
        self._head: h11.Response | None = None
        self._body = bytearray()

    def feed(self, data: bytes) -> Response | None:
        """Take bytes from the plug (``b""`` at end of stream); the response
        once it is whole, else None."""
        try:
            self._connection.receive_data(data)
            while True:
                event = self._connection.next_event()
                if event is h11.NEED_DATA:
                    return None
                if isinstance(event, h11.Response):
                    self._head = event
                    encoding = _value(event.headers, b"content-encoding")
                    if encoding not in (None, "identity"):
                        raise ProtocolError(
                            f"reply is {encoding[:20]}-encoded, which was not asked"
                        )
                elif isinstance(event, h11.Data):
                    self._body += event.data
                    if len(self._body) > self.limit:
                        raise ProtocolError(f"reply body over {self.limit:,} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    return self._response()
                elif isinstance(event, h11.ConnectionClosed):
                    raise ProtocolError("connection closed before the reply ended")
                # InformationalResponse (100 Continue) and PAUSED: nothing to do
                elif event is h11.PAUSED:
                    raise ProtocolError("unexpected data after the reply")
        except h11.RemoteProtocolError as exc:
            text = str(exc).splitlines()[0] if str(exc) else "malformed reply"
            raise ProtocolError(f"malformed HTTP reply: {text[:80]}") from None

    def _response(self) -> Response:
        head = self._head
        assert head is not None
        return Response(
            status=head.status_code,
            reason=head.reason.decode("latin-1", "replace"),
            headers=tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1", "replace"))
                for k, v in head.headers
            ),
            body=bytes(self._body),
            keep_alive=self._connection.our_state is h11.DONE
            and self._connection.their_state is h11.DONE,
        )


def _value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1", "replace").strip().lower()
    return None


def request(message: Exchange) -> Conversation[Response]:
    """Send ``message`` on the conversation's open socket; its response."""
    return exchange(message.request, message.feed)

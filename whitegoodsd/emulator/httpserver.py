"""An HTTP/1.1 server for emulated plugs that speak HTTP, framed by h11.

A :class:`Handler` turns a :class:`Request` into a :class:`Reply`, without
I/O; :func:`start_http` serves it on a TCP port of the running event loop,
with keep-alive (real plugs keep a connection for a few requests), a bound
on what a client may send (16 KiB of head, 64 KiB of body), and connections
dropped when the client stops reading.  ``misbehave``, when set, is called
for each request first: it may return raw bytes to send instead of a proper
reply, and whether to close after them (the hostile plugs of the tests).

``websocket``, when set, takes WebSocket upgrades (RFC 6455): it gets the
upgrade request and returns a function from each text message to the text
to answer (or None to refuse the upgrade).  The frames are made and read by
wsproto, imported only then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11

log = logging.getLogger("whitegoodsd.emulator")

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
_MAX_UNSENT = 256 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased
    body: bytes
    peer: str

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())
    content_type: str = "application/json"
    chunked: bool = False  # Transfer-Encoding: chunked, as many plugs send it


Handler = Callable[[Request], Reply]
# An upgrade request -> a function from each text message to its answer, or None: refused.
Upgrade = Callable[[Request], Callable[[str], str | None] | None]
# (raw bytes to send instead of the reply, close after them) or None: behave.
Misbehave = Callable[[Request], tuple[bytes, bool] | None]
_REASONS = {
    200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
    405: b"Method Not Allowed", 413: b"Payload Too Large", 500: b"Internal Server Error",
}  # fmt: skip


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._head: h11.Request | None = None
        self._body = bytearray()
        self._ws: Any = None  # a wsproto connection once upgraded
        self._on_message: Callable[[str], str | None] | None = None
        self._text: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.connections.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self._ws is not None:
            self._ws.receive_data(data)
            self._frames()
            return
        self.h11.receive_data(data)
        self._events()

    def eof_received(self) -> bool:
        if self._ws is None:
            self.h11.receive_data(b"")
            self._events()
        return False

    def _events(self) -> None:
        assert self.transport is not None
        while not self.transport.is_closing():
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if event is h11.PAUSED and self.h11.our_state is h11.DONE:
                    self._next_cycle()
                    continue
                return
            if isinstance(event, h11.ConnectionClosed):
                self.transport.close()
                return
            if isinstance(event, h11.Request):
                self._head, self._body = event, bytearray()
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > MAX_BODY:
                    self._fail(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._answer()

    def _next_cycle(self) -> None:
        assert self.transport is not None
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is h11.MUST_CLOSE:
            self.transport.close()
            return
        try:
            self.h11.start_next_cycle()
        except h11.LocalProtocolError:
            self.transport.close()

    def _answer(self) -> None:
        assert self.transport is not None and self._head is not None
        head = self._head
        request = Request(
            method=head.method.decode("ascii", "replace"),
            target=head.target.decode("latin-1"),
            headers=tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers
            ),
            body=bytes(self._body),
            peer=self.peer,
        )
        if (request.header("upgrade") or "").lower() == "websocket" and self._upgrade(request):
            return
        if self.server.misbehave is not None:
            raw = self.server.misbehave(request)
            if raw is not None:
                data, close = raw
                self.transport.write(data)
                if close:
                    self.transport.close()
                    return
                # The raw reply went round h11: start a fresh parser for what follows.
                rest, _ = self.h11.trailing_data
                self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
                if rest:  # (b"" would mean end of stream to h11)
                    self.h11.receive_data(bytes(rest))
                return
        reply = self.server.handler(request)
        self.server.log_request(request, reply)
        self._send(reply)
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self._next_cycle()
        elif self.h11.our_state is h11.MUST_CLOSE:
            self.transport.close()

    def _upgrade(self, request: Request) -> bool:
        """Take a WebSocket upgrade, if the server serves one here."""
        assert self.transport is not None
        key = request.header("sec-websocket-key")
        on_message = self.server.websocket(request) if self.server.websocket else None
        if on_message is None or key is None:
            return False
        try:
            from wsproto import ConnectionType
            from wsproto.connection import Connection
            from wsproto.utilities import generate_accept_token
        except ImportError:
            return False
        accept: bytes = generate_accept_token(key.encode())
        headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept),
        ]
        self.transport.write(
            self.h11.send(h11.InformationalResponse(status_code=101, headers=headers)) or b""
        )
        rest, _ = self.h11.trailing_data
        self._ws = Connection(ConnectionType.SERVER)
        self._on_message = on_message
        self.server.log_upgrade(request)
        if rest:
            self._ws.receive_data(bytes(rest))
            self._frames()
        return True

    def _frames(self) -> None:
        from wsproto.events import CloseConnection, Message, Ping, TextMessage

        assert self.transport is not None and self._on_message is not None
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._text.append(event.data)
                if sum(map(len, self._text)) > MAX_BODY:
                    self.transport.close()
                    return
                if event.message_finished:
                    answer = self._on_message("".join(self._text))
                    self._text = []
                    if answer is not None:
                        self.transport.write(self._ws.send(Message(data=answer)))
            elif isinstance(event, Ping):
                self.transport.write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.transport.write(self._ws.send(event.response()))
                self.transport.close()
                return

    def _send(self, reply: Reply) -> None:
        assert self.transport is not None
        headers = [("Server", "whitegoodsd-emulator"), ("Content-Type", reply.content_type)]
        if not reply.chunked:
            headers.append(("Content-Length", str(len(reply.body))))
        headers += reply.headers
        reason = _REASONS.get(reply.status, b"")
        data = self.h11.send(h11.Response(status_code=reply.status, headers=headers, reason=reason))
        data = data or b""
        half = len(reply.body) // 2 if reply.chunked else 0
        for piece in (reply.body[:half], reply.body[half:]):
            if piece:
                data += self.h11.send(h11.Data(data=piece)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > _MAX_UNSENT:
            self.transport.abort()

    def _fail(self, status: int, reason: str) -> None:
        assert self.transport is not None
        log.warning("%s: bad request from %s: %s", self.server.name, self.peer, reason[:80])
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self._send(Reply(status, b""))
            except h11.LocalProtocolError:
                pass
        self.transport.close()


class HttpServer:
    """A running HTTP plug: ``port``, ``connections``, ``close()``."""

    def __init__(
        self, name: str, handler: Handler, verbose: bool, describe: Callable[[Reply], str]
    ) -> None:
        self.name = name
        self.handler = handler
        self.verbose = verbose
        self.describe = describe
        self.misbehave: Misbehave | None = None
        self.websocket: Upgrade | None = None
        self.port = 0
        self.connections: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None

    def log_request(self, request: Request, reply: Reply) -> None:
        if self.verbose or log.isEnabledFor(logging.DEBUG):
            log.log(
                logging.INFO if self.verbose else logging.DEBUG,
                "%s http: %s %s from %s -> %s",
                self.name, request.method, request.target[:80], request.peer,
                self.describe(reply),
            )  # fmt: skip

    def log_upgrade(self, request: Request) -> None:
        if self.verbose:
            log.info("%s http: %s upgraded to a WebSocket", self.name, request.peer)

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.abort()
            await self._server.wait_closed()
            self._server = None


async def start_http(
    host: str,
    port: int,
    handler: Handler,
    *,
    name: str = "plug",
    verbose: bool = False,
    describe: Callable[[Reply], str] = lambda reply: str(reply.status),
) -> HttpServer:
    """Serve ``handler`` on ``host``:``port`` (0: a free port)."""
    server = HttpServer(name, handler, verbose, describe)
    loop = asyncio.get_running_loop()
    server._server = await loop.create_server(
        lambda: _Connection(server), host, port, reuse_address=True, backlog=128
    )
    server.port = server._server.sockets[0].getsockname()[1]
    return server

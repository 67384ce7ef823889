"""Emulated KLAP plugs: a Tapo P110 (SMART JSON) and a new-firmware Kasa KP115 (IOT JSON).

:class:`KlapServer` serves HTTP/1.1 (through h11, keep-alive as the plugs
allow it) on one TCP port: ``POST /app/handshake1``, ``/app/handshake2`` and
``/app/request?seq=N`` as the plugs do (``protocols/klap.py``), for the
account given with ``--username``/``--password`` and KLAP version 1 or 2.
Sessions last ``lifetime`` seconds; the ``TIMEOUT`` cookie says
``advertised`` seconds (the same, unless a test wants a plug whose clock
runs ahead).  Requests under an unknown or expired session get 403, as on
the plugs.  Inside, a :class:`~whitegoodsd.emulator.smart.SmartDevice` or a
:class:`~whitegoodsd.emulator.kasa.KasaDevice` answers.

With ``tpap`` the plug behaves as firmware that moved to TPAP without
"Third-Party Compatibility": handshake1 is refused with 403, and
``POST /`` answers the TPAP discovery request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import h11

from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.serve import Family, PlugServer
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import klap, tapo

log = logging.getLogger("whitegoodsd.emulator")

DEFAULT_USERNAME = "user@example.com"
DEFAULT_PASSWORD = "secret"
MAX_SESSIONS = 64  # the plugs keep very few; the oldest goes first
MAX_REQUEST = 16 * 1024


class Device(Protocol):
    alias: str

    def handle(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def summary(self, request: dict[str, Any]) -> str: ...


@dataclass
class _Session:
    version: int
    local_seed: bytes
    remote_seed: bytes
    auth: bytes
    ends: float
    keys: klap.Session | None = None  # set by handshake2


class KlapServer:
    """A running emulated KLAP plug: ``port``, ``device``, ``close()``."""

    def __init__(
        self,
        device: Device,
        host: str,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        version: int = 2,
        lifetime: float = 86_400,
        advertised: int | None = None,
        tpap: bool = False,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.host = host
        self.port = 0
        self.version = version
        self.auth = klap.auth_hash(version, username, password)
        self.lifetime = lifetime
        self.advertised = round(lifetime) if advertised is None else advertised
        self.tpap = tpap
        self.verbose = verbose
        self.clock = clock
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.handshakes = 0  # handshake2s that succeeded
        self.refused = 0  # handshake1s refused (tpap) and handshake2s that failed
        self.accepted = 0  # TCP connections
        self.connections: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None

    def forget(self) -> None:
        """Drop every session, as a plug does when it restarts."""
        self.sessions.clear()

    async def _bind(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, port, reuse_address=True, backlog=128
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.abort()
            await self._server.wait_closed()
            self._server = None

    # -- answering: (status, headers, body) for a whole request -----------------

    def answer(self, method: str, target: str, cookie: str | None, body: bytes) -> _Reply:
        path, _, query = target.partition("?")
        if method != "POST":
            return _Reply(405)
        if path == klap.HANDSHAKE1:
            return self._handshake1(body)
        if path == klap.HANDSHAKE2:
            return self._handshake2(cookie, body)
        if path == klap.REQUEST:
            return self._request(cookie, query, body)
        if path == "/":
            return self._tpap_probe(body)
        return _Reply(404)

    def _handshake1(self, body: bytes) -> _Reply:
        if self.tpap:
            self.refused += 1
            return _Reply(403)
        if len(body) != klap.SEED_SIZE:
            return _Reply(400)
        remote = os.urandom(klap.SEED_SIZE)
        sid = os.urandom(16).hex().upper()
        self.sessions[sid] = _Session(
            self.version, body, remote, self.auth, self.clock() + self.lifetime
        )
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        proof = klap.server_hash(self.version, body, remote, self.auth)
        cookie = f"{klap.COOKIE_SESSION}={sid};{klap.COOKIE_TIMEOUT}={self.advertised}"
        return _Reply(200, remote + proof, cookie)

    def _live(self, cookie: str | None) -> _Session | None:
        session = self.sessions.get(cookie or "")
        if session is not None and self.clock() >= session.ends:
            del self.sessions[cookie or ""]
            return None
        return session

    def _handshake2(self, cookie: str | None, body: bytes) -> _Reply:
        session = self._live(cookie)
        if session is None:
            return _Reply(403)
        expected = klap.client_hash(session.version, session.local_seed, session.remote_seed,
                                    session.auth)  # fmt: skip
        if body != expected:
            self.refused += 1
            del self.sessions[cookie or ""]
            return _Reply(403)
        session.keys = klap.Session(session.local_seed, session.remote_seed, session.auth)
        self.handshakes += 1
        return _Reply(200)

    def _request(self, cookie: str | None, query: str, body: bytes) -> _Reply:
        session = self._live(cookie)
        if session is None or session.keys is None:
            return _Reply(403)
        try:
            seq = klap.parse_seq(query)
            request = tapo.loads(session.keys.open_request(body, seq), "request")
        except ProtocolError as exc:
            log.warning("%s: bad request: %s", self.device.alias, exc)
            return _Reply(400)
        reply = self.device.handle(request)
        if self.verbose or log.isEnabledFor(logging.DEBUG):
            log.log(logging.INFO if self.verbose else logging.DEBUG, "%s klap: %s",
                    self.device.alias, self.device.summary(request))  # fmt: skip
        plain = json.dumps(reply, separators=(",", ":")).encode()
        return _Reply(200, session.keys.seal(plain, seq))

    def _tpap_probe(self, body: bytes) -> _Reply:
        try:
            request = tapo.loads(body, "request")
        except ProtocolError:
            return _Reply(400)
        params = request.get("params")
        if (
            self.tpap
            and request.get("method") == "login"
            and isinstance(params, dict)
            and params.get("sub_method") == "discover"
        ):
            result = {"mac": "3C-52-A1-00-00-00",
                      "tpap": {"tls": 0, "dac": False, "noc": False, "pake": [2], "port": 80,
                               "user_hash_type": 0}}  # fmt: skip
            return _Reply(200, tapo.reply(result), content_type="application/json")
        return _Reply(200, tapo.reply(error_code=tapo.BAD_REQUEST), content_type="application/json")


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    cookie: str | None = None
    content_type: str = "text/html"


_REASONS = {200: b"OK", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed"}  # fmt: skip


class _Connection(asyncio.Protocol):
    """One client connection: h11 parses, KlapServer answers."""

    def __init__(self, server: KlapServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        self._request: h11.Request | None = None
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(transport)
        self.server.accepted += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.connections.discard(self.transport)

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
                    if len(self._body) > MAX_REQUEST:
                        raise h11.RemoteProtocolError("request body too large", 413)
                elif isinstance(event, h11.EndOfMessage):
                    self._respond()
                elif isinstance(event, h11.ConnectionClosed):
                    self.transport.close()
                    return
        except h11.RemoteProtocolError:
            self.transport.close()

    def _respond(self) -> None:
        assert self.transport is not None and self._request is not None
        request = self._request
        cookie = None
        for name, value in request.headers:
            if name == b"cookie":
                for pair in value.decode("latin-1").split(";"):
                    key, _, content = pair.strip().partition("=")
                    if key == klap.COOKIE_SESSION:
                        cookie = content
        reply = self.server.answer(
            request.method.decode("latin-1"),
            request.target.decode("latin-1"),
            cookie,
            bytes(self._body),
        )
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
        if reply.cookie:
            headers.append(("Set-Cookie", reply.cookie))
        out = self.h11.send(
            h11.Response(status_code=reply.status, headers=headers,
                         reason=_REASONS.get(reply.status, b""))
        )  # fmt: skip
        out = (out or b"") + (self.h11.send(h11.Data(data=reply.body)) or b"")
        out += self.h11.send(h11.EndOfMessage()) or b""
        self.transport.write(out)
        if self.h11.our_state is h11.MUST_CLOSE:
            self.transport.close()


async def start_klap(
    host: str,
    port: int,
    device: Device,
    **options: Any,
) -> KlapServer:
    """Serve ``device`` over KLAP on ``host``:``port`` (0 picks a free port)."""
    server = KlapServer(device, host, **options)
    await server._bind(port)
    return server


# -- whitegoodsd emulate --driver tapo | kasa-klap --------------------------------


def add_arguments(group: argparse._ArgumentGroup) -> None:
    """``whitegoodsd emulate`` options for the KLAP plugs."""
    add = group.add_argument
    add(
        "--username",
        default=DEFAULT_USERNAME,
        metavar="E-MAIL",
        help=f"the TP-Link account the plug is bound to (default {DEFAULT_USERNAME})",
    )
    add(
        "--password",
        default=DEFAULT_PASSWORD,
        help=f"the account's password (default {DEFAULT_PASSWORD})",
    )
    add(
        "--klap",
        type=int,
        choices=klap.VERSIONS,
        default=None,
        help="KLAP version (default 2 for tapo, 1 for kasa-klap)",
    )
    add(
        "--session-lifetime",
        type=float,
        default=86_400.0,
        metavar="S",
        help="seconds a KLAP session lasts (default 86400)",
    )
    add(
        "--tpap",
        action="store_true",
        help="refuse KLAP, as TPAP firmware does without Third-Party Compatibility",
    )


def _options(args: argparse.Namespace | None, version: int) -> dict[str, Any]:
    if args is None:
        return {"version": version}
    return {
        "username": getattr(args, "username", DEFAULT_USERNAME),
        "password": getattr(args, "password", DEFAULT_PASSWORD),
        "version": getattr(args, "klap", None) or version,
        "lifetime": getattr(args, "session_lifetime", 86_400.0),
        "tpap": getattr(args, "tpap", False),
    }


async def _start_tapo(host: str, port: int, source: PowerSource, alias: str, index: int,
                      verbose: bool, args: argparse.Namespace | None) -> PlugServer:  # fmt: skip
    from whitegoodsd.emulator.smart import SmartDevice

    device = SmartDevice(source, alias=alias, index=index)
    return await start_klap(host, port, device, verbose=verbose, **_options(args, 2))


async def _start_kasa(host: str, port: int, source: PowerSource, alias: str, index: int,
                      verbose: bool, args: argparse.Namespace | None) -> PlugServer:  # fmt: skip
    from whitegoodsd.emulator.kasa import KasaDevice

    device = KasaDevice(source, shape="v2", alias=alias, index=index)
    return await start_klap(host, port, device, verbose=verbose, **_options(args, 1))


def _credentials(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    username = getattr(args, "username", DEFAULT_USERNAME)
    password = getattr(args, "password", DEFAULT_PASSWORD)
    return [("username", username), ("password", password)]


def _kasa_options(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    return [("protocol", "klap"), *_credentials(args)]


EMULATED = (
    Family("tapo", "tapo", klap.PORT, "TP-Link Tapo P110 (KLAP, SMART JSON)", _start_tapo,
           _credentials),
    Family("kasa-klap", "kasa", klap.PORT, "TP-Link Kasa KP115, new firmware (KLAP, IOT JSON)",
           _start_kasa, _kasa_options),
)  # fmt: skip

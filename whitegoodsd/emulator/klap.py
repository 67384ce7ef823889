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

The UDP port of the same number answers TP-Link's discovery probe (port
20002 on a real plug, ``protocols/tdp.py``).  With ``tpap`` the plug behaves
as firmware that moved to TPAP without "Third-Party Compatibility":
handshake1 is refused with 403, and ``POST /`` answers the TPAP discovery
request.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.httpserver import HttpServer, Reply, Request, start_http
from whitegoodsd.emulator.serve import Family, PlugServer
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import klap, tapo, tdp

log = logging.getLogger("whitegoodsd.emulator")

DEFAULT_USERNAME = "user@example.com"
DEFAULT_PASSWORD = "secret"
MAX_SESSIONS = 64  # the plugs keep very few; the oldest goes first


class Device(Protocol):
    alias: str

    def handle(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def summary(self, request: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class Answer:
    """The plug's answer to one request: what goes into the HTTP reply."""

    status: int
    body: bytes = b""
    cookie: str | None = None  # a Set-Cookie value
    content_type: str = "application/octet-stream"


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
        device_type: str = "SMART.TAPOPLUG",
        model: str = "P110(EU)",
        mac: str = "3C-52-A1-00-00-01",
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
        self.identity = {"device_type": device_type, "device_model": model, "mac": mac}
        self.verbose = verbose
        self.clock = clock
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self.handshakes = 0  # handshake2s that succeeded
        self.refused = 0  # handshake1s refused (tpap) and handshake2s that failed
        self._peers: set[str] = set()  # client addresses seen: one per TCP connection
        self.last_seq = 0  # of the last request opened
        self._http: HttpServer | None = None
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def accepted(self) -> int:
        """TCP connections that sent a request."""
        return len(self._peers)

    def forget(self) -> None:
        """Drop every session, as a plug does when it restarts."""
        self.sessions.clear()

    async def _bind(self, port: int) -> None:
        """TCP (HTTP) and UDP (discovery, as on 20002) on the same port number."""
        loop = asyncio.get_running_loop()
        attempts = 50 if port == 0 else 1
        for attempt in range(attempts):
            http = await start_http(self.host, port, self.respond, name=self.device.alias,
                                    verbose=False)  # fmt: skip
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _Discovery(self), local_addr=(self.host, http.port)
                )
            except OSError as exc:
                await http.close()
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise
                continue
            self._http, self._udp, self.port = http, udp, http.port
            return

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def discovery_reply(self, serial: int) -> bytes:
        """The answer to a discovery probe, as a plug gives it on UDP 20002."""
        encrypt = "TPAP" if self.tpap else "KLAP"
        result: dict[str, Any] = {
            **self.identity,
            "device_id": hashlib.sha256(self.identity["mac"].encode()).hexdigest()[:32],
            "owner": "",
            "ip": self.host,
            "is_support_iot_cloud": True,
            "obd_src": "tplink",
            "factory_default": False,
            "mgt_encrypt_schm": {"is_support_https": False, "encrypt_type": encrypt,
                                 "http_port": self.port, "lv": self.version},
        }  # fmt: skip
        return tdp.reply(result, serial)

    # -- answering: (status, headers, body) for a whole request -----------------

    def respond(self, request: Request) -> Reply:
        """The HTTP server's handler (``httpserver.py``)."""
        self._peers.add(request.peer)
        cookie = None
        for pair in (request.header("cookie") or "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name == klap.COOKIE_SESSION:
                cookie = value
        answer = self.answer(request.method, request.target, cookie, request.body)
        headers = (("Set-Cookie", answer.cookie),) if answer.cookie else ()
        return Reply(answer.status, answer.body, headers, answer.content_type)

    def answer(self, method: str, target: str, cookie: str | None, body: bytes) -> Answer:
        """The reply to one whole request."""
        path, _, query = target.partition("?")
        if method != "POST":
            return Answer(405)
        if path == klap.HANDSHAKE1:
            return self._handshake1(body)
        if path == klap.HANDSHAKE2:
            return self._handshake2(cookie, body)
        if path == klap.REQUEST:
            return self._request(cookie, query, body)
        if path == "/":
            return self._tpap_probe(body)
        return Answer(404)

    def _handshake1(self, body: bytes) -> Answer:
        if self.tpap:
            self.refused += 1
            return Answer(403)
        if len(body) != klap.SEED_SIZE:
            return Answer(400)
        remote = os.urandom(klap.SEED_SIZE)
        sid = os.urandom(16).hex().upper()
        self.sessions[sid] = _Session(
            self.version, body, remote, self.auth, self.clock() + self.lifetime
        )
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        proof = klap.server_hash(self.version, body, remote, self.auth)
        cookie = f"{klap.COOKIE_SESSION}={sid};{klap.COOKIE_TIMEOUT}={self.advertised}"
        return Answer(200, remote + proof, cookie)

    def _live(self, cookie: str | None) -> _Session | None:
        session = self.sessions.get(cookie or "")
        if session is not None and self.clock() >= session.ends:
            del self.sessions[cookie or ""]
            return None
        return session

    def _handshake2(self, cookie: str | None, body: bytes) -> Answer:
        session = self._live(cookie)
        if session is None:
            return Answer(403)
        expected = klap.client_hash(session.version, session.local_seed, session.remote_seed,
                                    session.auth)  # fmt: skip
        if body != expected:
            self.refused += 1
            del self.sessions[cookie or ""]
            return Answer(403)
        session.keys = klap.Session(session.local_seed, session.remote_seed, session.auth)
        self.handshakes += 1
        return Answer(200)

    def _request(self, cookie: str | None, query: str, body: bytes) -> Answer:
        session = self._live(cookie)
        if session is None or session.keys is None:
            return Answer(403)
        try:
            seq = klap.parse_seq(query)
            request = tapo.loads(session.keys.open_request(body, seq), "request")
            self.last_seq = seq
        except ProtocolError as exc:
            log.warning("%s: bad request: %s", self.device.alias, exc)
            return Answer(400)
        reply = self.device.handle(request)
        if self.verbose or log.isEnabledFor(logging.DEBUG):
            log.log(logging.INFO if self.verbose else logging.DEBUG, "%s klap: %s",
                    self.device.alias, self.device.summary(request))  # fmt: skip
        plain = json.dumps(reply, separators=(",", ":")).encode()
        return Answer(200, session.keys.seal(plain, seq))

    def _tpap_probe(self, body: bytes) -> Answer:
        try:
            request = tapo.loads(body, "request")
        except ProtocolError:
            return Answer(400)
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
            return Answer(200, tapo.reply(result), content_type="application/json")
        return Answer(200, tapo.reply(error_code=tapo.BAD_REQUEST), content_type="application/json")


class _Discovery(asyncio.DatagramProtocol):
    def __init__(self, server: KlapServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            tdp.parse_packet(data)
        except ProtocolError as exc:
            log.warning("%s: bad discovery probe: %s", self.server.device.alias, exc)
            return
        assert self.transport is not None
        serial = int.from_bytes(data[8:12], "big")
        self.transport.sendto(self.server.discovery_reply(serial), addr)

    def error_received(self, exc: Exception) -> None:
        pass


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


def add_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """``whitegoodsd emulate`` options for the KLAP plugs; ``--username`` and
    ``--password`` are shared with other families that take them."""
    for flag, text in (
        ("--username", f"the TP-Link account of a KLAP plug (default {DEFAULT_USERNAME})"),
        ("--password", f"its password (default {DEFAULT_PASSWORD})"),
    ):
        try:
            group.add_argument(flag, metavar=flag[2:].upper(), help=text)
        except argparse.ArgumentError:
            pass  # another family offers it already
    add = group.add_argument
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
        "username": getattr(args, "username", None) or DEFAULT_USERNAME,
        "password": getattr(args, "password", None) or DEFAULT_PASSWORD,
        "version": getattr(args, "klap", None) or version,
        "lifetime": getattr(args, "session_lifetime", 86_400.0),
        "tpap": getattr(args, "tpap", False),
    }


async def _start_tapo(host: str, port: int, source: PowerSource, alias: str, index: int,
                      verbose: bool, args: argparse.Namespace | None) -> PlugServer:  # fmt: skip
    from whitegoodsd.emulator.smart import SmartDevice

    device = SmartDevice(source, alias=alias, index=index)
    return await start_klap(host, port, device, verbose=verbose, mac=device.mac,
                            **_options(args, 2))  # fmt: skip


async def _start_kasa(host: str, port: int, source: PowerSource, alias: str, index: int,
                      verbose: bool, args: argparse.Namespace | None) -> PlugServer:  # fmt: skip
    from whitegoodsd.emulator.kasa import KasaDevice

    device = KasaDevice(source, shape="v2", alias=alias, index=index)
    mac = device.ids["mac"].replace(":", "-")
    return await start_klap(host, port, device, verbose=verbose, device_type="IOT.SMARTPLUGSWITCH",
                            model="KP115(EU)", mac=mac, **_options(args, 1))  # fmt: skip


def _credentials(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    username = getattr(args, "username", None) or DEFAULT_USERNAME
    password = getattr(args, "password", None) or DEFAULT_PASSWORD
    return [("username", username), ("password", password)]


def _kasa_options(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    return [("protocol", "klap"), *_credentials(args)]


EMULATED = (
    Family("tapo", "tapo", klap.PORT, "TP-Link Tapo P110 (KLAP, SMART JSON)", _start_tapo,
           _credentials),
    Family("kasa-klap", "kasa", klap.PORT, "TP-Link Kasa KP115, new firmware (KLAP, IOT JSON)",
           _start_kasa, _kasa_options),
)  # fmt: skip

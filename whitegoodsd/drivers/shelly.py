"""Shelly plugs over HTTP (port 80): Gen1 ``/meter/N``, Gen2/3/4 RPC.

A poll is one conversation around :mod:`whitegoodsd.protocols.shelly` over
:mod:`whitegoodsd.protocols.http`, on a fresh connection (kept for a second
request in the same poll when the plug allows it).

The first poll asks ``/shelly`` (no password needed) which generation the
plug is; the answer is kept.  A reply that no longer makes sense (a firmware
update, another device at the address) drops it, and the next poll asks
again.

* Gen1: ``GET /meter/N``, with HTTP Basic credentials when a password is set.
* Gen2+: ``GET /rpc/Switch.GetStatus?id=N``; a device without that component
  (a power meter without a relay) is asked ``PM1.GetStatus`` instead, and the
  method that worked is kept.  With a password, HTTP Digest (user ``admin``):
  the nonce of the last 401 is kept and reused, ``nc`` counting up, for as
  long as the plug accepts it, so that a poll costs one request, not two.

A 401 is retried once in a poll, with the fresh nonce it brought, and only
when the credentials just refused were made from an older nonce; refused
again, the poll fails with an AuthError ("the plug refused the password").
So a wrong password costs at most two requests and one log line per poll.
"""

from __future__ import annotations

import base64

from whitegoodsd.conversation import CLOSE, Connect, Conversation
from whitegoodsd.drivers.base import (
    PASSWORD,
    USERNAME,
    AuthError,
    Driver,
    Option,
    ProtocolError,
    Reading,
    format_address,
)
from whitegoodsd.protocols import digest, http, shelly


def parse_channel(text: str) -> int:
    if not text.isdigit() or not text.isascii() or int(text) > 255:
        raise ValueError(f"expected an output number from 0 to 255, got {text!r}")
    return int(text)


CHANNEL = Option(
    "channel",
    parse_channel,
    "which output (relay or meter) of a multi-channel device to read, from 0 (the default)",
    default=0,
    metavar="N",
)


def _status_line(response: http.Response) -> str:
    reason = response.reason.strip()[:40]
    return f"HTTP {response.status}" + (f" {reason}" if reason else "")


class ShellyPlug(Driver):
    """A Shelly Plug S, Plus Plug S, Plug S Gen3, Pro 1PM/2PM/4PM output, ..."""

    NAME = "shelly"
    DEFAULT_PORT = shelly.PORT
    DESCRIPTION = "Shelly Gen1 (/meter) and Gen2/3/4 (RPC, digest auth) plugs, HTTP 80"
    EMULATOR = "whitegoodsd.emulator.shelly"
    DISCOVERY = "whitegoodsd.discovery.shelly"
    OPTIONS = (
        CHANNEL,
        USERNAME,
        PASSWORD,
    )

    def setup(self) -> None:
        self.channel: int = self.options["channel"]
        self.password: str | None = self.options["password"]
        self.username: str = self.options["username"] or "admin"
        self.identity: shelly.Identity | None = None
        self.method: str | None = None  # the RPC method that answered
        self.digest = digest.Client(shelly.RPC_USER, self.password or "")
        self.identifications = 0
        self.challenges = 0  # 401s taken (each costs a request)
        self._host_header = format_address(
            self.host, None if self.port == shelly.PORT else self.port
        )
        self._open = False
        self._notes: list[str] = []

    def notes(self) -> list[str]:
        """What was learned since the last call: the generation, a new digest nonce."""
        taken, self._notes = self._notes, []
        return taken

    # -- one request --------------------------------------------------------------

    def _get(self, target: str, headers: list[tuple[str, str]]) -> Conversation[http.Response]:
        if not self._open:
            yield Connect(self.host, self.port or shelly.PORT)
        exchange = http.Exchange("GET", target, self._host_header, headers)
        self._open = False
        response = yield from http.request(exchange)
        self._open = response.keep_alive
        if not self._open:
            yield CLOSE
        return response

    # -- the poll -------------------------------------------------------------------

    def poll(self) -> Conversation[Reading]:
        self._open = False
        if self.identity is None:
            yield from self._identify()
        assert self.identity is not None
        try:
            if self.identity.gen == 1:
                return (yield from self._gen1())
            return (yield from self._rpc())
        except AuthError:
            raise
        except ProtocolError:
            self.identity = None  # ask /shelly again next time
            self.method = None
            raise

    def _identify(self) -> Conversation[None]:
        response = yield from self._get(shelly.IDENTIFY, [])
        if response.status != 200:
            raise ProtocolError(f"/shelly answered {_status_line(response)}: not a Shelly?")
        self.identity = found = shelly.parse_identity(response.body)
        self.identifications += 1
        firmware = f", firmware {found.firmware}" if found.firmware else ""
        auth = ", password set" if found.auth else ""
        self._notes.append(f"Shelly Gen{found.gen} {found.model}{firmware}{auth}")
        self.method = None
        self.digest.forget()

    def _gen1(self) -> Conversation[Reading]:
        headers = []
        if self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        response = yield from self._get(shelly.meter_target(self.channel), headers)
        if response.status == 401:
            if self.password is None:
                raise AuthError("plug asks for a password: set username and password")
            raise AuthError("the plug refused the user name or password (HTTP 401)")
        if response.status == 404:
            raise ProtocolError(f"no meter {self.channel} on this plug (HTTP 404)")
        if response.status != 200:
            raise ProtocolError(f"/meter/{self.channel} answered {_status_line(response)}")
        return shelly.parse_gen1_meter_reply(response.body)

    def _rpc(self) -> Conversation[Reading]:
        methods = [self.method] if self.method else list(shelly.METHODS)
        for method in methods:
            response = yield from self._authorised(shelly.rpc_target(method, self.channel))
            if response.status == 200:
                reading = shelly.parse_rpc_status(response.body, method)
                if method != self.method and method != shelly.SWITCH:
                    self._notes.append(f"read with {method}")
                self.method = method
                return reading
            error = shelly.rpc_error(_json_or_none(response.body))
            if error is not None and error[0] in shelly.NOT_HERE and method != methods[-1]:
                continue  # no such component: try the next method
            if error is not None:
                raise ProtocolError(f"{method} failed: {error[0]} {error[1]}".rstrip())
            raise ProtocolError(f"{method} answered {_status_line(response)}")
        raise ProtocolError("unreachable")  # pragma: no cover - the loop returns or raises

    def _authorised(self, target: str) -> Conversation[http.Response]:
        """GET ``target`` with digest credentials, answering at most one fresh challenge."""
        fresh = False  # whether the nonce in use came in this poll
        while True:
            headers = []
            value = self.digest.authorization("GET", target) if self.password else None
            if value is not None:
                headers.append(("Authorization", value))
            response = yield from self._get(target, headers)
            if response.status != 401:
                return response
            if self.password is None:
                raise AuthError("plug asks for a password: set password")
            if fresh:
                self.digest.forget()
                raise AuthError("the plug refused the password (HTTP 401)")
            challenges = [v for k, v in response.headers if k == "www-authenticate"]
            chosen = self.digest.challenge(challenges)
            self.challenges += 1
            self._notes.append(f"new digest nonce ({chosen.algorithm}, realm {chosen.realm[:40]})")
            fresh = True


def _json_or_none(body: bytes) -> object:
    try:
        return shelly.loads(body)
    except ProtocolError:
        return None


DRIVER = ShellyPlug

"""Watts Clever INPLUG (Ankuoo NEO PRO) over the Broadlink UDP protocol (port 80).

A poll is a conversation (see ``conversation.py``) around
:mod:`whitegoodsd.protocols.broadlink`, which
does all the packet work.  The first poll of a plug sends a unicast hello to
learn its device type and MAC (a NEO, type 0x2717, has no meter and is refused
with a clear error) and authenticates; later polls reuse the session and cost
one request and one reply.  A plug that restarted rejects the session (an
error code, or a reply that no longer decrypts): the poll authenticates again
and asks once more.  All of it runs inside the poll's timeout, so a pass is
never held up; if the time runs out, the next poll starts with the
authentication.

Replies are matched by packet counter; duplicates (plugs send every packet
twice), replies to other packets, short or corrupt datagrams and datagrams
from other addresses are dropped, and a poll that gets nothing better says
what it dropped.  A request without an answer is sent again every second or
so until the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from whitegoodsd.conversation import Connect, Conversation, Receive, Send
from whitegoodsd.drivers.base import Driver, PlugError, ProtocolError, Reading

if TYPE_CHECKING:  # imported with the first INPLUG: a Kasa-only daemon never loads it
    from whitegoodsd.protocols import broadlink

T = TypeVar("T")

RESEND_INTERVAL = 1.0


def _hello_reply(data: bytes) -> broadlink.DeviceInfo:
    from whitegoodsd.protocols import broadlink

    try:
        return broadlink.parse_hello_reply(data)
    except broadlink.Stray:
        raise
    except ProtocolError as exc:
        raise broadlink.Stray(str(exc)) from None


class InplugPlug(Driver):
    """A Watts Clever INPLUG, or any Broadlink SP2-family plug with a power meter.

    Sockets are opened per poll, not held between polls.  python-broadlink
    does the same with real plugs (a new socket per packet), so plugs do not
    tie a session to the client's port; no descriptor is held for an idle
    plug, so the monitor's cap on polls in flight also caps open sockets; and
    a new socket cannot hold stale datagrams from an earlier poll.  The
    session (device id and key) is what persists, in the codec's Client.
    """

    NAME = "inplug"
    DEFAULT_PORT = 80  # broadlink.PORT
    EMULATOR = "whitegoodsd.emulator.inplug"
    DISCOVERY = "whitegoodsd.discovery.inplug"
    DESCRIPTION = "Watts Clever INPLUG / Ankuoo NEO PRO (Broadlink, AES, UDP 80)"

    @classmethod
    def check(cls, host: str, port: int | None, options: Mapping[str, Any]) -> list[str]:
        if ":" in host:  # only an IPv6 literal has one
            return [
                "the inplug driver speaks IPv4 only (Broadlink plugs have no IPv6); "
                f"{host!r} is an IPv6 address"
            ]
        return []

    def setup(self) -> None:
        from whitegoodsd.protocols import broadlink

        self.client = broadlink.Client()
        self.info: broadlink.DeviceInfo | None = None
        self.authentications = 0
        self._dropped = 0  # datagrams dropped in this poll
        self._last_drop = ""

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        self._last_drop = reason

    def poll(self) -> Conversation[Reading]:
        """One poll; a timeout names what was dropped while waiting, if anything."""
        self._dropped = 0
        try:
            port = self.port or self.DEFAULT_PORT
            local = yield Connect(self.host, port, datagram=True, local=True)
            return (yield from self._poll(local))
        except TimeoutError as exc:
            if self._dropped:
                raise PlugError(
                    f"no answer within {self.timeout:g} s; ignored {self._dropped} "
                    f"datagram(s), the last: {self._last_drop}"
                ) from exc
            raise

    def _ask(self, packet: bytes, accept: Callable[[bytes], T]) -> Conversation[T]:
        """Send ``packet`` (again every second or so) until ``accept`` takes a reply.

        ``accept`` raises broadlink.Stray for a datagram to drop; the poll's
        deadline ends the asking.
        """
        from whitegoodsd.protocols import broadlink

        resend = min(RESEND_INTERVAL, max(0.05, self.timeout / 3))
        while True:
            yield Send(packet)
            until = time.monotonic() + resend
            while (remaining := until - time.monotonic()) > 0:
                data = yield Receive(within=remaining)
                if data is None:
                    break
                try:
                    return accept(data)
                except broadlink.Stray as exc:
                    self._drop(str(exc))

    def _poll(self, local: tuple[str, int]) -> Conversation[Reading]:
        import datetime as dt

        from whitegoodsd.protocols import broadlink

        if self.info is None:
            hello = broadlink.Hello(dt.datetime.now().astimezone(), local[0], local[1])
            info = yield from self._ask(broadlink.hello_request(hello), _hello_reply)
            self.client.learn(info)
            self.info = info
        if self.info.meters_power is False:
            raise ProtocolError(
                f"{self.info.model} cannot measure power; "
                f"only type 0x{broadlink.INPLUG:04X} (NEO PRO, INPLUG) has a meter"
            )
        if self.client.session is None:
            yield from self._authenticate()
        try:
            payload = yield from self._power()
        except broadlink.SessionRejected:
            yield from self._authenticate()
            try:
                payload = yield from self._power()
            except broadlink.SessionRejected as exc:
                raise ProtocolError(f"{exc}, even after a new authentication") from None
        return Reading(power_mw=broadlink.parse_power(payload))

    def _authenticate(self) -> Conversation[None]:
        yield from self._ask(self.client.auth_request(), self.client.receive)
        self.authentications += 1

    def _power(self) -> Conversation[bytes]:
        from whitegoodsd.protocols import broadlink

        request = self.client.control_request(broadlink.Control.GET_POWER)
        return (yield from self._ask(request, self.client.receive))


DRIVER = InplugPlug

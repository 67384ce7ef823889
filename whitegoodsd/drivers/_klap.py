"""A KLAP session with one plug, kept across polls: the part the kasa and tapo
families share.

:class:`KlapClient` holds the session (keys, cookie, when it ends) between
polls and offers :meth:`~KlapClient.call`, a conversation step that sends one
plaintext request and returns the plaintext reply.  Each poll starts with
:meth:`~KlapClient.begin`: a fresh TCP connection, on which several HTTP
requests of the poll go one after another while the plug allows keep-alive
(otherwise each gets a new connection).

The handshake happens when there is no session, when the one held is near the
end of the lifetime the plug gave it (``TIMEOUT`` less a margin, as the plugs'
clocks drift), and when the plug answers a request with 403 or with something
that does not decrypt (it forgot the session: it restarted, or its clock ran
ahead).  Then it happens inside the same poll, once; the request is sent again.
A session half made when the poll's time runs out is dropped.

One handshake1 reply is checked against the configured credentials and every
well-known default, for both KLAP versions, so the plug's version needs no
setting and no extra round trip.  Which one matched is kept as a note the
monitor logs at debug level.  A plug whose firmware moved to TPAP answers
handshake1 with 403; that is said in one line, and the next try is at the next
poll.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from whitegoodsd.conversation import Connect, Conversation
from whitegoodsd.errors import AuthError, PlugError, ProtocolError
from whitegoodsd.protocols import http, klap

TPAP_REFUSAL = (
    'the plug refuses KLAP (TPAP firmware): switch on "Third-Party Compatibility" '
    "in the Tapo app (Me > Third-Party Services)"
)
NO_KLAP = (
    "the plug does not speak KLAP (HTTP 404 at /app/handshake1): its firmware predates it; "
    "update the plug's firmware in the vendor's app"
)
MARGIN = 20 * 60  # seconds before the plug's TIMEOUT when a new session is made


def _status(response: http.Response) -> str:
    reason = "".join(c for c in response.reason[:40] if c.isprintable())
    return f"HTTP {response.status} {reason}".rstrip()


@dataclass
class _Live:
    session: klap.Session
    cookie: str
    version: int
    ends: float  # time.monotonic() after which a new handshake is due


class KlapClient:
    """The KLAP side of a plug's driver."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.configured = username is not None or password is not None
        own = (
            [klap.Credentials("the configured credentials", username or "", password or "")]
            if self.configured
            else []
        )
        self.candidates: Sequence[klap.Credentials] = (*own, *klap.DEFAULT_CREDENTIALS)
        self.clock = clock
        self.live: _Live | None = None
        self.handshakes = 0
        self.credentials: klap.Credentials | None = None  # the ones the plug took last
        self.notes: list[str] = []
        self._connected = False

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    def begin(self) -> Conversation[None]:
        """Open this poll's connection."""
        yield Connect(self.host, self.port)
        self._connected = True

    def _post(self, target: str, body: bytes, cookie: str | None) -> Conversation[http.Response]:
        if not self._connected:
            yield Connect(self.host, self.port)
        headers = [("Content-Type", klap.CONTENT_TYPE), ("Accept", "*/*")]
        if cookie is not None:
            headers.append(("Cookie", f"{klap.COOKIE_SESSION}={cookie}"))
        exchange = http.Exchange("POST", target, self.target, headers, body, klap.MAX_BODY)
        self._connected = False  # until the reply says the connection may be reused
        response = yield from http.request(exchange)
        self._connected = response.keep_alive
        return response

    def call(self, plaintext: bytes) -> Conversation[bytes]:
        """Send one request under the session (made first if due); its reply.

        A session the plug has forgotten is made again and the request sent
        once more, inside the same poll.
        """
        fresh = False
        if self.live is None or self.clock() >= self.live.ends:
            yield from self.handshake()
            fresh = True
        try:
            return (yield from self._request(plaintext))
        except klap.SessionEnded:
            if fresh:
                raise
        yield from self.handshake()
        try:
            return (yield from self._request(plaintext))
        except klap.SessionEnded as exc:
            raise ProtocolError(f"{exc}, even after a new handshake") from None

    def forget(self) -> None:
        """Drop the session (the plug said it timed out)."""
        self.live = None

    def _request(self, plaintext: bytes) -> Conversation[bytes]:
        live = self.live
        assert live is not None
        seq, body = live.session.next_request(plaintext)
        response = yield from self._post(klap.request_target(seq), body, live.cookie)
        if response.status in (401, 403):
            self.live = None
            raise klap.SessionEnded(f"the plug ended the session (HTTP {response.status})")
        if response.status != 200:
            raise ProtocolError(f"request answered {_status(response)}")
        try:
            return live.session.open(response.body, seq)
        except klap.SessionEnded:
            self.live = None
            raise

    def handshake(self) -> Conversation[None]:
        """handshake1 and handshake2; the session is kept only once both succeed."""
        self.live = None
        local_seed = os.urandom(klap.SEED_SIZE)
        response = yield from self._post(klap.HANDSHAKE1, local_seed, None)
        if response.status == 403:
            raise PlugError(TPAP_REFUSAL)
        if response.status == 404:
            raise ProtocolError(NO_KLAP)
        if response.status != 200:
            raise ProtocolError(f"handshake1 answered {_status(response)}")
        cookie, lifetime = klap.session_cookies(response.cookies())
        found = None
        for version in (2, 1):
            try:
                found = klap.match(version, local_seed, response.body, self.candidates)
            except AuthError:
                continue
            break
        if found is None:
            if self.configured:
                raise AuthError(
                    "the plug refused the username and password (and every default credential)"
                )
            raise AuthError("the plug needs its owner's TP-Link account: set username and password")
        credentials, auth, remote_seed = found
        proof = klap.client_hash(version, local_seed, remote_seed, auth)
        response = yield from self._post(klap.HANDSHAKE2, proof, cookie)
        if response.status != 200:
            raise ProtocolError(f"handshake2 answered {_status(response)}")
        ends = self.clock() + lifetime - min(MARGIN, lifetime / 4)
        self.live = _Live(klap.Session(local_seed, remote_seed, auth), cookie, version, ends)
        self.handshakes += 1
        if credentials != self.credentials:
            self.credentials = credentials
            self.notes.append(f"KLAP v{version} session with {credentials.label}")

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

"""HTTP Digest access authentication (RFC 7616), both ends, without I/O.

Shelly Gen2+ plugs protect their RPC with Digest (SHA-256, ``qop=auth``, user
``admin``, realm = the device id); the emulator checks what the driver and
other clients send.  Only ``qop=auth`` is spoken (``auth-int`` hashes the
body, which no plug asks for); MD5, SHA-256 and their ``-sess`` variants are.

The client side is a :class:`Client`: give it the ``WWW-Authenticate``
values of a 401 (:meth:`Client.challenge`), then ask it for an
``Authorization`` value per request (:meth:`Client.authorization`).  It keeps
the nonce and counts ``nc`` up, so that a server that accepts a nonce for a
while (Shelly firmware 2.0 and later: an hour) costs one round trip per
request, not two.

The server side is :func:`challenge_header`, :func:`parse_credentials` and
:func:`expected_response`.

Header values come from the network: parsing is bounded by their length and
every failure is a ProtocolError with a one-line reason.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from whitegoodsd.errors import ProtocolError

MAX_PARAMETERS = 32
# Strongest first: what a client picks when a server offers several.
ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
}
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAMETER = re.compile(
    rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*(?:,|$)', re.DOTALL
)
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")


def _hasher(algorithm: str) -> Callable[[bytes], str]:
    base = algorithm.upper().removesuffix("-SESS")
    try:
        return ALGORITHMS[base]
    except KeyError:
        raise ProtocolError(f"unsupported digest algorithm {algorithm[:20]!r}") from None


def quote(value: str) -> str:
    """``value`` as an HTTP quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_parameters(text: str) -> dict[str, str]:
    """``name=value, name="quoted"`` as a dict (names lower-cased)."""
    found: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _PARAMETER.match(text, position)
        if match is None or match.end() == position:
            raise ProtocolError(f"malformed auth parameters near {text[position:][:30]!r}")
        name, quoted, token = match.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
        found[name.lower()] = value
        if len(found) > MAX_PARAMETERS:
            raise ProtocolError("too many auth parameters")
        position = match.end()
    return found


def parse_challenges(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Every ``scheme params`` challenge in ``WWW-Authenticate`` header values.

    A value may hold several challenges (``Digest realm=.., Basic realm=..``):
    a new one starts where a token is followed by a space, not by ``=``.
    """
    found: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pieces = _split_challenges(value)
        for scheme, params in pieces:
            found.append((scheme, parse_parameters(params)))
            if len(found) > MAX_PARAMETERS:
                raise ProtocolError("too many auth challenges")
    return found


def _split_challenges(value: str) -> list[tuple[str, str]]:
    pieces: list[tuple[str, str]] = []
    position = 0
    while position < len(value):
        if value[position] in " ,":
            position += 1
            continue
        scheme = _SCHEME.match(value, position)
        if scheme is None:
            raise ProtocolError(f"malformed auth challenge near {value[position:][:30]!r}")
        start = position = scheme.end()
        while position < len(value):
            parameter = _PARAMETER.match(value, position)
            if parameter is None:
                break
            position = parameter.end()
        pieces.append((scheme.group(1), value[start:position].rstrip(" ,")))
        if position == start and position < len(value) and value[position] not in " ,":
            raise ProtocolError(f"malformed auth challenge near {value[position:][:30]!r}")
    return pieces


@dataclass(frozen=True)
class Challenge:
    """What a server asked for in a Digest ``WWW-Authenticate``."""

    realm: str
    nonce: str
    algorithm: str = "MD5"  # RFC 7616: absent means MD5
    opaque: str | None = None
    stale: bool = False
    qop: bool = True  # the server offered qop=auth (else the RFC 2069 form)


def pick_challenge(values: Iterable[str]) -> Challenge:
    """The strongest Digest challenge with ``qop=auth`` (or none) that we speak."""
    usable: list[Challenge] = []
    schemes: list[str] = []
    for scheme, params in parse_challenges(values):
        schemes.append(scheme)
        if scheme.lower() != "digest":
            continue
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm.removesuffix("-SESS") not in ALGORITHMS:
            continue
        qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            continue  # auth-int only
        if "realm" not in params or "nonce" not in params:
            raise ProtocolError("digest challenge without realm or nonce")
        usable.append(
            Challenge(
                realm=params["realm"],
                nonce=params["nonce"],
                algorithm=algorithm,
                opaque=params.get("opaque"),
                stale=params.get("stale", "").lower() == "true",
                qop=bool(qops),
            )
        )
    if not usable:
        offered = ", ".join(dict.fromkeys(s[:20] for s in schemes)) or "nothing"
        raise ProtocolError(f"no usable digest challenge (offered: {offered})")
    order = list(ALGORITHMS)
    return min(usable, key=lambda c: (order.index(c.algorithm.removesuffix("-SESS")), c.algorithm))


def response_hash(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None,
    cnonce: str | None,
    qop: str | None,
) -> str:
    """The ``response`` value of RFC 7616 section 3.4.1 (``qop`` auth or None)."""
    h = _hasher(algorithm)
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


class Client:
    """Digest credentials for one server, with the nonce it last gave.

    ``nc`` counts the requests made with the current nonce; a new challenge
    starts it again at 1.  ``cnonce`` makes the client nonce (tests fix it).
    """

    def __init__(
        self,
        username: str,
        password: str,
        cnonce: Callable[[], str] = lambda: os.urandom(8).hex(),
    ) -> None:
        self.username = username
        self.password = password
        self._cnonce = cnonce
        self.current: Challenge | None = None
        self.nc = 0

    def challenge(self, values: Iterable[str]) -> Challenge:
        """Take a 401's ``WWW-Authenticate`` values; the challenge now in use."""
        chosen = pick_challenge(values)
        self.current = chosen
        self.nc = 0
        return chosen

    def forget(self) -> None:
        """Drop the nonce (the next request goes without credentials)."""
        self.current = None
        self.nc = 0

    def authorization(self, method: str, uri: str) -> str | None:
        """The ``Authorization`` value for the next request; None before a challenge."""
        chosen = self.current
        if chosen is None:
            return None
        self.nc += 1
        nc = f"{self.nc:08x}"
        cnonce = self._cnonce() if chosen.qop or chosen.algorithm.endswith("-SESS") else None
        qop = "auth" if chosen.qop else None
        response = response_hash(
            chosen.algorithm, self.username, chosen.realm, self.password,
            method, uri, chosen.nonce, nc if qop else None, cnonce, qop,
        )  # fmt: skip
        fields = [
            f"username={quote(self.username)}",
            f"realm={quote(chosen.realm)}",
            f"nonce={quote(chosen.nonce)}",
            f"uri={quote(uri)}",
            f"algorithm={chosen.algorithm}",
            f"response={quote(response)}",
        ]
        if qop:
            fields += [f"qop={qop}", f"nc={nc}", f"cnonce={quote(cnonce or '')}"]
        if chosen.opaque is not None:
            fields.append(f"opaque={quote(chosen.opaque)}")
        return "Digest " + ", ".join(fields)


# -- the server side --------------------------------------------------------------


def challenge_header(
    realm: str, nonce: str, algorithm: str = "SHA-256", *, stale: bool = False
) -> str:
    """A ``WWW-Authenticate`` value asking for Digest with ``qop=auth``."""
    _hasher(algorithm)
    value = f"Digest qop={quote('auth')}, realm={quote(realm)}, nonce={quote(nonce)}"
    value += f", algorithm={algorithm}"
    return value + (", stale=true" if stale else "")


@dataclass(frozen=True)
class Credentials:
    """What a client sent in ``Authorization: Digest ...``."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str | None
    nc: str | None
    cnonce: str | None

    @property
    def count(self) -> int:
        """``nc`` as a number (0 when absent)."""
        try:
            return int(self.nc or "0", 16)
        except ValueError:
            raise ProtocolError(f"nc is not hexadecimal: {self.nc!r:.20}") from None


def parse_credentials(value: str) -> Credentials:
    """An ``Authorization`` value; ProtocolError unless it is well-formed Digest."""
    scheme = _SCHEME.match(value)
    if scheme is None or scheme.group(1).lower() != "digest":
        raise ProtocolError("not Digest credentials")
    params = parse_parameters(value[scheme.end() :])
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in params]
    if missing:
        raise ProtocolError(f"digest credentials without {', '.join(missing)}")
    qop = params.get("qop")
    if qop is not None and qop.lower() != "auth":
        raise ProtocolError(f"unsupported qop {qop[:20]!r}")
    if qop is not None and ("nc" not in params or "cnonce" not in params):
        raise ProtocolError("qop=auth credentials without nc or cnonce")
    algorithm = params.get("algorithm", "MD5").upper()
    _hasher(algorithm)
    return Credentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"].lower(),
        algorithm=algorithm,
        qop=qop.lower() if qop else None,
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
    )


def expected_response(credentials: Credentials, method: str, password: str) -> str:
    """The ``response`` a client knowing ``password`` would have sent."""
    c = credentials
    return response_hash(
        c.algorithm, c.username, c.realm, password, method, c.uri, c.nonce, c.nc, c.cnonce, c.qop
    )

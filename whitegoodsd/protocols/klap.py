"""TP-Link KLAP (versions 1 and 2), without I/O: handshakes, session keys, sealing.

KLAP is how newer Kasa firmware and the Tapo plugs guard their JSON over HTTP
port 80.  Three POSTs make and use a session:

1. ``/app/handshake1``: the client sends a 16-byte random *local seed*; the
   plug answers 48 bytes, its *remote seed* (16) and a *server hash* (32)
   that proves it knows the owner's auth hash.  The client checks the server
   hash against every auth hash it may hold (the user's credentials, then
   the well-known defaults of unprovisioned plugs): none matching means the
   credentials are wrong, and nothing more is sent.  The plug's cookies
   ``TP_SESSIONID`` and ``TIMEOUT`` (seconds) name and bound the session.
2. ``/app/handshake2``: the client proves its own knowledge of the hash.
3. ``/app/request?seq=N``: each request is AES-128-CBC with PKCS#7 padding,
   under a key and IV derived from both seeds and the auth hash; the IV ends
   in the request's sequence number, which goes up by one per request.  The
   body is ``sha256(signature key + seq + ciphertext) + ciphertext``; the
   reply comes back framed alike, under the same key and IV.

==========  =====================================  ====================================
            version 1 (Kasa IOT)                   version 2 (Tapo SMART, new Kasa)
==========  =====================================  ====================================
auth hash   md5(md5(username) + md5(password))     sha256(sha1(username) + sha1(password))
handshake1  sha256(local + auth)                   sha256(local + remote + auth)
handshake2  sha256(remote + auth)                  sha256(remote + local + auth)
==========  =====================================  ====================================

Both sides live here: :class:`Session` seals requests and opens replies for a
client, and opens requests and seals replies for a plug (the emulator).  A
reply that does not decrypt raises :class:`SessionEnded`, which is what a
plug's answer under a session it has forgotten looks like.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from whitegoodsd.errors import AuthError, ProtocolError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

PORT = 80
VERSIONS = (1, 2)
SEED_SIZE = 16
HASH_SIZE = 32
SIGNATURE_SIZE = 32
BLOCK = 16
DEFAULT_TIMEOUT = 86_400  # seconds, when the plug sends no TIMEOUT cookie
MAX_TIMEOUT = 7 * 86_400  # a larger TIMEOUT cookie is believed only this far
MAX_BODY = 64 * 1024

HANDSHAKE1 = "/app/handshake1"
HANDSHAKE2 = "/app/handshake2"
REQUEST = "/app/request"
COOKIE_SESSION = "TP_SESSIONID"
COOKIE_TIMEOUT = "TIMEOUT"
CONTENT_TYPE = "application/octet-stream"

_SEQ = struct.Struct(">i")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Credentials:
    """A username and password, with a label saying where they came from."""

    label: str  # "the configured credentials", "the default KASA credentials", ...
    username: str
    password: str


# Unprovisioned plugs (and some that were ever bound to the cloud) answer
# handshake1 with one of these instead of the owner's hash; tried in this order
# after the user's own.
DEFAULT_CREDENTIALS: tuple[Credentials, ...] = (
    Credentials("the default KASA credentials", "kasa@tp-link.net", "kasaSetup"),
    Credentials("the default KASA camera credentials", "admin",
                "21232f297a57a5a743894a0e4a801fc3"),
    Credentials("the default TAPO credentials", "test@tp-link.net", "test"),
    Credentials("the default TAPO camera credentials", "admin", "admin"),
    Credentials("the default TAPO camera (lv3) credentials", "admin", "TPL075526460603"),
    Credentials("blank credentials", "", ""),
)  # fmt: skip


def _check_version(version: int) -> None:
    if version not in VERSIONS:
        raise ValueError(f"KLAP version {version!r} (1 or 2)")


def auth_hash(version: int, username: str, password: str) -> bytes:
    """The secret both sides derive from the account's username and password."""
    _check_version(version)
    user, secret = username.encode(), password.encode()
    if version == 1:
        return hashlib.md5(hashlib.md5(user).digest() + hashlib.md5(secret).digest()).digest()
    return hashlib.sha256(hashlib.sha1(user).digest() + hashlib.sha1(secret).digest()).digest()


def server_hash(version: int, local_seed: bytes, remote_seed: bytes, auth: bytes) -> bytes:
    """What the plug sends after its seed in the handshake1 reply."""
    _check_version(version)
    if version == 1:
        return hashlib.sha256(local_seed + auth).digest()
    return hashlib.sha256(local_seed + remote_seed + auth).digest()


def client_hash(version: int, local_seed: bytes, remote_seed: bytes, auth: bytes) -> bytes:
    """The handshake2 body: the client's proof."""
    _check_version(version)
    if version == 1:
        return hashlib.sha256(remote_seed + auth).digest()
    return hashlib.sha256(remote_seed + local_seed + auth).digest()


def parse_handshake1(body: bytes) -> tuple[bytes, bytes]:
    """The handshake1 reply as (remote seed, server hash)."""
    if len(body) != SEED_SIZE + HASH_SIZE:
        raise ProtocolError(f"handshake1 reply is {len(body)} bytes, not {SEED_SIZE + HASH_SIZE}")
    return body[:SEED_SIZE], body[SEED_SIZE:]


def match(
    version: int,
    local_seed: bytes,
    body: bytes,
    candidates: Iterable[Credentials],
) -> tuple[Credentials, bytes, bytes]:
    """The candidate whose hash the plug proved, with its auth hash and the remote seed.

    AuthError when none matches: the plug knows other credentials.
    """
    remote_seed, proof = parse_handshake1(body)
    for candidate in candidates:
        auth = auth_hash(version, candidate.username, candidate.password)
        if hmac.compare_digest(server_hash(version, local_seed, remote_seed, auth), proof):
            return candidate, auth, remote_seed
    raise AuthError("the plug refused the credentials (handshake1 hash matches none)")


def session_cookies(cookies: Mapping[str, str]) -> tuple[str, int]:
    """``TP_SESSIONID`` and ``TIMEOUT`` (seconds, bounded) from handshake1's cookies."""
    session = cookies.get(COOKIE_SESSION)
    if not session:
        raise ProtocolError(f"handshake1 reply sets no {COOKIE_SESSION} cookie")
    if len(session) > 256 or not session.isprintable() or ";" in session:
        raise ProtocolError(f"handshake1 reply sets a malformed {COOKIE_SESSION}")
    text = cookies.get(COOKIE_TIMEOUT, "")
    timeout = int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0
    return session, min(timeout, MAX_TIMEOUT) if timeout > 0 else DEFAULT_TIMEOUT


class SessionEnded(ProtocolError):
    """The other side no longer holds this session: a new handshake is due."""


def _next_seq(seq: int) -> int:
    return _INT32_MIN if seq >= _INT32_MAX else seq + 1


class Session:
    """The keys of one KLAP session, and sealing and opening under them.

    A client calls :meth:`seal` (which steps the sequence number) and
    :meth:`open` with that number; a plug calls :meth:`open_request` and
    :meth:`seal` with the number the client sent.
    """

    def __init__(self, local_seed: bytes, remote_seed: bytes, auth: bytes) -> None:
        material = local_seed + remote_seed + auth
        self.key = hashlib.sha256(b"lsk" + material).digest()[:16]
        derived = hashlib.sha256(b"iv" + material).digest()
        self.iv_prefix = derived[:12]
        self.seq: int = _SEQ.unpack(derived[28:32])[0]
        self.sig_key = hashlib.sha256(b"ldk" + material).digest()[:28]

    def _cipher(self, seq: int) -> Cipher[modes.CBC]:
        # imported here: a daemon with legacy Kasa plugs only never loads cryptography
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(self.key), modes.CBC(self.iv_prefix + _SEQ.pack(seq)))

    def signature(self, seq: int, ciphertext: bytes) -> bytes:
        return hashlib.sha256(self.sig_key + _SEQ.pack(seq) + ciphertext).digest()

    def next_request(self, plaintext: bytes) -> tuple[int, bytes]:
        """Step the sequence number and seal ``plaintext`` under it: (seq, body)."""
        self.seq = _next_seq(self.seq)
        return self.seq, self.seal(plaintext, self.seq)

    def seal(self, plaintext: bytes, seq: int) -> bytes:
        """``signature + ciphertext`` of ``plaintext`` under sequence number ``seq``."""
        from cryptography.hazmat.primitives import padding

        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = self._cipher(seq).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        return self.signature(seq, ciphertext) + ciphertext

    def open(self, body: bytes, seq: int) -> bytes:
        """The plaintext of a body sealed under ``seq`` (the signature is not
        checked, as the plugs' own clients do not); SessionEnded if it does
        not decrypt."""
        ciphertext = body[SIGNATURE_SIZE:]
        if len(body) > MAX_BODY:
            raise ProtocolError(f"encrypted body over {MAX_BODY:,} bytes")
        if not ciphertext or len(ciphertext) % BLOCK:
            raise SessionEnded(
                f"encrypted body of {len(body)} bytes is not a signature and whole AES blocks"
            )
        decryptor = self._cipher(seq).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        from cryptography.hazmat.primitives import padding

        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise SessionEnded("the reply does not decrypt under this session") from None

    def open_request(self, body: bytes, seq: int) -> bytes:
        """A plug's side: check the request's signature, then open it."""
        if len(body) < SIGNATURE_SIZE or not hmac.compare_digest(
            body[:SIGNATURE_SIZE], self.signature(seq, body[SIGNATURE_SIZE:])
        ):
            raise SessionEnded("request signature does not match the session")
        return self.open(body, seq)


def parse_seq(query: str) -> int:
    """The ``seq`` of a request target's query (``seq=-123``), as a signed 32-bit int."""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "seq":
            try:
                seq = int(value, 10) if len(value) <= 12 else None
            except ValueError:
                seq = None
            if seq is None or not _INT32_MIN <= seq <= _INT32_MAX:
                raise ProtocolError(f"bad seq {value[:20]!r}")
            return seq
    raise ProtocolError("request has no seq")


def request_target(seq: int) -> str:
    return f"{REQUEST}?seq={seq}"

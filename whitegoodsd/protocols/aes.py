"""AES-128 in CBC mode (FIPS-197, SP 800-38A), in pure Python, without I/O.

What the Broadlink protocol needs: a few 16-byte blocks per poll under a
known or per-session key.  A library for that would map several MiB of
native code into a daemon that polls an INPLUG once a minute; this module
costs a few kilobytes of tables and some tens of microseconds per block.

The tables are computed at import from the definitions (the S-box as the
multiplicative inverse in GF(2^8) followed by the affine map), so nothing
here is a transcribed constant beyond the field's polynomial and the affine
constant 0x63.  Encryption uses the usual 32-bit round tables; decryption
uses the equivalent inverse cipher (FIPS-197 section 5.3.5).  It is not
written to resist timing analysis: the Broadlink protocol's first key and
IV are public, and a session key lives for one plug on one LAN.

It is checked against the FIPS-197 and SP 800-38A vectors and, in the
tests, against ``cryptography`` on random keys and messages.
"""

from __future__ import annotations

from functools import lru_cache

from whitegoodsd.errors import ProtocolError

BLOCK = 16
ROUNDS = 10  # AES-128


def _times(a: int, b: int) -> int:
    """a * b in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a = (a << 1) ^ (0x11B if a & 0x80 else 0)
        b >>= 1
    return product


def _tables() -> tuple[list[int], list[int], list[list[int]], list[list[int]]]:
    # 3 generates the field's multiplicative group: the inverse of 3^i is 3^(255-i).
    power = [1] * 256
    for i in range(1, 256):
        power[i] = _times(power[i - 1], 3)
    inverse = [0] * 256
    for i in range(255):
        inverse[power[i]] = power[255 - i]
    sbox = [0] * 256
    for x in range(256):
        b = inverse[x]
        s = b
        for shift in range(1, 5):
            s ^= ((b << shift) | (b >> (8 - shift))) & 0xFF
        sbox[x] = s ^ 0x63
    inv_sbox = [0] * 256
    for x, s in enumerate(sbox):
        inv_sbox[s] = x

    def rotations(word: list[int]) -> list[list[int]]:
        return [[(w >> n) | ((w << (32 - n)) & 0xFFFFFFFF) for w in word] for n in (0, 8, 16, 24)]

    te = [
        (_times(s, 2) << 24) | (s << 16) | (s << 8) | _times(s, 3) for s in sbox
    ]  # column (2s, s, s, 3s): MixColumns of SubBytes
    td = [
        (_times(s, 14) << 24) | (_times(s, 9) << 16) | (_times(s, 13) << 8) | _times(s, 11)
        for s in inv_sbox
    ]  # column (14s, 9s, 13s, 11s): InvMixColumns of InvSubBytes
    return sbox, inv_sbox, rotations(te), rotations(td)


_S, _SI, (_TE0, _TE1, _TE2, _TE3), (_TD0, _TD1, _TD2, _TD3) = _tables()


@lru_cache(maxsize=64)  # a key per plug session: a few at once
def _schedule(key: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The round keys for encryption, and those of the equivalent inverse cipher."""
    if len(key) != 16:
        raise ProtocolError(f"AES-128 key of {len(key)} bytes, not 16")
    w = [int.from_bytes(key[i : i + 4], "big") for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 4 * (ROUNDS + 1)):
        t = w[i - 1]
        if i % 4 == 0:
            t = ((t << 8) & 0xFFFFFFFF) | (t >> 24)  # RotWord
            t = (
                (_S[t >> 24] << 24) | (_S[(t >> 16) & 255] << 16)
                | (_S[(t >> 8) & 255] << 8) | _S[t & 255]
            ) ^ (rcon << 24)  # fmt: skip
            rcon = _times(rcon, 2)
        w.append(w[i - 4] ^ t)
    decrypting: list[int] = []
    for r in range(ROUNDS, -1, -1):
        for word in w[4 * r : 4 * r + 4]:
            if 0 < r < ROUNDS:  # InvMixColumns, through the tables: Td(S(x)) = InvMix(x)
                word = (
                    _TD0[_S[word >> 24]] ^ _TD1[_S[(word >> 16) & 255]]
                    ^ _TD2[_S[(word >> 8) & 255]] ^ _TD3[_S[word & 255]]
                )  # fmt: skip
            decrypting.append(word)
    return tuple(w), tuple(decrypting)


def _last(box: list[int], a: int, b: int, c: int, d: int) -> int:
    """A column of the last round: (Inv)SubBytes and (Inv)ShiftRows, no mixing."""
    return (
        (box[a >> 24] << 24)
        | (box[(b >> 16) & 255] << 16)
        | (box[(c >> 8) & 255] << 8)
        | box[d & 255]
    )


def _encrypt_block(k: tuple[int, ...], s0: int, s1: int, s2: int, s3: int) -> tuple[int, ...]:
    te0, te1, te2, te3 = _TE0, _TE1, _TE2, _TE3
    s0 ^= k[0]
    s1 ^= k[1]
    s2 ^= k[2]
    s3 ^= k[3]
    for r in range(4, 4 * ROUNDS, 4):
        s0, s1, s2, s3 = (
            te0[s0 >> 24] ^ te1[(s1 >> 16) & 255] ^ te2[(s2 >> 8) & 255] ^ te3[s3 & 255] ^ k[r],
            te0[s1 >> 24] ^ te1[(s2 >> 16) & 255] ^ te2[(s3 >> 8) & 255] ^ te3[s0 & 255] ^ k[r + 1],
            te0[s2 >> 24] ^ te1[(s3 >> 16) & 255] ^ te2[(s0 >> 8) & 255] ^ te3[s1 & 255] ^ k[r + 2],
            te0[s3 >> 24] ^ te1[(s0 >> 16) & 255] ^ te2[(s1 >> 8) & 255] ^ te3[s2 & 255] ^ k[r + 3],
        )
    r = 4 * ROUNDS
    return (
        _last(_S, s0, s1, s2, s3) ^ k[r],
        _last(_S, s1, s2, s3, s0) ^ k[r + 1],
        _last(_S, s2, s3, s0, s1) ^ k[r + 2],
        _last(_S, s3, s0, s1, s2) ^ k[r + 3],
    )


def _decrypt_block(k: tuple[int, ...], s0: int, s1: int, s2: int, s3: int) -> tuple[int, ...]:
    td0, td1, td2, td3 = _TD0, _TD1, _TD2, _TD3
    s0 ^= k[0]
    s1 ^= k[1]
    s2 ^= k[2]
    s3 ^= k[3]
    for r in range(4, 4 * ROUNDS, 4):
        s0, s1, s2, s3 = (
            td0[s0 >> 24] ^ td1[(s3 >> 16) & 255] ^ td2[(s2 >> 8) & 255] ^ td3[s1 & 255] ^ k[r],
            td0[s1 >> 24] ^ td1[(s0 >> 16) & 255] ^ td2[(s3 >> 8) & 255] ^ td3[s2 & 255] ^ k[r + 1],
            td0[s2 >> 24] ^ td1[(s1 >> 16) & 255] ^ td2[(s0 >> 8) & 255] ^ td3[s3 & 255] ^ k[r + 2],
            td0[s3 >> 24] ^ td1[(s2 >> 16) & 255] ^ td2[(s1 >> 8) & 255] ^ td3[s0 & 255] ^ k[r + 3],
        )
    r = 4 * ROUNDS
    return (
        _last(_SI, s0, s3, s2, s1) ^ k[r],
        _last(_SI, s1, s0, s3, s2) ^ k[r + 1],
        _last(_SI, s2, s1, s0, s3) ^ k[r + 2],
        _last(_SI, s3, s2, s1, s0) ^ k[r + 3],
    )


def _split(n: int) -> tuple[int, int, int, int]:
    return n >> 96, (n >> 64) & 0xFFFFFFFF, (n >> 32) & 0xFFFFFFFF, n & 0xFFFFFFFF


def _join(words: tuple[int, ...]) -> int:
    return (words[0] << 96) | (words[1] << 64) | (words[2] << 32) | words[3]


def _whole_blocks(data: bytes, what: str) -> None:
    if len(data) % BLOCK:
        raise ProtocolError(f"{what} of {len(data)} bytes is not whole AES blocks")


def encrypt_cbc(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """AES-128-CBC of whole blocks (the caller pads)."""
    _whole_blocks(plain, "plaintext")
    rounds, _ = _schedule(bytes(key))
    chain = int.from_bytes(iv, "big")
    out = bytearray()
    for i in range(0, len(plain), BLOCK):
        chain = _join(
            _encrypt_block(rounds, *_split(int.from_bytes(plain[i : i + BLOCK], "big") ^ chain))
        )
        out += chain.to_bytes(BLOCK, "big")
    return bytes(out)


def decrypt_cbc(key: bytes, iv: bytes, cipher: bytes) -> bytes:
    """Inverse of :func:`encrypt_cbc`."""
    _whole_blocks(cipher, "ciphertext")
    _, rounds = _schedule(bytes(key))
    chain = int.from_bytes(iv, "big")
    out = bytearray()
    for i in range(0, len(cipher), BLOCK):
        block = int.from_bytes(cipher[i : i + BLOCK], "big")
        out += (_join(_decrypt_block(rounds, *_split(block))) ^ chain).to_bytes(BLOCK, "big")
        chain = block
    return bytes(out)

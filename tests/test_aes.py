"""AES-128-CBC (protocols/aes.py): the standard's vectors, and ``cryptography`` as a peer."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import aes

# SP 800-38A, F.2.1 and F.2.2: CBC-AES128.
KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
CIPHER = bytes.fromhex(
    "7649abac8119b246cee98e9b12e9197d"
    "5086cb9b507219ee95db113a917678b2"
    "73bed6b8e3c1743b7116e69e22229516"
    "3ff1caa1681fac09120eca307586e1a7"
)


def test_fips_197_appendix_c1() -> None:
    key = bytes(range(16))
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    cipher = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")
    assert aes.encrypt_cbc(key, bytes(16), plain) == cipher  # one block, zero IV: ECB
    assert aes.decrypt_cbc(key, bytes(16), cipher) == plain


def test_sp_800_38a_cbc_vectors() -> None:
    assert aes.encrypt_cbc(KEY, IV, PLAIN) == CIPHER
    assert aes.decrypt_cbc(KEY, IV, CIPHER) == PLAIN


def peer(key: bytes, iv: bytes, plain: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 8).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
)
def test_the_same_bytes_as_cryptography(key: bytes, iv: bytes, plain: bytes) -> None:
    cipher = aes.encrypt_cbc(key, iv, plain)
    assert cipher == peer(key, iv, plain)
    assert aes.decrypt_cbc(key, iv, cipher) == plain


@pytest.mark.parametrize("size", [1, 15, 17, 33])
def test_partial_blocks_are_a_protocol_error(size: int) -> None:
    with pytest.raises(ProtocolError, match="not whole AES blocks"):
        aes.decrypt_cbc(KEY, IV, bytes(size))
    with pytest.raises(ProtocolError, match="not whole AES blocks"):
        aes.encrypt_cbc(KEY, IV, bytes(size))


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_a_key_of_another_size_is_a_protocol_error(size: int) -> None:
    with pytest.raises(ProtocolError, match="AES-128 key of"):
        aes.decrypt_cbc(bytes(size), IV, bytes(16))

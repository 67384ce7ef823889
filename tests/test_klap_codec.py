"""The KLAP codec against fixed vectors, and both sides of a session against each other."""

from __future__ import annotations

import pytest

from whitegoodsd.errors import AuthError, ProtocolError
from whitegoodsd.protocols import klap

USER, PASSWORD = "user@example.com", "secret"
LOCAL = bytes(range(16))
REMOTE = bytes(range(16, 32))
PLAINTEXT = b'{"emeter":{"get_realtime":{}}}'

# Derived independently (hashlib and cryptography by hand) and checked against
# python-kasa 0.12.0's KLAP classes; see PLUGS.md 1.3.
VECTORS = {
    1: {
        "auth": "9d6ce791ce44316e9e52fc1bc9d36496",
        "server": "c2d456076f946c707000874d2e226a1c09e89a21e459272b8ec0f01cdaf774cf",
        "client": "50ef3325d42cd7c999aa9e47e8cb0f8a7f6f239f1d51b39d46d581a4bb75c8c5",
        "key": "c5d896030359050e711d402b829b53cd",
        "iv": "3dcdd2bc7801fec3a7a7eb96",
        "seq": -59551828,
        "sig_key": "4617dcf442a7c0101e3e8bdcfee6978938be30821c84b70c71571fab",
        "signature": "9dfc9af706037e39ffc7b17bf93fc76c4e304759e9fe171c3cf68773603976c6",
        "ciphertext": "f5e918cb1ce987485b67834d0908bac69d642095d6dc97368bff48df5df6c545",
        "blank": "5873dd45edd01f09c1ef2e7819369e8e",
    },
    2: {
        "auth": "b039216532fc844e9ae0cc8fe3ea911c9ba09c641bb96a3e1f776d93f7b5ae9b",
        "server": "8ed3b905e654fbee23900d0244156a33029c025b71b03bfcc601eff33aaebb70",
        "client": "1e590e7a4dc128da48ed17e06fe23ddb6ec646bb6da2eb00708d590f194201d7",
        "key": "35dcf29cd535ce140a239c67f641d395",
        "iv": "863e09a70667472d3fa152a4",
        "seq": -903964344,
        "sig_key": "777443e2fdd5cb21052633a60e830f44c8654b3a701f449231ed11fa",
        "signature": "3991a538f2bd5eda1f01b39855dd6f038f78b886715ba90d013353822ca99ba6",
        "ciphertext": "1e4d5e18ad8e40e38445ef6dc0a8896bbdb05d3601e71aa03229aba8fb523630",
        "blank": "b8628ab91c74f531603f6d5b45e730e54c123a7247b8978272c03f1e13560cea",
    },
}


@pytest.mark.parametrize("version", [1, 2])
def test_known_answers(version: int) -> None:
    v = VECTORS[version]
    auth = klap.auth_hash(version, USER, PASSWORD)
    assert auth.hex() == v["auth"]
    assert klap.server_hash(version, LOCAL, REMOTE, auth).hex() == v["server"]
    assert klap.client_hash(version, LOCAL, REMOTE, auth).hex() == v["client"]
    assert klap.auth_hash(version, "", "").hex() == v["blank"]
    session = klap.Session(LOCAL, REMOTE, auth)
    assert session.key.hex() == v["key"]
    assert session.iv_prefix.hex() == v["iv"]
    assert session.seq == v["seq"]
    assert session.sig_key.hex() == v["sig_key"]
    seq, body = session.next_request(PLAINTEXT)
    assert seq == v["seq"] + 1
    assert body[:32].hex() == v["signature"]
    assert body[32:].hex() == v["ciphertext"]
    assert klap.request_target(seq) == f"/app/request?seq={v['seq'] + 1}"


@pytest.mark.parametrize("version", [1, 2])
def test_handshake1_matches_the_users_credentials_first(version: int) -> None:
    auth = klap.auth_hash(version, USER, PASSWORD)
    reply = REMOTE + klap.server_hash(version, LOCAL, REMOTE, auth)
    mine = klap.Credentials("the configured credentials", USER, PASSWORD)
    found, found_auth, remote = klap.match(version, LOCAL, reply, (mine, *klap.DEFAULT_CREDENTIALS))
    assert (found, found_auth, remote) == (mine, auth, REMOTE)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("default", klap.DEFAULT_CREDENTIALS, ids=lambda c: c.label)
def test_handshake1_falls_back_to_each_default(version: int, default: klap.Credentials) -> None:
    auth = klap.auth_hash(version, default.username, default.password)
    reply = REMOTE + klap.server_hash(version, LOCAL, REMOTE, auth)
    mine = klap.Credentials("the configured credentials", USER, "wrong")
    found, _, _ = klap.match(version, LOCAL, reply, (mine, *klap.DEFAULT_CREDENTIALS))
    assert found == default


def test_handshake1_with_no_matching_hash_is_an_auth_error() -> None:
    auth = klap.auth_hash(2, USER, PASSWORD)
    reply = REMOTE + klap.server_hash(2, LOCAL, REMOTE, auth)
    other = klap.Credentials("x", USER, "not the password")
    with pytest.raises(AuthError, match="refused the credentials"):
        klap.match(2, LOCAL, reply, [other])
    # a version-1 hash does not pass for version 2
    with pytest.raises(AuthError):
        klap.match(1, LOCAL, reply, [klap.Credentials("x", USER, PASSWORD)])


@pytest.mark.parametrize("size", [0, 16, 47, 49, 1000])
def test_handshake1_reply_of_the_wrong_size(size: int) -> None:
    with pytest.raises(ProtocolError, match="handshake1 reply is"):
        klap.parse_handshake1(bytes(size))


def test_session_cookies() -> None:
    assert klap.session_cookies({"TP_SESSIONID": "ABC", "TIMEOUT": "1440"}) == ("ABC", 1440)
    assert klap.session_cookies({"TP_SESSIONID": "ABC"}) == ("ABC", klap.DEFAULT_TIMEOUT)
    assert klap.session_cookies({"TP_SESSIONID": "A", "TIMEOUT": "-5"})[1] == 86400
    assert klap.session_cookies({"TP_SESSIONID": "A", "TIMEOUT": "9" * 11})[1] == klap.MAX_TIMEOUT
    with pytest.raises(ProtocolError, match="no TP_SESSIONID"):
        klap.session_cookies({"TIMEOUT": "5"})


@pytest.mark.parametrize("version", [1, 2])
def test_a_plug_opens_what_a_client_seals_and_back(version: int) -> None:
    auth = klap.auth_hash(version, USER, PASSWORD)
    client, plug = klap.Session(LOCAL, REMOTE, auth), klap.Session(LOCAL, REMOTE, auth)
    for n in range(3):
        message = b'{"method":"get_energy_usage"}' * n
        seq, body = client.next_request(message)
        assert plug.open_request(body, seq) == message
        assert client.open(plug.seal(b"reply %d" % n, seq), seq) == b"reply %d" % n


def test_the_sequence_number_wraps_at_the_int32_limit() -> None:
    session = klap.Session(LOCAL, REMOTE, klap.auth_hash(2, USER, PASSWORD))
    session.seq = 2**31 - 1
    seq, body = session.next_request(PLAINTEXT)
    assert seq == -(2**31)
    assert klap.request_target(seq) == "/app/request?seq=-2147483648"
    assert klap.parse_seq("seq=-2147483648") == seq
    plug = klap.Session(LOCAL, REMOTE, klap.auth_hash(2, USER, PASSWORD))
    assert plug.open_request(body, seq) == PLAINTEXT


def test_a_reply_under_another_session_is_a_session_end() -> None:
    ours = klap.Session(LOCAL, REMOTE, klap.auth_hash(2, USER, PASSWORD))
    theirs = klap.Session(LOCAL, bytes(16), klap.auth_hash(2, USER, PASSWORD))
    seq, _ = ours.next_request(PLAINTEXT)
    # the wrong key almost never leaves valid padding; try a few messages
    failures = 0
    for n in range(20):
        try:
            ours.open(theirs.seal(b"x" * n, seq), seq)
        except klap.SessionEnded:
            failures += 1
    assert failures >= 15
    with pytest.raises(klap.SessionEnded):
        ours.open(b"\0" * 40, seq)
    with pytest.raises(klap.SessionEnded):
        ours.open(b"", seq)


def test_a_forged_request_signature_is_refused() -> None:
    session = klap.Session(LOCAL, REMOTE, klap.auth_hash(1, USER, PASSWORD))
    seq, body = session.next_request(PLAINTEXT)
    with pytest.raises(klap.SessionEnded, match="signature"):
        session.open_request(bytes(32) + body[32:], seq)
    with pytest.raises(klap.SessionEnded, match="signature"):
        session.open_request(body, seq + 1)


@pytest.mark.parametrize(
    "query", ["", "seq=", "seq=abc", "seq=2147483648", "seq=-2147483649", "x=1", "seq=1" * 10]
)
def test_bad_seq(query: str) -> None:
    with pytest.raises(ProtocolError):
        klap.parse_seq(query)


def test_unknown_version() -> None:
    with pytest.raises(ValueError, match="KLAP version"):
        klap.auth_hash(3, USER, PASSWORD)


@pytest.mark.parametrize("version", [1, 2])
def test_python_kasa_derives_the_same_session(version: int) -> None:
    """python-kasa's own session class (an independent implementation) agrees."""
    from kasa.transports.klaptransport import KlapEncryptionSession, KlapTransport, KlapTransportV2

    transport = KlapTransport if version == 1 else KlapTransportV2
    from kasa import Credentials

    auth = transport.generate_auth_hash(Credentials(USER, PASSWORD))
    assert auth == klap.auth_hash(version, USER, PASSWORD)
    theirs = KlapEncryptionSession(LOCAL, REMOTE, auth)
    ours = klap.Session(LOCAL, REMOTE, auth)
    body, seq = theirs.encrypt(PLAINTEXT)
    assert (seq, body) == ours.next_request(PLAINTEXT)
    reply = ours.seal(b'{"ok":1}', seq)
    assert theirs.decrypt(reply) == '{"ok":1}'

"""HTTP Digest (RFC 7616): the RFC's own examples, both ends, nonce reuse, bad headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import digest

from conftest import attempt, one_line

# RFC 7616 section 3.9.1.
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CHALLENGES = [
    f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm=SHA-256, '
    f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"',
    f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm=MD5, '
    f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"',
]
RFC_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc_7616_examples(algorithm: str) -> None:
    assert (
        digest.response_hash(
            algorithm, "Mufasa", RFC_REALM, "Circle of Life", "GET", "/dir/index.html",
            RFC_NONCE, "00000001", RFC_CNONCE, "auth",
        )
        == RFC_RESPONSES[algorithm]
    )  # fmt: skip


def test_client_picks_sha256_and_answers_as_the_rfc() -> None:
    client = digest.Client("Mufasa", "Circle of Life", cnonce=lambda: RFC_CNONCE)
    chosen = client.challenge(reversed(RFC_CHALLENGES))  # MD5 offered first
    assert chosen.algorithm == "SHA-256" and chosen.opaque == RFC_OPAQUE
    header = client.authorization("GET", "/dir/index.html")
    assert header is not None
    sent = digest.parse_credentials(header)
    assert sent.response == RFC_RESPONSES["SHA-256"]
    assert (sent.username, sent.realm, sent.uri, sent.nc) == (
        "Mufasa", RFC_REALM, "/dir/index.html", "00000001",
    )  # fmt: skip
    assert f'opaque="{RFC_OPAQUE}"' in header


def test_nonce_is_reused_with_nc_counting_up_until_a_new_challenge() -> None:
    client = digest.Client("admin", "secret")
    assert client.authorization("GET", "/rpc/Switch.GetStatus?id=0") is None
    client.challenge([digest.challenge_header("shellyplug-1", "n1")])
    counts = []
    for _ in range(3):
        header = client.authorization("GET", "/rpc/Switch.GetStatus?id=0")
        assert header is not None
        credentials = digest.parse_credentials(header)
        assert credentials.nonce == "n1"
        counts.append(credentials.count)
        # The server side agrees on every one.
        assert credentials.response == digest.expected_response(credentials, "GET", "secret")
        assert credentials.response != digest.expected_response(credentials, "GET", "wrong")
    assert counts == [1, 2, 3]
    client.challenge([digest.challenge_header("shellyplug-1", "n2", stale=True)])
    header = client.authorization("GET", "/x")
    assert header is not None
    assert digest.parse_credentials(header).count == 1
    client.forget()
    assert client.authorization("GET", "/x") is None


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_every_algorithm_round_trips(algorithm: str) -> None:
    client = digest.Client("admin", "pw")
    client.challenge([digest.challenge_header("realm", "nonce", algorithm)])
    header = client.authorization("POST", "/rpc")
    assert header is not None
    credentials = digest.parse_credentials(header)
    assert credentials.algorithm == algorithm.upper()
    assert credentials.response == digest.expected_response(credentials, "POST", "pw")


def test_rfc_2069_challenge_without_qop() -> None:
    client = digest.Client("u", "p")
    chosen = client.challenge(['Digest realm="r", nonce="n"'])
    assert chosen.algorithm == "MD5" and not chosen.qop
    header = client.authorization("GET", "/")
    assert header is not None and "qop" not in header and "cnonce" not in header
    credentials = digest.parse_credentials(header)
    assert credentials.response == digest.expected_response(credentials, "GET", "p")


def test_several_challenges_in_one_header_value() -> None:
    value = 'Basic realm="x", Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256'
    assert [s for s, _ in digest.parse_challenges([value])] == ["Basic", "Digest"]
    assert digest.pick_challenge([value]).realm == "r"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (['Basic realm="x"'], r"no usable digest challenge \(offered: Basic\)"),
        ([], r"no usable digest challenge \(offered: nothing\)"),
        (['Digest realm="r", nonce="n", qop="auth-int"'], "no usable digest challenge"),
        (['Digest realm="r", nonce="n", algorithm=SHA-512-256'], "no usable digest challenge"),
        (['Digest nonce="n"'], "digest challenge without realm or nonce"),
        (['Digest realm="unterminated'], "malformed auth challenge"),
        (["Digest realm=r,, =x"], "malformed auth challenge"),
    ],
)
def test_bad_challenges_are_one_line_protocol_errors(values: list[str], message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as caught:
        digest.pick_challenge(values)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Basic dXNlcjpwdw==", "not Digest credentials"),
        ('Digest username="a", realm="r", nonce="n", uri="/"', "without response"),
        (
            'Digest username="a", realm="r", nonce="n", uri="/", response="x", qop=auth',
            "without nc or cnonce",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="/", response="x", algorithm=SHA-1',
            "unsupported digest algorithm",
        ),
    ],
)
def test_bad_credentials(value: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        digest.parse_credentials(value)


text = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\0"), max_size=30)


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True), text, max_size=8))
def test_quoted_parameters_round_trip(params: dict[str, str]) -> None:
    value = ", ".join(f"{k}={digest.quote(v)}" for k, v in params.items())
    assert digest.parse_parameters(value) == params


@given(st.text(max_size=200))
def test_any_header_value_parses_or_fails_cleanly(value: str) -> None:
    for call in (
        lambda: digest.pick_challenge([value]),
        lambda: digest.parse_credentials(value),
        lambda: digest.parse_parameters(value),
    ):
        result = attempt(call)
        if isinstance(result, ProtocolError):
            assert one_line(result)

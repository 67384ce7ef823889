"""Fuzzing the KLAP and SMART codecs and the KLAP poll: whatever a plug sends, a
reading or the driver's own one-line error, never anything else.

The poll is driven by hand, without sockets: each request the conversation
sends is parsed with h11 as a plug would and answered by a real emulated plug
(``KlapServer.answer``), except for the part under test, which hypothesis
writes: the reply to handshake1, the sealed reply body, or the plaintext
sealed inside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import h11
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.conversation import Close, Connect, Receive, Send
from whitegoodsd.drivers.kasa import KasaPlug
from whitegoodsd.drivers.tapo import TapoPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.klap import KlapServer
from whitegoodsd.emulator.smart import SmartDevice
from whitegoodsd.errors import PlugError, ProtocolError, Reading
from whitegoodsd.protocols import klap, tapo

from conftest import attempt, one_line

USER, PASSWORD = "owner@example.com", "secret"
CREDENTIALS = {"username": USER, "password": PASSWORD}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
FIELDS = ["power_mw", "voltage_mv", "current_ma", "current_power", "energy_wh"]
results = st.dictionaries(st.sampled_from(FIELDS), scalars | json_values, max_size=5)
replies = st.one_of(
    st.builds(lambda code, result: {"error_code": code, "result": result},
              st.sampled_from([0, 0, 0, -1, -1002, -1003, 9999, 1, "0", None]),
              results | json_values),
    json_values,
)  # fmt: skip

Rewrite = Callable[[str, int, bytes, KlapServer], bytes | None]


def respond(status: int, body: bytes, cookie: str | None = None) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
    if cookie:
        head += f"Set-Cookie: {cookie}\r\n"
    return head.encode() + b"\r\n" + body


def drive(driver: TapoPlug | KasaPlug, rewrite: Rewrite) -> Reading | PlugError:
    """Run one poll against an emulated plug whose answers ``rewrite`` may replace
    (raw response bytes), given the path, the HTTP status and body it would send."""
    server = KlapServer(SmartDevice(SettablePower(5000)), "127.0.0.1", username=USER,
                        password=PASSWORD)  # fmt: skip
    poll = driver.poll()
    pending = b""
    outcome: object = None
    try:
        for _ in range(200):
            op = poll.send(outcome)
            outcome = None
            if isinstance(op, Connect | Close):
                pending = b""
            elif isinstance(op, Send):
                parser = h11.Connection(h11.SERVER)
                parser.receive_data(op.data)
                request = parser.next_event()
                assert isinstance(request, h11.Request)
                data = parser.next_event()
                body = data.data if isinstance(data, h11.Data) else b""
                cookie = dict(request.headers).get(b"cookie", b"").decode().partition("=")[2]
                target = request.target.decode()
                reply = server.answer("POST", target, cookie or None, bytes(body))
                raw = rewrite(target.partition("?")[0], reply.status, reply.body, server)
                pending = (
                    raw if raw is not None else respond(reply.status, reply.body, reply.cookie)
                )
            elif isinstance(op, Receive):
                outcome, pending = pending, b""
        raise AssertionError("the poll did not end")
    except StopIteration as done:
        value: object = done.value
    except PlugError as exc:
        value = exc
    if isinstance(value, PlugError):
        assert one_line(value) if isinstance(value, ProtocolError) else "\n" not in str(value)
        return value
    assert isinstance(value, Reading)
    return value


def test_the_harness_reads_the_plug() -> None:
    reading = drive(TapoPlug("127.0.0.1", 80, 5, CREDENTIALS), lambda *_: None)
    assert isinstance(reading, Reading) and reading.power_mw == 5000


@given(st.binary(max_size=120), st.sampled_from([200, 200, 403, 500]))
def test_any_handshake1_reply(body: bytes, status: int) -> None:
    def rewrite(path: str, code: int, real: bytes, server: KlapServer) -> bytes | None:
        if path == klap.HANDSHAKE1:
            return respond(status, body, "TP_SESSIONID=1;TIMEOUT=99")
        return None

    drive(TapoPlug("127.0.0.1", 80, 5, CREDENTIALS), rewrite)


@given(st.binary(max_size=200))
def test_any_raw_http_reply_to_a_request(raw: bytes) -> None:
    def rewrite(path: str, code: int, real: bytes, server: KlapServer) -> bytes | None:
        return raw if path == klap.REQUEST else None

    drive(TapoPlug("127.0.0.1", 80, 5, CREDENTIALS), rewrite)


@given(st.binary(max_size=200))
def test_any_encrypted_body(body: bytes) -> None:
    def rewrite(path: str, code: int, real: bytes, server: KlapServer) -> bytes | None:
        return respond(200, body) if path == klap.REQUEST else None

    drive(TapoPlug("127.0.0.1", 80, 5, CREDENTIALS), rewrite)


def sealed(plain: bytes) -> Rewrite:
    """Seal ``plain`` under the plug's session instead of its own reply."""

    def rewrite(path: str, code: int, real: bytes, server: KlapServer) -> bytes | None:
        if path != klap.REQUEST or code != 200:
            return None
        session = next(iter(server.sessions.values())).keys
        assert session is not None
        seq = server.last_seq
        return respond(200, session.seal(plain, seq))

    return rewrite


@given(replies)
def test_any_smart_reply_inside_the_session(reply: object) -> None:
    plain = json.dumps(reply).encode()
    drive(TapoPlug("127.0.0.1", 80, 5, CREDENTIALS), sealed(plain))


@given(json_values | st.builds(lambda rt: {"emeter": {"get_realtime": rt}}, results))
def test_any_iot_reply_inside_the_session(reply: object) -> None:
    plain = json.dumps(reply).encode()
    drive(KasaPlug("127.0.0.1", 80, 5, {"protocol": "klap", **CREDENTIALS}), sealed(plain))


@given(st.binary(max_size=100))
def test_any_plaintext_inside_the_session(plain: bytes) -> None:
    drive(TapoPlug("127.0.0.1", 80, 5, CREDENTIALS), sealed(plain))


@given(st.sampled_from(tapo.POWER_METHODS), results)
def test_parse_power(method: str, result: dict[str, object]) -> None:
    outcome = attempt(lambda: tapo.parse_power(method, result))
    if isinstance(outcome, Reading):
        assert 0 <= outcome.power_mw <= tapo.MAX_POWER_MW
    else:
        assert one_line(outcome)


@given(st.dictionaries(st.sampled_from(["TP_SESSIONID", "TIMEOUT", "x"]), st.text(max_size=30)))
def test_session_cookies(cookies: dict[str, str]) -> None:
    outcome = attempt(lambda: klap.session_cookies(cookies))
    if not isinstance(outcome, ProtocolError):
        assert 0 < outcome[1] <= klap.MAX_TIMEOUT


@given(st.text(max_size=40))
def test_parse_seq(query: str) -> None:
    outcome = attempt(lambda: klap.parse_seq(query))
    if isinstance(outcome, int):
        assert -(2**31) <= outcome < 2**31


@given(st.binary(max_size=200), st.integers(-(2**31), 2**31 - 1))
def test_the_plug_side_opens_any_request_or_refuses_it(body: bytes, seq: int) -> None:
    session = klap.Session(bytes(16), bytes(16), klap.auth_hash(2, USER, PASSWORD))
    outcome = attempt(lambda: session.open_request(body, seq))
    assert isinstance(outcome, klap.SessionEnded | bytes)

"""HTTP plugs that misbehave: every mode is one concise failed poll, never a hang or a crash.

The emulated Shelly and Tasmota plugs answer every request the way a mode
says (through the server's ``misbehave`` hook): no status line, a chunked
body without end, a gzip bomb, a 401 for ever, silence, a head without end,
HTML.  Each driver must fail each poll with one short line, in bounded time
and memory.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
from collections.abc import Callable

import pytest

from whitegoodsd.drivers.shelly import ShellyPlug
from whitegoodsd.drivers.tasmota import TasmotaPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.httpserver import HttpServer, Request
from whitegoodsd.emulator.shelly import start_shelly
from whitegoodsd.emulator.tasmota import start_tasmota
from whitegoodsd.errors import PlugError
from whitegoodsd.protocols import digest

TIMEOUT = 0.5
MAX_SENT = 1024 * 1024
GZIP_BOMB = gzip.compress(bytes(10 * 1024 * 1024))  # 10 MiB of zeros in ~10 KiB


def _chunked_forever() -> bytes:
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + chunk * (MAX_SENT // len(chunk))


def _unauthorized() -> bytes:
    challenge = digest.challenge_header("shellyplusplugs-x", os.urandom(8).hex())
    return (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
        b"WWW-Authenticate: " + challenge.encode() + b"\r\n\r\n"
    )


Mode = Callable[[Request], tuple[bytes, bool] | None]
MODES: dict[str, Mode] = {
    "no-status-line": lambda r: (b"hello there\r\nthis is not HTTP\r\n\r\n", True),
    "chunked-forever": lambda r: (_chunked_forever(), True),
    "gzip-bomb": lambda r: (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
        + str(len(GZIP_BOMB)).encode()
        + b"\r\n\r\n"
        + GZIP_BOMB,
        True,
    ),
    "401-loop": lambda r: (_unauthorized(), False),
    "silent": lambda r: (b"", False),
    "endless-head": lambda r: (b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * MAX_SENT, True),
    "html": lambda r: (
        b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n<html>router</html>\r\n",
        True,
    ),
    "close-mid-body": lambda r: (b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"apo', True),
}
# What a failed poll says (the whole line), for a plug whose every request misbehaves.
COMMON = {
    "no-status-line": r"malformed HTTP reply: .+",
    "chunked-forever": r"reply body over 65,536 bytes",
    "gzip-bomb": r"reply is gzip-encoded, which was not asked",
    "silent": r"no answer within 0\.5 s",
    "endless-head": r"malformed HTTP reply: .+",
    "close-mid-body": r"malformed HTTP reply: peer closed connection without sending "
    r"complete message body.*",
}
SHELLY = {
    **COMMON,
    "401-loop": r"/shelly answered HTTP 401 Unauthorized: not a Shelly\?",
    "html": r"/shelly reply is not JSON \(.+\)",
}
TASMOTA = {
    **COMMON,
    "401-loop": r"the plug refused the user name or password \(HTTP 401\)",
    "html": r"reply is not JSON \(.+\)",
}


def concise(reason: str) -> bool:
    return "\n" not in reason and "Traceback" not in reason and len(reason) <= 120


async def poll_once(server: HttpServer, mode: Mode, driver: ShellyPlug | TasmotaPlug) -> str:
    server.misbehave = mode
    try:
        await driver.read()
    except PlugError as exc:
        return str(exc)
    finally:
        await server.close()
    raise AssertionError("the poll of a misbehaving plug succeeded")


@pytest.mark.parametrize("mode", list(MODES))
def test_shelly_each_misbehaviour_is_one_concise_failed_poll(mode: str) -> None:
    async def scenario() -> str:
        server = await start_shelly("127.0.0.1", 0, SettablePower(1_000_000))
        return await poll_once(server, MODES[mode], ShellyPlug("127.0.0.1", server.port, TIMEOUT))

    reason = asyncio.run(scenario())
    assert re.fullmatch(SHELLY[mode], reason), reason
    assert concise(reason)


@pytest.mark.parametrize("mode", list(MODES))
def test_tasmota_each_misbehaviour_is_one_concise_failed_poll(mode: str) -> None:
    async def scenario() -> str:
        server = await start_tasmota("127.0.0.1", 0, SettablePower(1_000_000))
        plug = TasmotaPlug("127.0.0.1", server.port, TIMEOUT)
        return await poll_once(server, MODES[mode], plug)

    reason = asyncio.run(scenario())
    assert re.fullmatch(TASMOTA[mode], reason), reason
    assert concise(reason)


def test_a_401_loop_after_identification_costs_two_requests_a_poll() -> None:
    """An RPC plug that refuses every credential: the poll gives up after one fresh
    challenge, with one line, instead of asking again and again."""

    async def scenario() -> None:
        server = await start_shelly("127.0.0.1", 0, SettablePower(1_000_000))
        requests: list[str] = []

        def loop_401(request: Request) -> tuple[bytes, bool] | None:
            if request.path == "/shelly":
                return None  # identify honestly
            requests.append(request.target)
            return _unauthorized(), False

        server.misbehave = loop_401
        driver = ShellyPlug("127.0.0.1", server.port, TIMEOUT, {"password": "pw"})
        try:
            for poll in range(1, 4):
                with pytest.raises(
                    PlugError, match=r"^the plug refused the password \(HTTP 401\)$"
                ):
                    await driver.read()
                assert len(requests) == 2 * poll
        finally:
            await server.close()

    asyncio.run(scenario())

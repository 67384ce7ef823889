"""The emulated Shelly and Tasmota plugs against clients written by others.

What the emulators speak is what the driver is tested against, so it must be
the real protocol: curl (``--digest``, ``-u``) and httpx's DigestAuth check
the HTTP side and its SHA-256 digest; aioshelly, Home Assistant's Shelly
library, reads both generations' power the way it reads real devices (Gen2
over its WebSocket RPC with digest-authenticated frames, Gen1 over HTTP).
"""

from __future__ import annotations

import asyncio
import errno
import json
import random
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.httpserver import HttpServer
from whitegoodsd.emulator.shelly import start_shelly
from whitegoodsd.emulator.tasmota import start_tasmota

from conftest import LoopThread, need, need_program

WATTS = 1234.5


@pytest.fixture
def serve(loop_thread: LoopThread) -> Iterator[Callable[..., HttpServer]]:
    started: list[HttpServer] = []

    def start(starter: Any, host: str = "127.0.0.1", port: int = 0, **options: Any) -> HttpServer:
        power = SettablePower(round(WATTS * 1000))
        server: HttpServer = loop_thread.run(starter(host, port, power, **options))
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.close())


def curl(*args: str) -> tuple[int, str]:
    """curl's HTTP status and body."""
    path = need_program("curl", "apt-get install curl")
    done = subprocess.run(
        [path, "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_curl_digest_against_gen2(serve: Callable[..., HttpServer]) -> None:
    server = serve(start_shelly, gen=2, password="s3cret")
    url = f"http://127.0.0.1:{server.port}/rpc/Switch.GetStatus?id=0"
    status, body = curl("--digest", "-u", "admin:s3cret", url)
    assert status == 200 and json.loads(body)["apower"] == WATTS
    assert curl("--digest", "-u", "admin:wrong", url)[0] == 401
    assert curl(url)[0] == 401
    # The identity needs no password.
    status, body = curl(f"http://127.0.0.1:{server.port}/shelly")
    assert status == 200 and json.loads(body)["auth_en"] is True


def test_httpx_digest_against_gen2(serve: Callable[..., HttpServer]) -> None:
    httpx = _import("httpx")
    server = serve(start_shelly, gen=2, password="s3cret")
    url = f"http://127.0.0.1:{server.port}/rpc/Switch.GetStatus?id=0"
    with httpx.Client(timeout=10) as client:
        reply = client.get(url, auth=httpx.DigestAuth("admin", "s3cret"))
        assert reply.status_code == 200 and reply.json()["apower"] == WATTS
        assert client.get(url, auth=httpx.DigestAuth("admin", "nope")).status_code == 401
        # POST /rpc with a JSON-RPC frame, as the docs show it.
        frame = {"id": 7, "src": "test", "method": "Switch.GetStatus", "params": {"id": 0}}
        reply = client.post(
            f"http://127.0.0.1:{server.port}/rpc",
            json=frame,
            auth=httpx.DigestAuth("admin", "s3cret"),
        )
        assert reply.json()["id"] == 7 and reply.json()["result"]["apower"] == WATTS


def test_curl_basic_auth_against_gen1(serve: Callable[..., HttpServer]) -> None:
    server = serve(start_shelly, gen=1, password="pw")
    status, body = curl("-u", "admin:pw", f"http://127.0.0.1:{server.port}/status")
    assert status == 200 and json.loads(body)["meters"][0]["power"] == WATTS
    assert curl(f"http://127.0.0.1:{server.port}/meter/0")[0] == 401


def test_curl_against_tasmota(serve: Callable[..., HttpServer]) -> None:
    server = serve(start_tasmota, password="jo ker")
    base = f"http://127.0.0.1:{server.port}/cm"
    status, body = curl("-i", f"{base}?user=admin&password=jo%20ker&cmnd=Status%2010")
    head, _, content = body.partition("\n\n")  # (text mode turned CRLF into LF)
    assert status == 200 and "transfer-encoding: chunked" in head.lower()
    assert json.loads(content)["StatusSNS"]["ENERGY"]["Power"] == round(WATTS)
    status, body = curl(f"{base}?cmnd=Status%2010")
    assert status == 200 and json.loads(body) == {
        "WARNING": "Need user=<username>&password=<password>"
    }


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        need(False, f"{name} not installed (pip install -e '.[test]')")
        raise


def test_aioshelly_reads_gen2_power_over_its_websocket(serve: Callable[..., HttpServer]) -> None:
    _import("aioshelly")
    aiohttp = _import("aiohttp")
    from aioshelly.common import ConnectionOptions
    from aioshelly.rpc_device import RpcDevice

    server = serve(start_shelly, gen=2, password="s3cret")

    async def read() -> tuple[float, bool]:
        async with aiohttp.ClientSession() as session:
            options = ConnectionOptions("127.0.0.1", "admin", "s3cret", port=server.port)
            device = await RpcDevice.create(session, None, options)
            await device.initialize()
            try:
                return device.status["switch:0"]["apower"], device.requires_auth
            finally:
                await device.shutdown()

    assert asyncio.run(read()) == (WATTS, True)
    assert server.device.challenges >= 1  # type: ignore[attr-defined]


def test_aioshelly_is_refused_with_a_wrong_password(serve: Callable[..., HttpServer]) -> None:
    _import("aioshelly")
    aiohttp = _import("aiohttp")
    from aioshelly.common import ConnectionOptions
    from aioshelly.exceptions import InvalidAuthError
    from aioshelly.rpc_device import RpcDevice

    server = serve(start_shelly, gen=2, password="s3cret")

    async def read() -> None:
        async with aiohttp.ClientSession() as session:
            options = ConnectionOptions("127.0.0.1", "admin", "wrong", port=server.port)
            device = await RpcDevice.create(session, None, options)
            try:
                await device.initialize()
            finally:
                await device.shutdown()

    with pytest.raises(InvalidAuthError):
        asyncio.run(read())


def _port_80_on_loopback() -> str:
    """A loopback address whose port 80 is free to bind (root, or the capability)."""
    for _ in range(20):
        host = (
            f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.{random.randrange(2, 255)}"
        )
        with socket.socket() as probe:
            try:
                probe.bind((host, 80))
            except PermissionError:
                need(False, "binding port 80 needs root (aioshelly reads Gen1 on port 80 only)")
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return host
    raise AssertionError("no free loopback address for port 80")


def test_aioshelly_reads_gen1_power_over_http(serve: Callable[..., HttpServer]) -> None:
    """aioshelly's Gen1 BlockDevice reads /shelly, /settings and /status with Basic
    auth; it talks to port 80 only.  Firmware from before 2020-11 is presented so
    that it does not also ask for CoIoT (CoAP) descriptions, which the emulator
    does not serve: whitegoodsd reads Gen1 plugs over HTTP alone."""
    _import("aioshelly")
    aiohttp = _import("aiohttp")
    from aioshelly.block_device import COAP, BlockDevice
    from aioshelly.common import ConnectionOptions

    host = _port_80_on_loopback()
    server = serve(start_shelly, host=host, port=80, gen=1, password="pw",
                   firmware="20200812-091015/v1.8.0@8acf41b8")  # fmt: skip

    async def read() -> float:
        coap = COAP()
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: coap, local_addr=("127.0.0.1", 0)
        )
        try:
            async with aiohttp.ClientSession() as session:
                options = ConnectionOptions(host, "admin", "pw")
                device = await BlockDevice.create(session, coap, options)
                await device.initialize()
                await device.shutdown()
                assert device.requires_auth and device.settings["device"]["type"] == "SHPLG-S"
                power: float = device.status["meters"][0]["power"]
                return power
        finally:
            transport.close()

    assert asyncio.run(read()) == WATTS
    assert server.device.challenges == 0  # type: ignore[attr-defined]

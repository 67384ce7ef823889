"""An HTTP poll's overhead: a Tasmota-style plug over the engine, next to aiohttp.

The HTTP families (Shelly, Tasmota...) poll through the same engine as Kasa:
a conversation that connects, sends an h11-made request
(:mod:`whitegoodsd.protocols.http`) and feeds the reply to h11 until it is
whole.  Here ``plugs`` emulated Tasmota plugs (:mod:`benchmarks.plugs`,
``--family tasmota``) answer ``GET /cm?cmnd=Status%2010``; the figures are
the CPU per poll of:

* whitegoodsd HTTP: the engine running one such conversation per plug, a
  fresh connection each, parsed by :func:`whitegoodsd.protocols.tasmota.parse_status`;
* whitegoodsd Kasa: the engine running the Kasa conversation over as many
  emulated Kasa plugs, for the difference HTTP makes;
* aiohttp: one ``ClientSession`` keeping a connection open per plug (its
  normal use), the same request and parse.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.passes import HOST, PassFigures, measure
from benchmarks.plugs import Farm
from whitegoodsd import engine
from whitegoodsd.conversation import Connect, Conversation
from whitegoodsd.drivers.kasa import realtime_conversation
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.protocols import http, tasmota


def tasmota_conversation(host: str, port: int) -> Conversation[Reading]:
    """One Status 10 poll on a new connection, as an HTTP family's driver makes it."""
    yield Connect(host, port)
    response = yield from http.request(http.Exchange("GET", tasmota.target(), host))
    if response.status != 200:
        raise PlugError(f"HTTP {response.status}")
    return tasmota.parse_status(response.body)


async def engine_passes(
    name: str, farm: Farm, ports: list[int], make: Any, poll_timeout: float, repeat: int
) -> PassFigures:
    async def one_pass() -> int:
        results = await engine.run([make(HOST, port) for port in ports], poll_timeout)
        return sum(isinstance(r, PlugError) for r in results)

    return await measure(name, len(ports), repeat, one_pass, True, farm)


async def aiohttp_passes(farm: Farm, poll_timeout: float, repeat: int) -> PassFigures:
    import aiohttp

    ports = farm.ports
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=poll_timeout)
    target = tasmota.target()

    async def poll(session: aiohttp.ClientSession, port: int) -> bool:
        try:
            async with session.get(f"http://{HOST}:{port}{target}") as response:
                tasmota.parse_status(await response.read())
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, PlugError):
            return False

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one_pass() -> int:
            answered = await asyncio.gather(*(poll(session, port) for port in ports))
            return answered.count(False)

        return await measure("aiohttp (kept-open)", len(ports), repeat, one_pass, True, farm)


async def http_rows(plugs: int, poll_timeout: float, repeat: int) -> list[PassFigures]:
    with Farm(plugs, family="tasmota") as farm:
        rows = [
            await engine_passes(
                "whitegoodsd HTTP", farm, farm.ports, tasmota_conversation, poll_timeout, repeat
            ),
            await aiohttp_passes(farm, poll_timeout, repeat),
        ]
    with Farm(plugs) as farm:
        rows.insert(
            1,
            await engine_passes(
                "whitegoodsd Kasa", farm, farm.ports, realtime_conversation, poll_timeout, repeat
            ),
        )
    return rows

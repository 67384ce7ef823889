"""What the HTTP plug families share for discovery: one bounded GET, and mDNS.

:func:`get` asks one address over a fresh connection, framed by
:mod:`whitegoodsd.protocols.http` (so a reply is bounded as when polling).
:func:`browse` lists the hosts that advertise mDNS services on the local
network, through python-zeroconf, an optional dependency imported only here
and only when the network is searched (``pip install 'whitegoodsd[mdns]'``);
without it a one-line note goes to standard error and nothing is found.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

from whitegoodsd.errors import PlugError
from whitegoodsd.protocols import http

MAX_HOSTS = 256  # advertised hosts probed, at most


async def get(host: str, port: int, target: str, seconds: float) -> http.Response | None:
    """``GET target`` from ``host:port``; None when nothing usable came back in time."""
    shown = f"[{host}]" if ":" in host else host
    exchange = http.Exchange("GET", target, shown if port == 80 else f"{shown}:{port}")

    async def ask() -> http.Response | None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(exchange.request)
            while True:
                data = await reader.read(4096)
                response = exchange.feed(data)
                if response is not None:
                    return response
                if not data:
                    return None
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(ask(), seconds)
    except (OSError, TimeoutError, PlugError):
        return None


async def browse(
    services: Sequence[str], seconds: float, wanted: Callable[[str], bool]
) -> list[tuple[str, int]]:
    """(address, port) of every instance of ``services`` whose name ``wanted``
    accepts, seen on the local network within ``seconds``."""
    try:
        from zeroconf import ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf
    except ImportError:
        print(
            "whitegoodsd discover: searching the network for HTTP plugs needs python-zeroconf "
            "(pip install 'whitegoodsd[mdns]'); --target HOST works without it",
            file=sys.stderr,
        )
        return []
    seen: dict[str, str] = {}  # instance name -> service type

    def changed(
        zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added and wanted(name) and len(seen) < MAX_HOSTS:
            seen.setdefault(name, service_type)

    found: dict[tuple[str, int], None] = {}
    async with AsyncZeroconf() as zc:
        browser = AsyncServiceBrowser(zc.zeroconf, list(services), handlers=[changed])
        await asyncio.sleep(seconds / 2)  # the time given to listen for announcements
        infos = [AsyncServiceInfo(kind, name) for name, kind in seen.items()]
        await asyncio.gather(*(info.async_request(zc.zeroconf, seconds * 500) for info in infos))
        await browser.async_cancel()
    for info in infos:
        for address in info.parsed_addresses():
            if info.port:
                found.setdefault((address, info.port))
    return list(found)

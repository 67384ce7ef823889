"""MQTT input: CPU per message, and the delay from a publish to its FINISHED line.

A Mosquitto broker (Debian's ``mosquitto``) on a free loopback port.

* **CPU per message**: a ``Monitor`` watching ``APPLIANCES`` plain-format MQTT
  appliances takes ``MESSAGES`` messages that ``mosquitto_pub -l`` (another
  process) sends as fast as it can, round-robin over the appliances; the CPU
  of this process from the first message to the last, per message.  Beside
  it, paho-mqtt's own threaded client (``loop_forever``) receiving the same
  messages into a callback that only counts them: what reading MQTT costs
  at all, without decoding or detection.
* **Delay publish -> FINISHED**: a publisher on the same loop sends "2150",
  then "1" to an appliance with ``minsamples_finished = 1``; the time from
  handing the "1" to the publisher's client to the FINISHED event, over
  ``ROUNDS`` cycles (median and worst).  With ``minsamples_finished = 2`` the
  second low sample is the next pass's held value, so the delay is about
  ``monitor_interval``: shown for a 1-second interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from whitegoodsd import config as configuration
from whitegoodsd.detector import EventKind
from whitegoodsd.monitor import Monitor
from whitegoodsd.mqtt.link import Broker, Link

APPLIANCES = 20
MESSAGES = 20_000
LIMIT = 60.0  # seconds: a run that loses messages ends here, and says how many came
ROUNDS = 20


@dataclass(frozen=True)
class MessageFigures:
    client: str
    messages: int
    wall: float
    cpu_per_message: float


@dataclass(frozen=True)
class DelayFigures:
    case: str
    rounds: int
    median: float
    worst: float


@contextmanager
def mosquitto() -> Iterator[int]:
    """A broker on a free loopback port; yields the port."""
    program = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        probe.close()
        conf = Path(folder) / "mosquitto.conf"
        user = pwd.getpwuid(os.geteuid()).pw_name
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser {user}\n"
            "max_queued_messages 0\n"
        )
        process = subprocess.Popen(
            [program, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.01)
            yield port
        finally:
            process.terminate()
            process.wait()


def _ini(port: int, names: list[str], interval: float, finished: int) -> str:
    sections = "".join(
        f"[{n}]\ndriver = mqtt\nsmartplug = bench/{n}\nmqtt_format = plain\n"
        f"threshold_running_mw = 4000\nminsamples = 1\nminsamples_finished = {finished}\n"
        for n in names
    )
    return (
        f"[whitegoodsd]\nappliances = {', '.join(names)}\nmqtt_broker = 127.0.0.1:{port}\n"
        f"monitor_interval = {interval:g}\nmonitor_interval_nothing_running = {interval:g}\n"
        f"{sections}"
    )


def _monitor(port: int, names: list[str], interval: float, finished: int) -> Monitor:
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as handle:
        handle.write(_ini(port, names, interval, finished))
    try:
        config = configuration.load(handle.name)
    finally:
        os.unlink(handle.name)
    log = logging.getLogger("benchmarks.mqtt")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return Monitor(config, logger=log)


class Publishers:
    """One ``mosquitto_pub -l`` per appliance, started (and connected) before the clock runs."""

    def __init__(self, port: int, names: list[str], count: int) -> None:
        per_topic = count // len(names)
        self.lines = "".join(f"{(i % 50) * 100}\n" for i in range(per_topic)).encode()
        self.processes = [
            subprocess.Popen(
                ["mosquitto_pub", "-p", str(port), "-t", f"bench/{name}", "-l"],
                stdin=subprocess.PIPE,
            )
            for name in names
        ]
        time.sleep(1.0)  # their connections are up by then (this is set-up, not measured)
        self.thread = threading.Thread(target=self._feed)

    def _feed(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(self.lines)
            process.stdin.close()

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        for process in self.processes:
            process.wait()


async def whitegoodsd_messages(port: int) -> MessageFigures:
    names = [f"A{i}" for i in range(APPLIANCES)]
    monitor = _monitor(port, names, 3600.0, 3)
    runner = asyncio.create_task(monitor.run(install_signals=False))
    hub: object = None
    while hub is None:
        await asyncio.sleep(0.05)
        hub = next(iter(monitor.hubs.hubs.values()), None)
    while not getattr(hub, "connected", False):  # noqa: ASYNC110 - polled, not timed
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the subscriptions are acknowledged by now
    start_count = getattr(hub, "messages", 0)
    total = (MESSAGES // APPLIANCES) * APPLIANCES
    publisher = Publishers(port, names, MESSAGES)
    wall, cpu = time.perf_counter(), time.process_time()
    publisher.start()
    deadline = time.monotonic() + LIMIT
    while getattr(hub, "messages", 0) - start_count < total and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    got = getattr(hub, "messages", 0) - start_count
    publisher.join()
    monitor.stop()
    await runner
    return MessageFigures("whitegoodsd (decode + detector)", got, wall, cpu / max(got, 1))


def paho_messages(port: int) -> MessageFigures:
    """paho-mqtt's threaded client, counting messages and nothing else."""
    import paho.mqtt.client as paho

    names = [f"A{i}" for i in range(APPLIANCES)]
    total = (MESSAGES // APPLIANCES) * APPLIANCES
    got = [0]
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: object, userdata: object, message: object) -> None:
        got[0] += 1
        if got[0] >= total:
            done.set()

    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe([(f"bench/{n}", 1) for n in names])
    client.loop_start()
    subscribed.wait(30)
    publisher = Publishers(port, names, MESSAGES)
    wall, cpu = time.perf_counter(), time.process_time()
    publisher.start()
    done.wait(LIMIT)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    publisher.join()
    client.loop_stop()
    client.disconnect()
    return MessageFigures(
        "paho-mqtt loop_forever, counting only", got[0], wall, cpu / max(got[0], 1)
    )


async def finished_delays(port: int, finished: int, interval: float) -> DelayFigures:
    monitor = _monitor(port, ["WASHER"], interval, finished)
    events: asyncio.Queue[tuple[EventKind, float]] = asyncio.Queue()
    monitor.listeners.append(
        lambda name, event: events.put_nowait((event.kind, time.perf_counter()))
    )
    runner = asyncio.create_task(monitor.run(install_signals=False))
    quiet = logging.getLogger("benchmarks.mqtt.publisher")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    publisher = Link(Broker("127.0.0.1", port), on_message=lambda t, p: None, log=quiet)
    publisher.start()
    while not publisher.connected or not any(  # noqa: ASYNC110 - polled, not timed
        getattr(h, "connected", False) for h in monitor.hubs.hubs.values()
    ):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    delays = []
    for _ in range(ROUNDS):
        publisher.publish("bench/WASHER", b"2150")
        kind, _ = await asyncio.wait_for(events.get(), 30)
        assert kind is EventKind.RUNNING
        sent = time.perf_counter()
        publisher.publish("bench/WASHER", b"1")
        kind, at = await asyncio.wait_for(events.get(), 30 + 2 * interval)
        assert kind is EventKind.FINISHED
        delays.append(at - sent)
    await publisher.close()
    monitor.stop()
    await runner
    case = (
        "minsamples_finished = 1 (the message finishes it)"
        if finished == 1
        else f"minsamples_finished = {finished}, passes every {interval:g} s (held value)"
    )
    return DelayFigures(case, ROUNDS, statistics.median(delays), max(delays))


def run() -> tuple[list[MessageFigures], list[DelayFigures]]:
    with mosquitto() as port:
        messages = [asyncio.run(whitegoodsd_messages(port)), paho_messages(port)]
        delays = [
            asyncio.run(finished_delays(port, 1, 3600.0)),
            asyncio.run(finished_delays(port, 2, 1.0)),
        ]
    return messages, delays

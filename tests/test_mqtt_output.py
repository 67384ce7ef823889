"""The MQTT output through the daemon, watched by mosquitto_sub on '#'.

A real Home Assistant is not practical here: its discovery configs are
checked against the schema HA documents for MQTT discovery (required keys,
device and state classes with their units, unique ids, topic syntax).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.kasa import KasaServer, start_kasa
from whitegoodsd.outputs import homeassistant

from conftest import Daemon, SyslogListener, write_ini
from kit import LoopThread
from mosquitto import Mosquitto, Subscriber

pytest.importorskip("paho.mqtt.client")

# From the MQTT binary_sensor, sensor and event pages of the Home Assistant documentation.
BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window",
}  # fmt: skip
SENSOR_UNITS = {"power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
                "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh",
                           "cal", "kcal", "Mcal", "Gcal"}}  # fmt: skip
STATE_CLASSES = {"power": {"measurement"}, "energy": {"total", "total_increasing"}}
REQUIRED = {"binary_sensor": {"state_topic"}, "sensor": {"state_topic"},
            "event": {"state_topic", "event_types"}}  # fmt: skip
ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def check_discovery(topic: str, config: dict[str, Any], prefix: str) -> str:
    """Check one config as HA would; returns its unique id."""
    head, component, node, object_id, tail = topic.split("/")
    assert (head, tail) == ("homeassistant", "config")
    assert ID.match(node) and ID.match(object_id)
    assert component in REQUIRED
    assert REQUIRED[component] <= set(config), topic
    for key in ("state_topic", "availability_topic"):
        assert "+" not in config[key] and "#" not in config[key]
    assert config["availability_topic"] == f"{prefix}/status"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    device = config["device"]
    assert device["identifiers"] and device["name"]
    if component == "binary_sensor":
        assert config["device_class"] in BINARY_SENSOR_CLASSES
        assert config["device_class"] == "running"
    elif component == "sensor":
        kind = config["device_class"]
        assert config["unit_of_measurement"] in SENSOR_UNITS[kind]
        assert config["state_class"] in STATE_CLASSES[kind]
    else:
        assert config["event_types"] == ["RUNNING", "FINISHED", "UNREACHABLE", "REACHABLE"]
    unique: str = config["unique_id"]
    assert ID.match(unique)
    return unique


class KasaPlugs:
    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.servers: list[KasaServer] = []

    def start(self, name: str) -> tuple[int, SettablePower]:
        power = SettablePower(1000)
        server = self.loop.run(start_kasa("127.0.0.1", 0, power, alias=name))
        self.servers.append(server)
        return server.port, power

    def set(self, power: SettablePower, watts: float) -> None:
        self.loop.call(lambda: power.set(round(watts * 1000)))


@pytest.fixture
def kasa(loop_thread: LoopThread) -> Iterator[KasaPlugs]:
    plugs = KasaPlugs(loop_thread)
    yield plugs
    for server in plugs.servers:
        loop_thread.run(server.close())


def ini_for(
    tmp_path: Path, syslog: SyslogListener, broker: Mosquitto, plugs: dict[str, int], **extra: str
) -> Path:
    main = "\n".join(f"{k} = {v}" for k, v in extra.items())
    sections = "".join(
        f"[{name}]\nsmartplug = 127.0.0.1:{port}\nthreshold_running_mw = 4000\nminsamples = 2\n"
        for name, port in plugs.items()
    )
    return write_ini(
        tmp_path / "whitegoodsd.ini",
        f"[whitegoodsd]\nappliances = {', '.join(plugs)}\nmonitor_interval = 0.1\n"
        f"monitor_interval_nothing_running = 0.1\nsyslog_address = {syslog.path}\n"
        f"mqtt_broker = {broker.address}\nmqtt_publish = yes\n{main}\n{sections}",
    )


def test_every_topic_and_payload(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
    kasa: KasaPlugs,
) -> None:
    """Kasa plugs only: the output makes its own broker connection."""
    broker = mosquitto()
    sub = subscriber(broker.port)
    port, power = kasa.start("DISH/WASHER")
    other, _ = kasa.start("DRYER")
    ini = ini_for(
        tmp_path, syslog, broker, {"DISH/WASHER": port, "DRYER": other},
        homeassistant_discovery="yes", mqtt_prefix="home/laundry",
    )  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    sub.wait_for("home/laundry/status", "online")
    base = "home/laundry/DISH%2FWASHER"
    sub.wait_for(f"{base}/running", "OFF")
    sub.wait_for(f"{base}/power", "1")
    kasa.set(power, 2150.0)
    at, running = sub.wait_for(f"{base}/event")
    event = json.loads(running[2])
    assert event["event"] == event["event_type"] == "RUNNING"
    assert event["appliance"] == "DISH/WASHER"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", event["at"])
    assert not running[1]  # events are not retained
    sub.wait_for(f"{base}/running", "ON", after=at - 5)
    sub.wait_for(f"{base}/power", "2150")
    kasa.set(power, 1.0)
    _, finished = sub.wait_for(f"{base}/event", after=at + 1)
    cycle = json.loads(finished[2])
    assert cycle["event"] == "FINISHED"
    assert {"duration_s", "energy_wh", "peak_w"} <= set(cycle)
    assert cycle["peak_w"] == 2150 and cycle["duration_s"] >= 0
    sub.wait_for(f"{base}/running", "OFF", after=at)
    assert process.stop() == 0
    sub.wait_for("home/laundry/status", "offline")
    # Said by the daemon as it stopped (a clean DISCONNECT), not by the broker as its will.
    assert re.search(r"Client whitegoodsd-\S+ disconnected\.", broker.log.read_text())

    unique_ids = []
    configs = [m for m in sub.messages if m[0].startswith("homeassistant/")]
    assert len(configs) == 8  # four entities for each of two appliances
    for topic, _, payload in configs:
        unique_ids.append(check_discovery(topic, json.loads(payload), "home/laundry"))
    assert len(set(unique_ids)) == 8
    expected = {"home/laundry/status", "test/ready"} | {
        f"home/laundry/{n}/{w}" for n in ("DISH%2FWASHER", "DRYER")
        for w in ("running", "power", "energy", "event")
    }  # fmt: skip
    seen = {t for t, _, _ in sub.messages if not t.startswith("homeassistant/")}
    assert seen <= expected, seen - expected
    # What a newcomer gets: everything but the events, retained.
    late = subscriber(broker.port)
    retained = {t: p for t, r, p in late.messages if r}
    assert retained == {
        **{t: p for t, _, p in configs},
        "home/laundry/status": "offline",
        f"{base}/running": "OFF",
        f"{base}/power": "1",
        "home/laundry/DRYER/running": "OFF",
        "home/laundry/DRYER/power": "1",
        **{t: p for t, r, p in late.messages if t.endswith("/energy")},
    }
    assert not [t for t in retained if t.endswith("/event")]


def test_unique_ids_are_stable_and_follow_the_name() -> None:
    first = homeassistant.configs("whitegoodsd", "WASHER", "kasa")
    again = homeassistant.configs("whitegoodsd", "WASHER", "tapo")
    assert list(first) == list(again)  # the same topics whatever the plug
    other_daemon = homeassistant.configs("upstairs", "WASHER", "kasa")
    assert set(first).isdisjoint(other_daemon)
    assert homeassistant.node_id("whitegoodsd", "washer") == homeassistant.node_id(
        "whitegoodsd", "WASHER"
    )


def test_a_finished_during_a_broker_restart_arrives_after(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
    kasa: KasaPlugs,
) -> None:
    broker = mosquitto(persistence=True)
    # A persistent session: the broker keeps QoS 1 messages for it across its restart.
    sub = subscriber(broker.port, "#", "-c", "-i", "watcher")
    port, power = kasa.start("WASHER")
    ini = ini_for(tmp_path, syslog, broker, {"WASHER": port})
    process = daemon("-f", "-c", str(ini))
    kasa.set(power, 2150.0)
    syslog.wait_text("WASHER is RUNNING.")
    sub.wait_for("whitegoodsd/WASHER/event")
    broker.stop()
    syslog.wait_for(lambda m: m.text.startswith("Lost the MQTT broker"))
    kasa.set(power, 1.0)
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED."))
    broker.start()
    syslog.wait_text(f"MQTT broker {broker.address} is back.")
    index = -1
    while True:  # at least once: the RUNNING may come again with the restored session
        index, message = sub.wait_for("whitegoodsd/WASHER/event", after=index + 1)
        if json.loads(message[2])["event"] == "FINISHED":
            break
    sub.wait_for("whitegoodsd/WASHER/running", "OFF", after=index - 5)
    assert process.stop() == 0  # SIGTERM
    sub.wait_for("whitegoodsd/status", "offline")


def test_a_reload_clears_a_removed_appliance(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
    kasa: KasaPlugs,
) -> None:
    broker = mosquitto()
    sub = subscriber(broker.port)
    washer, _ = kasa.start("WASHER")
    dryer, _ = kasa.start("DRYER")
    ini = ini_for(
        tmp_path, syslog, broker, {"WASHER": washer, "DRYER": dryer},
        homeassistant_discovery="yes",
    )  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    dryer_topics = set(homeassistant.configs("whitegoodsd", "DRYER", "kasa"))
    for topic in dryer_topics:
        sub.wait_for(topic)
    ini_for(tmp_path, syslog, broker, {"WASHER": washer}, homeassistant_discovery="yes")
    process.process.send_signal(signal.SIGHUP)
    syslog.wait_text(f"Reloaded {ini}: 1 appliance(s).")
    for topic in dryer_topics:
        sub.wait_for(topic, "")
    washer_topics = set(homeassistant.configs("whitegoodsd", "WASHER", "kasa"))
    assert not [m for m in sub.messages if m[0] in washer_topics and not m[2]]

"""driver = mqtt through the daemon: a real Mosquitto, emulated publishers of each format."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.mqtt import MqttPublisher, start_publisher
from whitegoodsd.mqtt.link import Broker

from conftest import Daemon, SyslogListener, need_program, write_ini
from kit import LoopThread
from mosquitto import Mosquitto

pytest.importorskip("paho.mqtt.client")

FORMATS = ["zigbee2mqtt", "tasmota", "shelly", "esphome", "plain", "json:ENERGY.Power"]


def ini_for(
    tmp_path: Path,
    syslog: SyslogListener,
    broker: Mosquitto,
    plugs: dict[str, tuple[str, str]],  # name -> (smartplug, format)
    **extra: str,
) -> Path:
    main = "\n".join(f"{k} = {v}" for k, v in extra.items())
    sections = "".join(
        f"[{name}]\ndriver = mqtt\nsmartplug = {topic}\nmqtt_format = {fmt}\n"
        "threshold_running_mw = 4000\nminsamples = 2\n"
        for name, (topic, fmt) in plugs.items()
    )
    return write_ini(
        tmp_path / "whitegoodsd.ini",
        f"[whitegoodsd]\nappliances = {', '.join(plugs)}\nmonitor_interval = 0.1\n"
        f"monitor_interval_nothing_running = 0.1\nsyslog_address = {syslog.path}\n"
        f"mqtt_broker = {broker.address}\n{main}\n{sections}",
    )


class Publishers:
    """Emulated publishers on a loop thread, each with a power set by the test."""

    def __init__(self, loop: LoopThread, broker: Mosquitto) -> None:
        self.loop = loop
        self.broker = Broker("127.0.0.1", broker.port)
        self.started: list[MqttPublisher] = []

    def start(self, fmt: str, name: str, watts: float = 0.0) -> tuple[MqttPublisher, SettablePower]:
        power = SettablePower(round(watts * 1000))
        publisher = self.loop.run(
            start_publisher(self.broker, fmt, name, power, interval=0.02, period=None)
        )
        self.started.append(publisher)
        return publisher, power

    def set(self, power: SettablePower, watts: float) -> None:
        self.loop.call(lambda: power.set(round(watts * 1000)))

    def close(self) -> None:
        for publisher in self.started:
            self.loop.run(publisher.close())


@pytest.fixture
def publishers(
    loop_thread: LoopThread, mosquitto: Callable[..., Mosquitto]
) -> Iterator[tuple[Mosquitto, Publishers]]:
    broker = mosquitto()
    made = Publishers(loop_thread, broker)
    yield broker, made
    made.close()


def publish(broker: Mosquitto, topic: str, payload: str) -> None:
    program = need_program("mosquitto_pub", "apt-get install mosquitto-clients")
    subprocess.run(
        [program, "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-m", payload],
        check=True,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cycle_in_each_format(
    fmt: str,
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    publishers: tuple[Mosquitto, Publishers],
) -> None:
    broker, made = publishers
    publisher, power = made.start(fmt, "washer", 1.0)
    ini = ini_for(tmp_path, syslog, broker, {"WASHER": (publisher.smartplug, fmt)})
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text(f"Connected to the MQTT broker {broker.address}.")
    made.set(power, 2150.0)
    syslog.wait_text("WASHER is RUNNING.")
    made.set(power, 1.0)
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED. Ran 0:00:"))
    assert process.stop() == 0
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert not [t for t in texts if "Error" in t or "Bad message" in t]


def test_a_plug_that_reports_only_on_change(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    mosquitto: Callable[..., Mosquitto],
) -> None:
    """One message says 2,150 W, one says 1 W: the held values run and finish the cycle."""
    broker = mosquitto()
    ini = ini_for(tmp_path, syslog, broker, {"DRYER": ("home/dryer/power", "plain")}, log_debug="1")
    settings = "minsamples_finished = 3\nfinish_delay = 0.5\nthreshold_finished_mw = 2000\n"
    ini.write_text(ini.read_text() + settings)
    daemon("-f", "-c", str(ini))
    syslog.wait_text(f"Connected to the MQTT broker {broker.address}.")
    syslog.wait_text("DRYER polling. Current state: Stopped.", new=True)  # subscribed by now
    publish(broker, "home/dryer/power", "2150")
    syslog.wait_text("DRYER is RUNNING.")
    publish(broker, "home/dryer/power", "1")
    finished = syslog.wait_for(lambda m: m.text.startswith("DRYER is FINISHED."))
    texts = [m.text for m in syslog.messages]
    said = texts.index("DRYER current usage is 1,000 mW; threshold is 4,000 mW")
    assert texts.count("DRYER current usage is 1,000 mW; threshold is 4,000 mW") == 1
    # No further message: passes read the held 1 W until there were three low samples
    # spanning finish_delay.
    passes = [t for t in texts[said : texts.index(finished.text)] if t.startswith("DRYER poll")]
    assert len(passes) >= 2


def test_broker_restart_mid_cycle(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    publishers: tuple[Mosquitto, Publishers],
) -> None:
    broker, made = publishers
    publisher, power = made.start("zigbee2mqtt", "washer", 1.0)
    ini = ini_for(
        tmp_path, syslog, broker, {"WASHER": (publisher.smartplug, "zigbee2mqtt")},
        unreachable_after="1000",
    )  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text(f"Connected to the MQTT broker {broker.address}.")
    made.set(power, 2150.0)
    syslog.wait_text("WASHER is RUNNING.")
    broker.stop()
    syslog.wait_for(lambda m: m.text.startswith(f"Lost the MQTT broker {broker.address}"))
    made.set(power, 1.0)  # the cycle ends while the broker is away: the message is lost
    broker.start()
    syslog.wait_text(f"MQTT broker {broker.address} is back.")
    made.set(power, 0.5)  # the next report
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED."))
    assert process.stop() == 0
    about_broker = [t for t in syslog.texts() if "MQTT broker" in t]
    assert len(about_broker) == 3, about_broker  # connected, lost, back
    assert not [t for t in syslog.texts() if t.startswith("Error getting")]


def test_a_flood_starves_nobody(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    publishers: tuple[Mosquitto, Publishers],
) -> None:
    broker, made = publishers
    publisher, power = made.start("tasmota", "washer", 1.0)
    ini = ini_for(
        tmp_path, syslog, broker,
        {"WASHER": (publisher.smartplug, "tasmota"), "FLOOD": ("flood/power", "plain")},
    )  # fmt: skip
    daemon("-f", "-c", str(ini))
    syslog.wait_text(f"Connected to the MQTT broker {broker.address}.")
    program = need_program("mosquitto_pub", "apt-get install mosquitto-clients")
    # Good and bad messages as fast as mosquitto_pub sends them, all through the cycle.
    flood = subprocess.Popen(
        [program, "-h", "127.0.0.1", "-p", str(broker.port), "-t", "flood/power", "-l"],
        stdin=subprocess.PIPE,
    )
    assert flood.stdin is not None
    try:
        flood.stdin.write(b"3\nNaN\n" * 5000)
        flood.stdin.flush()
        made.set(power, 2150.0)
        syslog.wait_text("WASHER is RUNNING.")
        flood.stdin.write(b"2150\nrubbish\n" * 5000)
        flood.stdin.flush()
        made.set(power, 1.0)
        syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED."))
        syslog.wait_text("FLOOD is RUNNING.")
    finally:
        flood.stdin.close()
        flood.wait(30)
    bad = [t for t in syslog.texts() if t.startswith("Bad message from FLOOD")]
    assert 1 <= len(bad) <= 10  # 10,000 bad messages, a few lines


def test_check_config_refuses_wildcards(
    tmp_path: Path, syslog: SyslogListener, daemon: Callable[..., Daemon]
) -> None:
    ini = write_ini(
        tmp_path / "bad.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        syslog_address = {syslog.path}

        [WASHER]
        driver = mqtt
        smartplug = zigbee2mqtt/+
        mqtt_format = zigbee2mqtt
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )
    process = daemon("--check-config", "-c", str(ini))
    assert process.process.wait(30) == 2
    out = process.stderr
    assert "[WASHER] smartplug: 'zigbee2mqtt/+' has a wildcard" in out
    assert "[whitegoodsd] mqtt_broker: needed by" not in out  # WASHER was refused already

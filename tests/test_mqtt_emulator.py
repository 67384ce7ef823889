"""The MQTT emulator: its payloads read alike by our decoders and by HATasmota, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.emulator.mqtt import payloads, smartplug
from whitegoodsd.errors import Reading
from whitegoodsd.protocols import mqtt_formats

from conftest import ROOT, need, need_program
from kit import WAIT
from mosquitto import Mosquitto, Subscriber

FORMATS = ["zigbee2mqtt", "tasmota", "shelly", "esphome", "plain", "json:a.0.power"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_payload_decodes_to_what_was_published(fmt: str) -> None:
    decoder = mqtt_formats.decoder(fmt, smartplug(fmt, "washer"))
    for watts, total in ((0.0, 0.0), (2150.4, 1234.5), (0.4, 10.0)):
        messages = payloads(fmt, "washer", watts, total, 1_700_000_000.0)
        assert [t for t, _ in messages] == [t for t in decoder.subscriptions() if t in
                                            {m[0] for m in messages}]  # fmt: skip
        (topic, payload), = messages  # fmt: skip
        reading = decoder.decode(topic, payload)
        assert isinstance(reading, Reading)
        assert abs(reading.power_mw - watts * 1000) <= (500 if fmt == "tasmota" else 50)


def test_hatasmota_reads_the_tasmota_payloads_alike() -> None:
    try:
        from hatasmota.utils import get_value_by_path  # type: ignore[import-untyped]
    except ImportError:
        need(False, "HATasmota not installed (pip install HATasmota)")
        return
    decoder = mqtt_formats.decoder("tasmota", "washer")
    for watts, total in ((0.0, 0.0), (2150.4, 1234.5), (35.0, 98765.4)):
        ((topic, payload),) = payloads("tasmota", "washer", watts, total, 0.0)
        ours = decoder.decode(topic, payload)
        assert isinstance(ours, Reading)
        energy = ["ENERGY"]
        assert get_value_by_path(payload.decode(), [*energy, "Power"]) * 1000 == ours.power_mw
        assert get_value_by_path(payload.decode(), [*energy, "Total"]) * 1000 == ours.total_wh
        assert get_value_by_path(payload.decode(), [*energy, "Voltage"]) * 1000 == ours.voltage_mv
        assert get_value_by_path(payload.decode(), [*energy, "Current"]) * 1000 == pytest.approx(
            ours.current_ma
        )
        status10 = json.dumps({"StatusSNS": json.loads(payload)})
        again = decoder.decode(topic, status10.encode())
        assert isinstance(again, Reading)
        assert get_value_by_path(status10, ["StatusSNS", *energy, "Power"]) * 1000 == again.power_mw


def test_the_emulate_command_publishes_and_prints_a_working_ini(
    tmp_path: Path,
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
) -> None:
    broker = mosquitto()
    sub = subscriber(broker.port)
    process = subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "emulate", "--driver", "mqtt",
         "--mqtt-format", "shelly", "--broker", broker.address, "--watts", "12.5", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        _, (_, _, payload) = sub.wait_for("plug/events/rpc")
        assert json.loads(payload)["params"]["switch:0"]["apower"] == 12.5
        sub.wait_for("plug/online", "true")
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=WAIT)
    sub.wait_for("plug/online", "false")
    assert f"mqtt_broker = {broker.address}" in out
    assert "smartplug = plug\n" in out and "mqtt_format = shelly" in out
    path = tmp_path / "emulated.ini"
    path.write_text(out)
    loaded = configuration.load(str(path))
    assert loaded.mqtt_broker == ("127.0.0.1", broker.port)
    assert loaded.appliances[0].plug.host == "plug"


def test_discover_lists_the_plugs_on_a_broker(
    tmp_path: Path, mosquitto: Callable[..., Mosquitto]
) -> None:
    from test_mqtt_formats import SHELLY_NOTIFY_POWER, TASMOTA_SENSOR, Z2M_STATE

    broker = mosquitto()
    publish = need_program("mosquitto_pub", "apt-get install mosquitto-clients")
    retained = {
        "zigbee2mqtt/Washing machine": Z2M_STATE,
        "zigbee2mqtt/Hall lamp": b'{"state":"ON","brightness":254}',
        "tele/tasmota_1A2B3C/SENSOR": TASMOTA_SENSOR,
        "shellyplusplugs-b0b2/events/rpc": SHELLY_NOTIFY_POWER,
        "dryer/sensor/dryer_power/state": b"1234.5",
        "dryer/sensor/temperature/state": b"21.5",
        "garden/weather": b"sunny",
    }
    for topic, payload in retained.items():
        subprocess.run(
            [publish, "-p", str(broker.port), "-t", topic, "-r", "-m", payload.decode()],
            check=True,
        )
    out = subprocess.run(
        [sys.executable, "-m", "whitegoodsd", "discover", "--driver", "mqtt", "--target",
         broker.address, "--timeout", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT, check=True,
    ).stdout  # fmt: skip
    ini = tmp_path / "found.ini"
    ini.write_text(
        out.replace("; for [whitegoodsd]: ", f"[whitegoodsd]\nmqtt_broker = {broker.address}\n")
    )
    config = configuration.load(str(ini))
    found = {(a.plug.host, a.plug.option("mqtt_format")) for a in config.appliances}
    assert found == {
        ("zigbee2mqtt/Washing machine", "zigbee2mqtt"),
        ("tasmota_1A2B3C", "tasmota"),
        ("shellyplusplugs-b0b2", "shelly"),
        ("dryer/sensor/dryer_power/state", "esphome"),
    }

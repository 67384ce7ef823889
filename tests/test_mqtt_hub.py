"""The MQTT hub against a real Mosquitto: delivery, login, loss and return of the broker."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from whitegoodsd.config import Config
from whitegoodsd.drivers.mqtt import BrokerDown, MqttPlug
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.mqtt.hub import ERRORS_PER_MINUTE, Hub

from conftest import need_program
from kit import WAIT
from mosquitto import Mosquitto

pytest.importorskip("paho.mqtt.client")


class Deliveries:
    """What the hub delivered, with a way to wait for the next one."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Reading | PlugError, float]] = []
        self.changed = asyncio.Event()

    def __call__(self, name: str, outcome: Reading | PlugError, at: float) -> None:
        self.got.append((name, outcome, at))
        self.changed.set()

    async def wait(self, count: int) -> None:
        async def until() -> None:
            while len([o for _, o, _ in self.got if isinstance(o, Reading)]) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), WAIT)


class Lines(logging.Handler):
    """Log records of INFO and above as text, with a way to wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())
        self.changed.set()

    async def wait(self, predicate: Callable[[str], bool]) -> str:
        async def until() -> str:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(until(), WAIT)


def logger() -> tuple[logging.Logger, Lines]:
    log = logging.getLogger(f"test.mqtt.{id(object())}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    lines = Lines()
    log.addHandler(lines)
    return log, lines


def publish(broker: Mosquitto, topic: str, payload: str, *extra: str) -> None:
    program = need_program("mosquitto_pub", "apt-get install mosquitto-clients")
    subprocess.run(
        [program, "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-m", payload, *extra],
        check=True,
    )


def config(broker: Mosquitto, username: str | None = None, password: str | None = None) -> Config:
    return Config(
        path="test.ini",
        appliances=(),
        mqtt_broker=("127.0.0.1", broker.port),
        mqtt_username=username,
        mqtt_password=password,
    )


def plug(topic: str, fmt: str = "plain") -> MqttPlug:
    return MqttPlug(topic, None, 5.0, {"mqtt_format": fmt})


async def connected(hub: Hub) -> None:
    """Return once the hub is connected (now, or at its next connection)."""
    up = asyncio.Event()
    hub.up_listeners.append(up.set)
    try:
        if not hub.connected:
            await asyncio.wait_for(up.wait(), WAIT)
    finally:
        hub.up_listeners.remove(up.set)


async def subscribed(broker: Mosquitto, deliveries: Deliveries, topic: str) -> None:
    """Publish probes until one arrives: the subscription is in place."""
    before = len(deliveries.got)
    for _ in range(int(WAIT / 0.2)):
        publish(broker, topic, '{"power": 0}' if topic.startswith("z2m/") else "0")
        try:
            await asyncio.wait_for(deliveries.wait(before + 1), 0.2)
            return
        except TimeoutError:
            continue
    raise AssertionError(f"never subscribed to {topic}")


def test_messages_reach_deliver_once_each(mosquitto: Callable[..., Mosquitto]) -> None:
    broker = mosquitto()

    async def main() -> None:
        deliveries = Deliveries()
        log, lines = logger()
        hub = Hub(config(broker), deliveries, log)
        washer = plug("home/washer/power")
        await hub.start()
        hub.attach("WASHER", washer)
        await connected(hub)
        await subscribed(broker, deliveries, "home/washer/power")
        start = len(deliveries.got)
        for watts in ("12.5", "2150", "0.4"):
            publish(broker, "home/washer/power", watts)
        await deliveries.wait(start + 3)
        got = [(n, o) for n, o, _ in deliveries.got[start:]]
        assert got == [
            ("WASHER", Reading(12_500)),
            ("WASHER", Reading(2_150_000)),
            ("WASHER", Reading(400)),
        ]
        assert "Connected to the MQTT broker " + broker.address + "." in lines.lines
        assert hub.silent("WASHER") is None  # a plug reporting on change may be silent
        await hub.close()
        assert isinstance(washer.silent(0.0), BrokerDown)

    asyncio.run(main())


def test_bad_payloads_are_one_line_each_and_limited(mosquitto: Callable[..., Mosquitto]) -> None:
    broker = mosquitto()

    async def main() -> None:
        deliveries = Deliveries()
        log, lines = logger()
        hub = Hub(config(broker), deliveries, log)
        await hub.start()
        hub.attach("DRYER", plug("z2m/dryer", "zigbee2mqtt"))
        await connected(hub)
        await subscribed(broker, deliveries, "z2m/dryer")
        probes = len(deliveries.got)
        bad = ['{"power": NaN}', "not json", '{"power": "12"}', "[1, 2]", '{"power": 1e999}']
        bad += ['{"state": "ON"}', '{"power": 12', "x" * 70_000]
        for payload in bad:
            publish(broker, "z2m/dryer", payload)
        publish(broker, "z2m/dryer", '{"power": 3.5}')
        await deliveries.wait(probes + 1)
        assert [o for _, o, _ in deliveries.got[probes:]] == [Reading(3500)]
        errors = [t for t in lines.lines if t.startswith("Bad message from DRYER on z2m/dryer: ")]
        assert len(errors) == ERRORS_PER_MINUTE  # of 8 bad messages
        reason = "not JSON: Expecting value: line 1 column 1 (char 0)"
        assert errors[1] == f"Bad message from DRYER on z2m/dryer: {reason}"
        assert all("\n" not in e and len(e) < 200 for e in errors)
        await hub.close()

    asyncio.run(main())


def test_password_broker(mosquitto: Callable[..., Mosquitto]) -> None:
    broker = mosquitto(users={"whitegoodsd": "s3cret pass"})

    async def main() -> None:
        log, lines = logger()
        refused = Hub(config(broker, "whitegoodsd", "wrong"), Deliveries(), log)
        await refused.start()
        line = await lines.wait(lambda t: "refused the connection" in t)
        assert line.startswith(f"Cannot use the MQTT broker {broker.address}: refused")
        assert not refused.connected
        await refused.close()

        deliveries = Deliveries()
        hub = Hub(config(broker, "whitegoodsd", "s3cret pass"), deliveries, log)
        await hub.start()
        hub.attach("OVEN", plug("oven"))
        await connected(hub)
        await hub.close()

    asyncio.run(main())


def test_broker_lost_and_back_once_each_and_resubscribed(
    mosquitto: Callable[..., Mosquitto],
) -> None:
    broker = mosquitto()

    async def main() -> None:
        deliveries = Deliveries()
        log, lines = logger()
        hub = Hub(config(broker), deliveries, log)
        washer = plug("washer")
        await hub.start()
        hub.attach("WASHER", washer)
        await connected(hub)
        broker.stop()
        await lines.wait(lambda t: t.startswith("Lost the MQTT broker"))
        assert isinstance(hub.silent("WASHER"), BrokerDown)
        await asyncio.sleep(2.5)  # a few reconnection attempts fail meanwhile
        broker.start()
        await lines.wait(lambda t: t == f"MQTT broker {broker.address} is back.")
        await subscribed(broker, deliveries, "washer")
        info = [t for t in lines.lines if "MQTT broker" in t]
        assert len(info) == 3, info  # connected, lost, back: nothing per attempt
        await hub.close()

    asyncio.run(main())


def test_no_broker_at_start_is_one_line(mosquitto: Callable[..., Mosquitto]) -> None:
    broker = mosquitto()
    broker.stop()

    async def main() -> None:
        log, lines = logger()
        hub = Hub(config(broker), Deliveries(), log)
        await hub.start()
        line = await lines.wait(lambda t: "MQTT broker" in t)
        assert line == (
            f"Cannot use the MQTT broker {broker.address}: cannot connect: connection refused; "
            "retrying."
        )
        broker.start()
        await connected(hub)
        await hub.close()

    asyncio.run(main())


def test_two_connections_in_one_process_keep_each_other_up(
    mosquitto: Callable[..., Mosquitto],
) -> None:
    """Each connection has a client id of its own (a broker drops one whose id logs in again)."""
    broker = mosquitto()

    async def main() -> None:
        first, second = Deliveries(), Deliveries()
        log, lines = logger()
        one = Hub(config(broker), first, log)
        two = Hub(config(broker), second, log)
        for hub in (one, two):
            await hub.start()
            hub.attach("WASHER", plug("home/washer"))
            await connected(hub)
        await subscribed(broker, first, "home/washer")
        await subscribed(broker, second, "home/washer")
        assert one.connected and two.connected
        assert not [t for t in lines.lines if t.startswith("Lost")]
        await one.close()
        await two.close()

    asyncio.run(main())


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for 127.0.0.1, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whitegoodsd test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_tls_with_a_ca_file(tmp_path: Path, mosquitto: Callable[..., Mosquitto]) -> None:
    ca, cert, key = make_certificates(tmp_path)
    broker = mosquitto(tls=(ca, cert, key))

    async def main() -> None:
        log, lines = logger()
        wrong = Hub(replace(config(broker), mqtt_tls=True), Deliveries(), log)
        await wrong.start()  # the system's CAs do not know this one
        line = await lines.wait(lambda t: "MQTT broker" in t)
        assert line.startswith(f"Cannot use the MQTT broker {broker.address}: cannot connect: TLS")
        await wrong.close()
        deliveries = Deliveries()
        secure = replace(config(broker), mqtt_tls=True, mqtt_ca_file=str(ca))
        hub = Hub(secure, deliveries, log)
        await hub.start()
        hub.attach("WASHER", plug("home/washer"))
        await connected(hub)
        await hub.close()

    asyncio.run(main())

"""TP-Link's UDP 20002 discovery: the codec beside python-kasa's, the emulated
plugs found by the discovery module, and what ``whitegoodsd discover`` prints."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.discovery import tdp as finding
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.kasa import KasaDevice
from whitegoodsd.emulator.klap import KlapServer, start_klap
from whitegoodsd.emulator.smart import SmartDevice
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import tdp

from conftest import ROOT, LoopThread, attempt, one_line

RESULT = {"device_type": "SMART.TAPOPLUG", "device_model": "P110(UK)", "mac": "3C-52-A1-00-00-01",
          "ip": "127.0.0.1", "device_id": "0" * 32, "owner": "", "factory_default": False,
          "is_support_iot_cloud": True, "obd_src": "tplink",
          "mgt_encrypt_schm": {"is_support_https": False, "encrypt_type": "KLAP",
                               "http_port": 80, "lv": 2}}  # fmt: skip


def test_python_kasas_probe_passes_our_header_and_crc_check() -> None:
    from kasa.discover import _AesDiscoveryQuery

    query = bytes(_AesDiscoveryQuery.generate_query())
    params = tdp.parse_packet(query)["params"]
    assert params["rsa_key"].startswith("-----BEGIN PUBLIC KEY-----")
    broken = query[:20] + bytes([query[20] ^ 1]) + query[21:]
    with pytest.raises(ProtocolError, match="CRC"):
        tdp.parse_packet(broken)


def test_our_probe_is_what_python_kasa_sends_but_for_the_key_and_serial() -> None:
    ours = tdp.probe("KEY", serial=0x01020304)
    assert ours[:4] == bytes([2, 0, 0, 1]) and ours[6:8] == bytes([0x11, 0])
    assert ours[8:12] == bytes([1, 2, 3, 4])
    assert tdp.parse_packet(ours) == {"params": {"rsa_key": "KEY"}}


def test_python_kasa_takes_our_reply_for_a_klap_tapo_plug() -> None:
    from kasa.discover import Discover, DiscoveryResult

    info = Discover._get_discovery_json(tdp.reply(RESULT), "127.0.0.1")
    result = DiscoveryResult.from_dict(info["result"])
    parameters = Discover._get_connection_parameters(result)
    assert parameters.device_family.value == "SMART.TAPOPLUG"
    assert parameters.encryption_type.value == "KLAP"
    assert parameters.login_version == 2


@pytest.mark.parametrize(
    ("changes", "family", "meters", "tpap"),
    [
        ({}, "tapo", True, False),
        ({"device_type": "IOT.SMARTPLUGSWITCH", "device_model": "KP115(US)"}, "kasa", True, False),
        ({"device_model": "P100(EU)"}, "tapo", False, False),
        ({"device_model": "X1"}, "tapo", None, False),
        ({"mgt_encrypt_schm": {"encrypt_type": "TPAP", "http_port": 80}}, "tapo", True, True),
    ],
)
def test_parse_reply(changes: dict[str, object], family: str, meters: bool | None,
                     tpap: bool) -> None:  # fmt: skip
    device = tdp.parse_reply(tdp.reply({**RESULT, **changes}))
    assert (device.family, device.meters_power, device.tpap) == (family, meters, tpap)


@given(st.binary(max_size=300))
def test_any_datagram_is_a_device_or_one_line(data: bytes) -> None:
    outcome = attempt(lambda: tdp.parse_reply(data))
    if isinstance(outcome, ProtocolError):
        assert one_line(outcome)


@given(st.dictionaries(st.sampled_from([*RESULT, "tpap"]), st.none() | st.integers() | st.text()))
def test_any_result_is_a_device_or_one_line(result: dict[str, object]) -> None:
    outcome = attempt(lambda: tdp.parse_reply(tdp.reply(result)))
    if isinstance(outcome, ProtocolError):
        assert one_line(outcome)
    else:
        assert 0 < outcome.http_port < 65536


@pytest.fixture
def plugs(loop_thread: LoopThread) -> Iterator[tuple[KlapServer, KlapServer]]:
    tapo = loop_thread.run(start_klap("127.0.0.1", 0, SmartDevice(SettablePower(0)),
                                      mac="3C-52-A1-00-00-07"))  # fmt: skip
    kasa = loop_thread.run(start_klap("127.0.0.1", 0, KasaDevice(SettablePower(0)),
                                      device_type="IOT.SMARTPLUGSWITCH", model="KP115(EU)",
                                      version=1, mac="50-C7-BF-00-00-08"))  # fmt: skip
    yield tapo, kasa
    for server in (tapo, kasa):
        loop_thread.run(server.close())


def test_the_emulated_plugs_are_found(plugs: tuple[KlapServer, KlapServer]) -> None:
    tapo, kasa = plugs
    found = asyncio.run(finding.find(("127.0.0.1", tapo.port), 5))
    assert len(found) == 1
    plug = found[0]
    assert (plug.family, plug.port, plug.mac, plug.meters_power) == (
        "tapo", tapo.port, "3c:52:a1:00:00:07", True)  # fmt: skip
    assert plug.model == "P110(EU), KLAP"
    [other] = asyncio.run(finding.find(("127.0.0.1", kasa.port), 5))
    assert other.family == "kasa" and dict(other.options)["protocol"] == "klap"


def test_discover_prints_a_section_with_credential_placeholders(
    plugs: tuple[KlapServer, KlapServer],
) -> None:
    tapo, _ = plugs
    result = subprocess.run(
        [sys.executable, "-m", "whitegoodsd", "discover", "--driver", "tapo",
         "--target", f"127.0.0.1:{tapo.port}", "--timeout", "5"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"smartplug = 127.0.0.1:{tapo.port}" in lines
    assert "driver = tapo" in lines
    assert f"username = {finding.USERNAME_PLACEHOLDER}" in lines
    assert f"password = {finding.PASSWORD_PLACEHOLDER}" in lines


def test_discover_json_names_the_family() -> None:
    plug = finding.parse(tdp.reply(RESULT), ("192.0.2.5", 20002))
    assert json.loads(json.dumps(plug.options)) == [
        ["username", finding.USERNAME_PLACEHOLDER],
        ["password", finding.PASSWORD_PLACEHOLDER],
    ]
    assert plug.smartplug == "192.0.2.5"  # port 80 is the tapo default


def test_python_kasa_discovers_the_emulated_p110_and_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python-kasa's own discovery, pointed at loopback ports instead of 20002.

    Its probe for new devices goes to ``Discover.DISCOVERY_PORT_2`` (20002 on
    a LAN), here the UDP port of one emulated plug; its legacy probe and then
    its HTTP requests go to the ``port`` given, here the other plug, which
    ignores the legacy datagram and speaks KLAP.  python-kasa picks KLAP and
    SMART from the discovery reply alone.
    """
    from kasa import Credentials, Discover, Module

    async def scenario() -> None:
        device = SmartDevice(SettablePower(61_753))
        plug = await start_klap("127.0.0.1", 0, device, username="me@example.com",
                                password="pw", mac="3C-52-A1-00-00-09")  # fmt: skip
        responder = await start_klap("127.0.0.1", 0, SmartDevice(SettablePower(0)),
                                     username="me@example.com", password="pw")  # fmt: skip
        monkeypatch.setattr(Discover, "DISCOVERY_PORT_2", responder.port)
        try:
            found = await Discover.discover_single(
                "127.0.0.1", port=plug.port, discovery_timeout=5,
                credentials=Credentials("me@example.com", "pw"),
            )  # fmt: skip
            assert found is not None
            parameters = found.config.connection_type
            assert parameters.device_family.value == "SMART.TAPOPLUG"
            assert parameters.encryption_type.value == "KLAP"
            await found.update()
            assert found.modules[Module.Energy].current_consumption == pytest.approx(61.753)
            await found.disconnect()
            assert plug.handshakes == 1
        finally:
            await plug.close()
            await responder.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))

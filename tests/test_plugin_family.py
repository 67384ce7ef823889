"""A plug family is one module: dropped into drivers/, it is configured,
polled, listed by discover and emulate, and nothing else changes.

The test copies the package, adds one module (a made-up family that asks
for power in plain text over TCP), and uses the copy as a user would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT

FAMILY = '''
"""A made-up family: "POWER?\\n" over TCP, the answer in milliwatts on one line."""

from whitegoodsd.conversation import Connect, Conversation, exchange
from whitegoodsd.drivers.base import Driver, Option, ProtocolError, Reading


def _channel(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a channel number, got {text!r}")
    return int(text)


def _line(data: bytes) -> bytes | None:
    if not data:
        raise ProtocolError("closed before a whole line")
    return data if data.endswith(b"\\n") else None


class AsciiPlug(Driver):
    NAME = "ascii"
    DESCRIPTION = "a plug that answers POWER? in plain text"
    DEFAULT_PORT = 7777
    OPTIONS = (Option("outlet", _channel, "which outlet to ask", default=0),)
    DISCOVERY = "whitegoodsd.drivers.ascii"

    def poll(self) -> Conversation[Reading]:
        yield Connect(self.host, self.port or 7777)
        line = yield from exchange(b"POWER? %d\\n" % self.options["outlet"], _line)
        return Reading(power_mw=int(line))


async def find(target, seconds):
    return []


DRIVER = AsciiPlug
'''


@pytest.fixture
def package(tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(ROOT / "whitegoodsd", copy / "whitegoodsd")
    (copy / "whitegoodsd" / "drivers" / "ascii.py").write_text(FAMILY)
    return copy


@pytest.fixture
def ascii_plug() -> Iterator[tuple[int, list[bytes]]]:
    """A plug of the made-up family: answers 5,000 mW, records what it was asked."""
    server = socket.create_server(("127.0.0.1", 0))
    asked: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                asked.append(conn.recv(100))
                conn.sendall(b"5000\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], asked
    server.close()
    thread.join(5)


def whitegoodsd(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whitegoodsd", *args],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_new_family_module_is_configured_polled_and_listed(
    package: Path, ascii_plug: tuple[int, list[bytes]], tmp_path: Path
) -> None:
    port, asked = ascii_plug
    ini = tmp_path / "ascii.ini"
    ini.write_text(
        "[whitegoodsd]\nappliances = LAMP\n\n"
        f"[LAMP]\ndriver = ascii\nsmartplug = 127.0.0.1:{port}\noutlet = 2\n"
        "threshold_running_mw = 4000\nminsamples = 1\n"
    )
    checked = whitegoodsd(package, "--check-config", "-c", str(ini))
    assert checked.returncode == 0, checked.stderr
    assert f"LAMP: ascii plug at 127.0.0.1:{port}" in checked.stdout
    assert "outlet 2" in checked.stdout

    once = whitegoodsd(package, "--once", "-c", str(ini))
    assert once.returncode == 0, once.stderr
    assert f"LAMP  127.0.0.1:{port}  5.000 W" in once.stdout
    assert asked == [b"POWER? 2\n"]

    listed = whitegoodsd(package, "discover", "--help")
    assert "ascii" in listed.stdout


def test_a_family_option_is_validated_by_the_config(package: Path, tmp_path: Path) -> None:
    ini = tmp_path / "bad.ini"
    ini.write_text(
        "[whitegoodsd]\nappliances = LAMP\n\n"
        "[LAMP]\ndriver = ascii\nsmartplug = 127.0.0.1\noutlet = left\n"
        "threshold_running_mw = 4000\nminsamples = 1\n"
    )
    checked = whitegoodsd(package, "--check-config", "-c", str(ini))
    assert checked.returncode == 2
    assert f"{ini}:7: [LAMP] outlet: expected a channel number, got 'left'" in checked.stderr


def test_a_family_option_elsewhere_is_an_unknown_key(package: Path, tmp_path: Path) -> None:
    ini = tmp_path / "kasa.ini"
    ini.write_text(
        "[whitegoodsd]\nappliances = LAMP\n\n"
        "[LAMP]\nsmartplug = 127.0.0.1\noutlet = 1\nthreshold_running_mw = 4000\nminsamples = 1\n"
    )
    checked = whitegoodsd(package, "--check-config", "-c", str(ini))
    assert checked.returncode == 0
    assert "[LAMP] outlet: unknown key, ignored" in checked.stderr

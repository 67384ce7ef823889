"""The KLAP families' INI keys: credentials, shared defaults, a password others can read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.commands import check

from conftest import write_ini

TEXT = """\
[whitegoodsd]
appliances = WASHER, DRYER, KETTLE
username = shared@example.com
password = shared secret

[WASHER]
smartplug = 192.0.2.1
driver = tapo
threshold_running_mw = 4000
minsamples = 2

[DRYER]
smartplug = 192.0.2.2
driver = kasa
protocol = klap
password = own secret
threshold_running_mw = 4000
minsamples = 2

[KETTLE]
smartplug = 192.0.2.3
threshold_running_mw = 4000
minsamples = 2
"""


def test_credentials_in_the_main_section_are_every_plugs_default(tmp_path: Path) -> None:
    path = write_ini(tmp_path / "w.ini", TEXT)
    os.chmod(path, 0o600)
    config = configuration.load(str(path))
    assert config.warnings == ()
    plugs = {a.name: a.plug for a in config.appliances}
    assert plugs["WASHER"].option("username") == "shared@example.com"
    assert plugs["WASHER"].option("password") == "shared secret"
    assert plugs["DRYER"].option("password") == "own secret"
    assert plugs["DRYER"].option("protocol") == "klap"
    assert plugs["KETTLE"].option("protocol") == "auto"
    summary = check.summary(config)
    assert "secret" not in summary and "password (set)" in summary
    assert "DRYER: kasa plug at 192.0.2.2:80," in summary  # KLAP: HTTP
    assert "KETTLE: kasa plug at 192.0.2.3:9999," in summary
    assert "WASHER: tapo plug at 192.0.2.1:80," in summary


@pytest.mark.parametrize("mode", [0o644, 0o604])
def test_a_password_others_can_read_is_a_warning_per_key(tmp_path: Path, mode: int) -> None:
    path = write_ini(tmp_path / "w.ini", TEXT)
    os.chmod(path, mode)
    config = configuration.load(str(path))
    texts = [str(w) for w in config.warnings]
    assert texts == [
        f"{path}:4: [whitegoodsd] password: holds a password, but the file is readable by "
        f"others (mode {mode:04o}): chmod 0600 {path}",
        f"{path}:16: [DRYER] password: holds a password, but the file is readable by "
        f"others (mode {mode:04o}): chmod 0600 {path}",
    ]


def test_a_group_readable_file_or_one_without_a_password_is_fine(tmp_path: Path) -> None:
    path = write_ini(tmp_path / "w.ini", TEXT)
    os.chmod(path, 0o640)
    assert configuration.load(str(path)).warnings == ()
    bare = write_ini(tmp_path / "b.ini", TEXT.replace("password", ";password"))
    os.chmod(bare, 0o644)
    assert configuration.load(str(bare)).warnings == ()


def test_check_config_prints_the_warning_and_still_passes(tmp_path: Path) -> None:
    path = write_ini(tmp_path / "w.ini", TEXT)
    os.chmod(path, 0o644)
    result = subprocess.run(
        [sys.executable, "-m", "whitegoodsd", "--check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "readable by others (mode 0644): chmod 0600" in result.stderr
    assert "shared secret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("protocol = tcp", "expected one of auto, xor, klap, got 'tcp'"),
        ("http_port = 0", "expected a port from 1 to 65535"),
    ],
)
def test_bad_kasa_options(tmp_path: Path, line: str, message: str) -> None:
    path = write_ini(tmp_path / "w.ini", TEXT.replace("protocol = klap", line))
    with pytest.raises(configuration.ConfigError) as caught:
        configuration.load(str(path))
    assert message in str(caught.value)

"""The textfile output in process: what it writes, how, and how it fails."""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from whitegoodsd import __version__, outputs
from whitegoodsd import config as configuration
from whitegoodsd.errors import Reading
from whitegoodsd.outputs.textfile import TextfileOutput, render, write_atomically
from whitegoodsd.status import ApplianceStatus, CycleRecord

from conftest import ROOT, need_program

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


READING = Reading(61753, 230837, 451, 16323.0)
CYCLE = CycleRecord(1_699_990_000.0, 3600.0, 850.0, 2_150_000)


def status(
    name: str = "WASHER",
    *,
    reading: Reading | None = READING,
    running: bool = True,
    cycles: int = 3,
    last_poll: float | None = 1_700_000_000.5,
    last_cycle: CycleRecord | None = CYCLE,
) -> ApplianceStatus:
    return ApplianceStatus(
        name=name,
        driver="kasa",
        plug="127.0.0.1:9999",
        up=reading is not None,
        reading=reading,
        error=None if reading is not None else "connection refused",
        running=running,
        cycles=cycles,
        last_poll=last_poll,
        last_cycle=last_cycle,
    )


def series(text: str) -> Series:
    """Every sample of an exposition text, keyed by name and sorted labels."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.timestamp is None
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def key(name: str, appliance: str = "WASHER") -> tuple[str, tuple[tuple[str, str], ...]]:
    return f"whitegoodsd_appliance_{name}", (("appliance", appliance), ("driver", "kasa"))


def test_an_answering_plug_has_every_series_in_base_units() -> None:
    got = series(render([status()]).decode())
    assert got[key("up")] == 1
    assert got[key("running")] == 1
    assert got[key("cycles_total")] == 3
    assert got[key("last_poll_timestamp_seconds")] == 1_700_000_000.5
    assert got[key("power_watts")] == 61.753
    assert got[key("voltage_volts")] == 230.837
    assert got[key("current_amperes")] == 0.451
    assert got[key("energy_joules_total")] == 16323.0 * 3600
    assert got[key("last_cycle_duration_seconds")] == 3600.0
    assert got[key("last_cycle_energy_joules")] == 850.0 * 3600
    assert got["whitegoodsd_build_info", (("version", __version__),)] == 1
    assert len(got) == 11


def test_a_silent_plug_is_down_and_its_measurements_are_dropped() -> None:
    text = render([status(), status("DRYER", reading=None, running=False, cycles=0)]).decode()
    got = series(text)
    assert got[key("up", "DRYER")] == 0
    assert got[key("running", "DRYER")] == 0
    assert got[key("cycles_total", "DRYER")] == 0
    for name in ("power_watts", "voltage_volts", "current_amperes", "energy_joules_total"):
        assert key(name, "DRYER") not in got
        assert key(name, "WASHER") in got
    assert "NaN" not in text and "nan" not in text


def test_what_the_plug_does_not_report_is_left_out() -> None:
    got = series(render([status(reading=Reading(5000), last_cycle=None)]).decode())
    assert got[key("power_watts")] == 5.0
    for name in (
        "voltage_volts",
        "current_amperes",
        "energy_joules_total",
        "last_cycle_duration_seconds",
        "last_cycle_energy_joules",
    ):
        assert key(name) not in got
    # No HELP/TYPE lines for a family without samples either.
    assert "voltage_volts" not in render([status(reading=Reading(5000))]).decode()


def test_a_cycle_without_energy_has_a_duration_only() -> None:
    cycle = CycleRecord(1_699_990_000.0, 95.5, None, 0)
    got = series(render([status(last_cycle=cycle)]).decode())
    assert got[key("last_cycle_duration_seconds")] == 95.5
    assert key("last_cycle_energy_joules") not in got


def test_never_nan_nor_infinity() -> None:
    odd = status(
        reading=Reading(5000, total_wh=math.inf),
        last_poll=math.nan,
        last_cycle=CycleRecord(0.0, math.nan, math.inf, 0),
    )
    text = render([odd]).decode()
    assert "NaN" not in text and "Inf" not in text
    got = series(text)
    assert key("energy_joules_total") not in got
    assert key("last_poll_timestamp_seconds") not in got
    assert key("last_cycle_duration_seconds") not in got


def test_label_values_are_escaped() -> None:
    name = 'Wash "big"\\room\nA'
    got = series(render([status(name)]).decode())
    assert got[key("up", name)] == 1


def test_promtool_accepts_the_file(tmp_path: Path) -> None:
    promtool = need_program("promtool", "apt-get install prometheus")
    text = render([status(), status("DRYER", reading=None, last_cycle=None)])
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == b"" and checked.stderr == b""


def test_the_file_is_replaced_whole_with_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "whitegoodsd.prom"
    old = os.umask(0o077)  # mkstemp's 0600 must not survive, whatever the umask
    try:
        output = TextfileOutput(str(path))
        output.write([status()])
        first = path.stat()
        output.write([status(cycles=4)])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.stat().st_ino != first.st_ino  # renamed over, not rewritten in place
    assert series(path.read_text())[key("cycles_total")] == 4
    assert os.listdir(tmp_path) == ["whitegoodsd.prom"]
    output.close()
    assert path.exists()


def test_the_temporary_file_is_in_the_same_directory_and_not_dot_prom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renames.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomically(str(tmp_path / "whitegoodsd.prom"), b"x 1\n")
    [(src, dst)] = renames
    assert os.path.dirname(src) == str(tmp_path)
    assert not src.endswith(".prom")
    assert dst == str(tmp_path / "whitegoodsd.prom")


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing/whitegoodsd.prom", "No such file or directory"),
        ("a-file/whitegoodsd.prom", "Not a directory"),
    ],
)
def test_an_unusable_directory_is_one_line_per_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str, reason: str
) -> None:
    (tmp_path / "a-file").write_text("")
    path = tmp_path / where
    output = TextfileOutput(str(path), logging.getLogger("whitegoodsd"))
    with caplog.at_level(logging.INFO, "whitegoodsd"):
        output.write([status()])
        output.write([status()])
    assert errors(caplog) == [f"Cannot write textfile {path}: {reason}"] * 2
    assert sorted(os.listdir(tmp_path)) == ["a-file"]


WRITE_TWICE = """
import logging, sys
logging.basicConfig(format="%(message)s")
from whitegoodsd.outputs.textfile import TextfileOutput
output = TextfileOutput(sys.argv[1])
output.write([])
output.write([])
"""


def test_a_read_only_directory_is_one_line_per_pass(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir(mode=0o555)
    path = directory / "whitegoodsd.prom"
    prefix: list[str] = []
    if os.geteuid() == 0:
        # Root writes anywhere: take away the capabilities that let it.
        setpriv = need_program("setpriv", "apt-get install util-linux")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    try:
        run = subprocess.run(
            [*prefix, sys.executable, "-c", WRITE_TWICE, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert run.stderr.splitlines() == [f"Cannot write textfile {path}: Permission denied"] * 2
        assert os.listdir(directory) == []
    finally:
        directory.chmod(0o755)


def test_a_full_disk_leaves_no_temporary_file_and_recovery_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "whitegoodsd.prom"
    output = TextfileOutput(str(path))
    output.write([status(cycles=1)])
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with caplog.at_level(logging.INFO, "whitegoodsd"):
        output.write([status(cycles=2)])
        output.write([status(cycles=2)])
        assert errors(caplog) == [f"Cannot write textfile {path}: No space left on device"] * 2
        assert os.listdir(tmp_path) == ["whitegoodsd.prom"]
        # The previous file is still whole.
        assert series(path.read_text())[key("cycles_total")] == 1
        monkeypatch.setattr(os, "fsync", real_fsync)
        output.write([status(cycles=3)])
        output.write([status(cycles=4)])
    said = [r.getMessage() for r in caplog.records]
    assert said.count(f"Textfile {path} written again.") == 1
    assert series(path.read_text())[key("cycles_total")] == 4


def test_temporaries_of_a_killed_daemon_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "whitegoodsd.prom"
    (tmp_path / ".whitegoodsd.prom.k1ll3d.tmp").write_text("partial")
    (tmp_path / "other.prom").write_text("x 1\n")
    TextfileOutput(str(path))
    assert sorted(os.listdir(tmp_path)) == ["other.prom"]


def test_a_name_node_exporter_ignores_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "whitegoodsd"):
        TextfileOutput(str(tmp_path / "whitegoodsd.txt"))
    assert [r.getMessage() for r in caplog.records] == [
        f"textfile {tmp_path / 'whitegoodsd.txt'} does not end in .prom: "
        "node_exporter will not read it."
    ]


def ini(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "whitegoodsd.ini"
    path.write_text(
        textwrap.dedent(f"""
        [whitegoodsd]
        appliances = WASHER
        {extra}
        [WASHER]
        smartplug = 127.0.0.1
        threshold_running_mw = 4000
        minsamples = 2
        """)
    )
    return path


def test_build_makes_a_textfile_output_only_when_asked(tmp_path: Path) -> None:
    assert outputs.build(configuration.load(str(ini(tmp_path)))) == []
    prom = tmp_path / "whitegoodsd.prom"
    [built] = outputs.build(configuration.load(str(ini(tmp_path, f"textfile = {prom}"))))
    assert isinstance(built, TextfileOutput) and built.path == str(prom)


def test_without_a_textfile_prometheus_client_is_never_imported(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from whitegoodsd import config, outputs
        from whitegoodsd.monitor import Monitor
        Monitor(config.load({str(ini(tmp_path))!r}))
        assert "prometheus_client" not in sys.modules, "imported"
        """)
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert run.returncode == 0, run.stderr

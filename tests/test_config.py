"""The INI loader: the original's files load unchanged; bad input names FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from whitegoodsd import cli, drivers
from whitegoodsd.config import ConfigError, load, parse

# The original's sample file, byte for byte in spirit: a BOM, ';' comments.
ORIGINAL = (
    "\ufeff; whitegoodsd configuration\r\n"
    "[whitegoodsd]\r\n"
    "appliances=APPLIANCE1,APPLIANCE2\r\n"
    "monitor_interval=60\r\n"
    "monitor_interval_nothing_running=900\r\n"
    "log_debug=1\r\n"
    "\r\n"
    "[APPLIANCE1]\r\n"
    "smartplug=10.0.0.1\r\n"
    "threshold_running_mw=4000\r\n"
    "minsamples=3\r\n"
    "\r\n"
    "[APPLIANCE2]\r\n"
    "smartplug=10.0.0.2\r\n"
    "threshold_running_mw=2000\r\n"
    "minsamples=5\r\n"
)


def test_the_original_sample_loads(tmp_path: Path) -> None:
    path = tmp_path / "whitegoodsd.ini"
    path.write_bytes(ORIGINAL.encode("utf-8"))
    config = load(str(path))
    assert config.warnings == ()
    assert config.monitor_interval == 60
    assert config.monitor_interval_nothing_running == 900
    assert config.log_debug is True
    first, second = config.appliances
    assert (first.name, first.plug.host, first.plug.port, first.plug.driver) == (
        "APPLIANCE1",
        "10.0.0.1",
        None,
        "kasa",
    )
    assert (first.settings.threshold_running_mw, first.settings.minsamples) == (4000, 3)
    assert (first.settings.threshold_finished_mw, first.settings.minsamples_finished) == (4000, 3)
    assert (second.settings.threshold_running_mw, second.settings.minsamples) == (2000, 5)


def test_case_insensitive_sections_and_trimmed_names() -> None:
    config = parse(
        "[WhiteGoodsD]\nAppliances = washer , Dryer\n"
        "[WASHER]\nSmartPlug = 10.0.0.1:9998 ; the washer\nthreshold_running_mw=1\nminsamples=1\n"
        "[dryer]\nsmartplug=[fe80::1]:80\ndriver = KASA\nthreshold_running_mw=2\nminsamples=2\n"
        "# a comment\n",
        "x.ini",
    )
    washer, dryer = config.appliances
    assert washer.name == "washer" and washer.plug.port == 9998
    assert (dryer.plug.host, dryer.plug.port) == ("fe80::1", 80)


def test_extensions_and_literal_percent() -> None:
    config = parse(
        "[whitegoodsd]\nappliances=A\ntimeout=1.5\nunreachable_after=5\n"
        "syslog_address=logs.example:5514\nsyslog_facility=daemon\n"
        "textfile=/var/lib/x/100%.prom\nstate_file=/var/lib/whitegoodsd/state.json\n"
        "pidfile=/run/w.pid\nmonitor_interval=0.5\n"
        "[A]\nsmartplug=h\nthreshold_running_mw=5000\nminsamples=3\n"
        "threshold_finished_mw=1000\nminsamples_finished=10\n",
        "x.ini",
    )
    assert config.timeout == 1.5 and config.unreachable_after == 5
    assert config.syslog_address == ("logs.example", 5514)
    assert config.syslog_facility == 3
    assert config.textfile == "/var/lib/x/100%.prom"
    assert config.monitor_interval == 0.5
    appliance = config.appliances[0]
    assert (appliance.settings.threshold_finished_mw, appliance.settings.minsamples_finished) == (
        1000,
        10,
    )


BAD = """\
[whitegoodsd]
appliances = WASHER, DRYER, GHOST, WASHER
monitor_interval = soon
timeout = 0
syslog_facility = local9
[WASHER]
smartplug = 10.0.0.1:99999
threshold_running_mw = 4 kW
minsamples = 0
[DRYER]
driver = zigbee
threshold_running_mw = 1000
threshold_finished_mw = 2000
minsamples = 2
what is this
[SPARE]
smartplug = 10.0.0.9
"""


def test_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(BAD, "bad.ini")
    errors = [str(p) for p in caught.value.problems]
    assert errors == [
        "bad.ini:2: [whitegoodsd] appliances: no section [GHOST] for 'GHOST'",
        "bad.ini:2: [whitegoodsd] appliances: 'WASHER' is listed twice",
        "bad.ini:3: [whitegoodsd] monitor_interval: expected a number of seconds, got 'soon'",
        "bad.ini:4: [whitegoodsd] timeout: must be a positive number of seconds, got '0'",
        "bad.ini:5: [whitegoodsd] syslog_facility: unknown facility 'local9' "
        "(try local0 to local7, daemon, user)",
        "bad.ini:7: [WASHER] smartplug: expected a port from 1 to 65535, got '99999'",
        "bad.ini:8: [WASHER] threshold_running_mw: expected a whole number of milliwatts, "
        "got '4 kW'",
        "bad.ini:9: [WASHER] minsamples: must be at least 1, got 0",
        "bad.ini:10: [DRYER] smartplug: required key is missing",
        "bad.ini:11: [DRYER] driver: unknown driver 'zigbee' (known: "
        + ", ".join(drivers.registry())
        + ")",
        "bad.ini:15: [DRYER]: expected 'key = value', got 'what is this'",
    ]
    warnings = [str(p) for p in caught.value.warnings]
    assert warnings == ["bad.ini:16: [SPARE]: section is not named in 'appliances', ignored"]


def test_finished_threshold_above_running() -> None:
    with pytest.raises(
        ConfigError, match=r"x.ini:5: \[A\] threshold_finished_mw: 2,000 mW is above"
    ):
        parse(
            "[whitegoodsd]\nappliances=A\n[A]\nsmartplug=h\nthreshold_finished_mw=2000\n"
            "threshold_running_mw=1000\nminsamples=1\n",
            "x.ini",
        )


def test_unknown_keys_warn_with_a_suggestion() -> None:
    config = parse(
        "[whitegoodsd]\nappliances=A\nmonitor_intervall=5\n"
        "[A]\nsmartplug=h\nthreshold_running_mw=1\nminsamples=1\nthreshold_runing_mw=3\n",
        "x.ini",
    )
    assert [str(w) for w in config.warnings] == [
        "x.ini:3: [whitegoodsd] monitor_intervall: unknown key, ignored; "
        "did you mean 'monitor_interval'?",
        "x.ini:8: [A] threshold_runing_mw: unknown key, ignored; "
        "did you mean 'threshold_running_mw'?",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "x.ini:1: [whitegoodsd]: section is missing"),
        ("[whitegoodsd]\n", "x.ini:1: [whitegoodsd] appliances: required key is missing"),
        ("key=1\n[whitegoodsd]\nappliances=A\n", "x.ini:1: key: key outside any section"),
        ("[whitegoodsd\nappliances=A\n", "x.ini:1: malformed section header"),
    ],
)
def test_broken_files(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text, "x.ini")


@pytest.mark.parametrize("value", ["", " , "])
def test_an_empty_appliance_list_is_a_warning_and_watches_nothing(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "idle.ini"
    # Syslog over UDP: no warning about a missing /dev/log on a machine without one.
    path.write_text(
        "[whitegoodsd]\nmonitor_interval = 5\nsyslog_address = 127.0.0.1:514\n"
        f"appliances ={value}\n"
    )
    config = load(str(path))
    assert config.appliances == ()
    assert config.monitor_interval == 5
    assert [str(w) for w in config.warnings] == [
        f"{path}:4: [whitegoodsd] appliances: names no appliance: "
        "nothing is watched until one is added"
    ]
    assert cli.main(["--check-config", "-c", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: OK, 0 appliance(s)\n")
    assert err == f"{config.warnings[0]} (warning)\n"
    # Nothing to poll is not a failure.
    assert cli.main(["--once", "-c", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_sections_of_an_empty_list_are_still_checked_when_named() -> None:
    with pytest.raises(ConfigError, match=r"no section \[A\] for 'A'"):
        parse("[whitegoodsd]\nappliances = , A\n", "x.ini")


def test_log_debug_only_for_exactly_one() -> None:
    base = "[whitegoodsd]\nappliances=A\n[A]\nsmartplug=h\nthreshold_running_mw=1\nminsamples=1\n"
    for value, expected in [("1", True), ("0", False), ("yes", False), ("true", False)]:
        text = base.replace("appliances=A", f"appliances=A\nlog_debug={value}")
        assert parse(text, "x.ini").log_debug is expected


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        load(str(tmp_path / "missing.ini"))


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.ini"
    good.write_bytes(ORIGINAL.encode())
    assert cli.main(["--check-config", "-c", str(good)]) == 0
    out = capsys.readouterr().out
    assert "OK, 2 appliance(s)" in out
    assert "APPLIANCE1: kasa plug at 10.0.0.1:9999" in out
    bad = tmp_path / "bad.ini"
    bad.write_text(BAD)
    assert cli.main(["--check-config", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:9: [WASHER] minsamples: must be at least 1, got 0" in err
    assert err.count("\n") == 12  # eleven errors and one warning, a line each

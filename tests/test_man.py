"""The man pages: valid roff, and in step with the code (options, commands, keys, metrics)."""

from __future__ import annotations

import argparse
import configparser
import importlib
import importlib.util
import os
import re
import subprocess

import pytest

from whitegoodsd import cli, config

from conftest import ROOT, WAIT, need_program

DAEMON_PAGE = ROOT / "man" / "whitegoodsd.8"
INI_PAGE = ROOT / "man" / "whitegoodsd.ini.5"
PAGES = [DAEMON_PAGE, INI_PAGE]


def plain(roff: str) -> str:
    """Roff source as text: escapes and font changes gone, quotes of macro arguments too."""
    text = re.sub(r"\\f[BIRP]", "", roff)
    text = text.replace("\\-", "-").replace("\\~", " ").replace("\\&", "").replace("\\e", "\\")
    text = re.sub(r"\\\(\w\w", "", text)
    return re.sub(r'"', "", text)


def section(page: str, heading: str) -> str:
    """The roff between ``.SH HEADING`` (or ``.SS``) and the next heading of that level."""
    for macro in (".SH", ".SS"):
        match = re.search(
            rf'^{re.escape(macro)} "?{re.escape(heading)}"?\n(.*?)(?=^{re.escape(macro)} |\Z)',
            page,
            re.S | re.M,
        )
        if match:
            return match.group(1)
    raise AssertionError(f"no section {heading!r}")


def tags(roff: str) -> list[str]:
    """The tag line of every ``.TP`` entry, as plain text without its macro."""
    lines = roff.splitlines()
    out = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith(".TP"):
            out.append(plain(re.sub(r"^\.\w+\s*", "", lines[i + 1])).strip())
    return out


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        for option in action.option_strings
    }


def documented_options(roff: str) -> set[str]:
    return {
        word.rstrip(",")
        for tag in tags(roff)
        for word in tag.split()
        if re.fullmatch(r"--?[a-z][-a-z]*,?", word)
    }


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser(cli.COMMANDS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_option_of_the_daemon_is_documented_and_nothing_else() -> None:
    page = DAEMON_PAGE.read_text()
    assert documented_options(section(page, "OPTIONS")) == options_of(cli.build_parser())


@pytest.mark.parametrize("name", ["discover", "emulate", "demo", "replay", "record", "tune"])
def test_every_command_is_documented_with_all_its_options(name: str) -> None:
    page = DAEMON_PAGE.read_text()
    documented = documented_options(section(page, f"whitegoodsd {name}"))
    parser = commands().get(name)
    if parser is None:
        pytest.skip(f"no {name!r} command in this build")
    assert documented == options_of(parser) - {"-h", "--help"}


def test_no_command_is_left_out_of_the_page() -> None:
    page = DAEMON_PAGE.read_text()
    for name in commands():
        assert f'.SS "whitegoodsd {name}"' in page


def test_every_key_is_documented_in_its_section() -> None:
    page = INI_PAGE.read_text()
    for heading, keys in [
        ("THE [whitegoodsd] SECTION", config.GLOBAL_KEYS),
        ("APPLIANCE SECTIONS", config.APPLIANCE_KEYS),
    ]:
        documented = {
            tag.split("=")[0].strip() for tag in tags(section(page, heading)) if "=" in tag
        }
        missing = set(keys) - documented
        assert not missing, f"{heading}: no entry for {sorted(missing)}"


def test_every_driver_is_documented() -> None:
    from whitegoodsd import drivers

    page = section(INI_PAGE.read_text(), "APPLIANCE SECTIONS")
    for name in drivers.registry():
        assert f"\n.TP\n.B {name}\n" in page


def test_every_family_option_is_documented() -> None:
    from whitegoodsd import drivers

    page = INI_PAGE.read_text()
    appliance = section(page, "APPLIANCE SECTIONS")
    main = section(page, "THE [whitegoodsd] SECTION")
    documented = {tag.split("=")[0].strip() for tag in tags(appliance) if "=" in tag}
    shared = {tag.split("=")[0].strip() for tag in tags(main) if "=" in tag}
    for name, family in drivers.registry().items():
        for option in family.OPTIONS:
            assert option.name in documented, f"{name}: {option.name} is not in the page"
            if option.shared:
                assert option.name in shared, f"{option.name} may be set in [whitegoodsd]"


def test_every_metric_is_documented() -> None:
    documented = set(tags(section(INI_PAGE.read_text(), "METRICS")))
    # The contract of DESIGN.md ...
    for name in (
        "power_watts", "voltage_volts", "current_amperes", "energy_joules_total", "running",
        "up", "cycles_total", "last_poll_timestamp_seconds", "last_cycle_duration_seconds",
        "last_cycle_energy_joules",
    ):  # fmt: skip
        assert f"whitegoodsd_appliance_{name}" in documented
    # ... and whatever the textfile output writes, where it is built in.
    if importlib.util.find_spec("whitegoodsd.outputs.textfile") is None:
        return
    textfile = importlib.import_module("whitegoodsd.outputs.textfile")
    for spec in getattr(textfile, "METRICS", ()):
        name = textfile.PREFIX + spec.name + ("_total" if spec.counter else "")
        assert name in documented


def test_signals_files_and_exit_codes_are_there() -> None:
    page = DAEMON_PAGE.read_text()
    signals = " ".join(tags(section(page, "SIGNALS")))
    for signal_name in ("SIGTERM", "SIGINT", "SIGHUP"):
        assert signal_name in signals
    assert set(tags(section(page, "EXIT STATUS"))) == {
        str(cli.EXIT_OK),
        str(cli.EXIT_FAILURE),
        str(cli.EXIT_CONFIG),
    }
    files = tags(section(page, "FILES"))
    assert config.DEFAULT_PATH in files
    assert "/run/whitegoodsd.pid" in files


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_groff_finds_nothing_to_warn_about(page: os.PathLike[str]) -> None:
    groff = need_program("groff", "apt-get install groff-base")
    result = subprocess.run(
        [groff, "-man", "-ww", "-z", str(page)], capture_output=True, text=True, timeout=WAIT
    )
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_man_renders_it_without_warnings(page: os.PathLike[str]) -> None:
    man = need_program("man", "apt-get install man-db")
    result = subprocess.run(
        [man, "--warnings", "-E", "UTF-8", "-l", str(page)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"},
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert "whitegoodsd" in result.stdout


def test_the_pages_are_installed_with_the_package() -> None:
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(ROOT / "setup.cfg")
    data_files = {
        target: [p.strip() for p in re.split(r"[,\n]", listed) if p.strip()]
        for target, listed in setup["options.data_files"].items()
    }
    assert data_files["share/man/man8"] == ["man/whitegoodsd.8"]
    assert data_files["share/man/man5"] == ["man/whitegoodsd.ini.5"]
    for files in data_files.values():
        for path in files:
            assert (ROOT / path).is_file(), path
    shipped = {path for files in data_files.values() for path in files}
    for directory in ("sample", "init"):
        for path in (ROOT / directory).rglob("*"):
            if path.is_file():
                assert str(path.relative_to(ROOT)) in shipped

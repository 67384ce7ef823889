"""The detection keys of the INI file: delays, the spike filter, name clashes."""

from __future__ import annotations

import pytest

from whitegoodsd.commands.check import summary
from whitegoodsd.config import DEFAULT_MAX_PLAUSIBLE_MW, ConfigError, parse

HEAD = "[whitegoodsd]\nappliances = {names}\n"


def ini(extra: str = "", names: str = "WASHER") -> str:
    sections = "".join(
        f"[{name.strip()}]\nsmartplug = 127.0.0.1\nthreshold_running_mw = 4000\nminsamples = 2\n"
        for name in names.split(",")
    )
    return HEAD.format(names=names) + sections + extra


def test_defaults_change_nothing_but_add_the_spike_filter() -> None:
    (washer,) = parse(ini(), "x.ini").appliances
    assert (washer.settings.start_delay, washer.settings.finish_delay) == (0.0, 0.0)
    assert washer.settings.max_plausible_mw == DEFAULT_MAX_PLAUSIBLE_MW == 4_000_000


def test_the_keys_are_read() -> None:
    text = ini("start_delay = 30\nfinish_delay = 600.5 ; soak\nmax_plausible_mw = 2000000\n")
    (washer,) = parse(text, "x.ini").appliances
    assert (washer.settings.start_delay, washer.settings.finish_delay) == (30.0, 600.5)
    assert washer.settings.max_plausible_mw == 2_000_000
    settings = washer.settings
    assert (settings.start_delay, settings.finish_delay, settings.max_plausible_mw) == (
        30.0,
        600.5,
        2_000_000,
    )
    assert "start_delay 30 s, finish_delay 600.5 s" in summary(parse(text, "x.ini"))


def test_zero_delays_are_allowed() -> None:
    (washer,) = parse(ini("start_delay = 0\nfinish_delay = 0\n"), "x.ini").appliances
    assert (washer.settings.start_delay, washer.settings.finish_delay) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("start_delay = -1\n", "x.ini:7: [WASHER] start_delay: must be 0 or more seconds"),
        ("finish_delay = soon\n", "x.ini:7: [WASHER] finish_delay: expected a number of seconds"),
        ("finish_delay = inf\n", "x.ini:7: [WASHER] finish_delay: must be 0 or more seconds"),
        ("max_plausible_mw = 4000\n", "x.ini:7: [WASHER] max_plausible_mw: 4,000 mW is not above"),
        ("max_plausible_mw = 4e6\n", "x.ini:7: [WASHER] max_plausible_mw: expected a whole"),
    ],
)
def test_bad_values_are_errors_with_file_and_line(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(ini(extra), "x.ini")
    assert any(str(p).startswith(message) for p in caught.value.problems), caught.value.problems


def test_a_threshold_above_the_default_limit_still_loads_unfiltered() -> None:
    """The original accepted any threshold: such a file must keep working."""
    text = ini().replace("threshold_running_mw = 4000", "threshold_running_mw = 5000000")
    (washer,) = parse(text, "x.ini").appliances
    assert washer.settings.max_plausible_mw is None


def test_a_misspelt_key_is_a_warning_with_a_suggestion() -> None:
    config = parse(ini("finish_delays = 600\n"), "x.ini")
    assert [str(w) for w in config.warnings] == [
        "x.ini:7: [WASHER] finish_delays: unknown key, ignored; did you mean 'finish_delay'?"
    ]


@pytest.mark.parametrize(
    ("names", "clashes"),
    [
        ("TUMBLEDRYER, DRYER", [("TUMBLEDRYER", "DRYER")]),
        ("dryer, TumbleDryer", [("TumbleDryer", "dryer")]),
        ("DRYER, DRYER2, WASHER", []),
        ("A, BA, CBA", [("BA", "A"), ("CBA", "A"), ("CBA", "BA")]),
    ],
)
def test_a_name_ending_with_another_is_a_warning(
    names: str, clashes: list[tuple[str, str]]
) -> None:
    config = parse(ini(names=names), "x.ini")
    warnings = [str(w) for w in config.warnings]
    assert warnings == [
        f"x.ini:2: [whitegoodsd] appliances: {long!r} ends with {short!r}: an rsyslog "
        f"'contains' rule for \"{short} is FINISHED\" also fires for {long}; "
        "use the anchored rule in sample/"
        for long, short in clashes
    ]
    assert len(config.appliances) == len(names.split(","))  # a warning, not an error

"""``kind =``: presets for the detection keys, in time; explicit keys win."""

from __future__ import annotations

import re

import pytest

from whitegoodsd import config, presets
from whitegoodsd.config import ConfigError
from whitegoodsd.detector import Settings

from conftest import ROOT

HEAD = "[whitegoodsd]\nappliances = A\n"


def load(section: str, head: str = HEAD) -> config.Config:
    return config.parse(head + "[A]\nsmartplug = 127.0.0.1\n" + section, "/x.ini")


@pytest.mark.parametrize("kind", presets.KINDS)
def test_a_kind_gives_every_detection_key(kind: str) -> None:
    loaded = load(f"kind = {kind.upper()}\n")
    appliance = loaded.appliances[0]
    assert appliance.kind == kind
    assert appliance.settings == presets.settings(kind)
    assert appliance.settings.minsamples == appliance.settings.minsamples_finished == 1
    assert loaded.monitor_interval_nothing_running == presets.IDLE_INTERVAL == 60


def test_keys_written_in_the_section_win() -> None:
    settings = load("kind = washer\nfinish_delay = 900\nmax_dip = 0\nenergy_counter = no\n")
    expected = presets.settings("washer")
    assert settings.appliances[0].settings == Settings(
        **{**expected.__dict__, "finish_delay": 900.0, "max_dip": 0.0, "energy_counter": False}
    )


def test_a_running_threshold_below_the_presets_finished_one_takes_it_down() -> None:
    settings = load("kind = dryer\nthreshold_running_mw = 20000\n").appliances[0].settings
    assert (settings.threshold_running_mw, settings.threshold_finished_mw) == (20_000, 20_000)


def test_an_idle_interval_written_wins() -> None:
    head = HEAD + "monitor_interval_nothing_running = 300\n"
    assert load("kind = generic\n", head).monitor_interval_nothing_running == 300


def test_without_a_kind_nothing_changes() -> None:
    loaded = load("threshold_running_mw = 4000\nminsamples = 3\n")
    assert loaded.appliances[0].settings == Settings(
        4000, 3, 4000, 3, max_plausible_mw=config.DEFAULT_MAX_PLAUSIBLE_MW
    )
    assert (loaded.appliances[0].kind, loaded.monitor_interval_nothing_running) == (None, 900)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("kind = fridge\n", "/x.ini:5: [A] kind: unknown kind 'fridge' (known: washer, dryer, "),
        ("kind = fridge\n", "dishwasher, generic)"),
        ("threshold_running_mw = 4000\n", "/x.ini:3: [A] minsamples: required key is missing"),
        ("kind = washer\nenergy_counter = maybe\n", "/x.ini:6: [A] energy_counter: expected yes"),
        ("kind = washer\nmax_dip = -1\n", "/x.ini:6: [A] max_dip: must be 0 or more seconds"),
    ],
)
def test_errors_name_the_line(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(section)
    assert len(caught.value.problems) == 1
    assert str(caught.value).startswith(message) or str(caught.value).endswith(message)


def test_the_man_page_table_is_the_presets() -> None:
    page = (ROOT / "man" / "whitegoodsd.ini.5").read_text()
    block = page[page.index("\n.EX\nkind ") + 5 : page.index("\n.EE", page.index("\n.EX\nkind "))]
    rows = {line.split()[0]: line.split()[1:] for line in block.splitlines()[1:]}
    for kind, preset in presets.PRESETS.items():
        p = preset
        expected = [p.threshold_running_mw, p.threshold_finished_mw, p.start_delay,
                    p.finish_delay, p.max_dip, p.max_burst]  # fmt: skip
        assert [float(v) for v in rows[kind]] == expected, kind
        assert (p.minsamples, p.minsamples_finished, p.energy_counter) == (1, 1, True)
    assert set(rows) == set(presets.KINDS)
    assert re.search(r"kind \" = washer.*dryer.*dishwasher.*generic", page)

"""The reload plan: which appliances stay, come, go, or get a new driver."""

from __future__ import annotations

from whitegoodsd import config, reload


def cfg(body: str, timeout: str = "5") -> config.Config:
    names = [line[1:-1] for line in body.split() if line.startswith("[")]
    head = f"[whitegoodsd]\nappliances = {', '.join(names)}\ntimeout = {timeout}\n"
    return config.parse(head + body.replace(";", "\n"), "plan.ini")


def section(name: str, plug: str = "10.0.0.1", threshold: int = 4000, extra: str = "") -> str:
    return (
        f"\n[{name}]\nsmartplug = {plug}\nthreshold_running_mw = {threshold}\nminsamples = 3\n"
        + extra
    )


def test_nothing_changed_keeps_everything() -> None:
    old = cfg(section("WASHER") + section("DRYER", "10.0.0.2"))
    plan = reload.plan(old, old)
    assert plan == reload.Plan(("WASHER", "DRYER"), (), (), ())


def test_added_retired_and_kept_by_name_case_insensitively() -> None:
    old = cfg(section("WASHER") + section("DRYER", "10.0.0.2"))
    new = cfg(section("washer") + section("DISHWASHER", "10.0.0.3"))
    plan = reload.plan(old, new)
    assert (plan.kept, plan.added, plan.retired) == (("WASHER",), ("DISHWASHER",), ("DRYER",))


def test_new_settings_alone_keep_the_driver() -> None:
    plan = reload.plan(cfg(section("WASHER")), cfg(section("WASHER", threshold=9000)))
    assert (plan.kept, plan.replugged) == (("WASHER",), ())


def test_a_new_address_family_option_or_timeout_replugs() -> None:
    old = cfg(section("WASHER"))
    assert reload.plan(old, cfg(section("WASHER", "10.0.0.9"))).replugged == ("WASHER",)
    inplug = cfg(section("WASHER", extra="driver = inplug\n"))
    assert reload.plan(old, inplug).replugged == ("WASHER",)
    assert reload.plan(old, cfg(section("WASHER"), timeout="2")).replugged == ("WASHER",)

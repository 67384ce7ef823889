"""The INI file as frozen dataclasses, with every problem reported at once.

Every file the original daemon accepted loads with the same meaning.  Keys are
described by the tables of ``keys.py``: a key is added by adding a row (and a
field of the matching dataclass here).  Each plug
family adds the keys of its own ``OPTIONS`` (drivers/base.py) to the sections
of its appliances; an option marked ``shared`` may also be set in
``[whitegoodsd]`` as the default for every appliance.  Errors name
``FILE:LINE: [SECTION] key: message``; unknown keys and unused sections are
warnings, because the original ignored them.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from whitegoodsd import ini, messages, notices
from whitegoodsd.detector import Settings
from whitegoodsd.drivers.base import format_address
from whitegoodsd.keys import (
    APPLIANCE_KEYS,
    DEFAULT_MAX_PLAUSIBLE_MW,
    FACILITIES,
    GLOBAL_KEYS,
    NOTIFICATION_KEYS,
    Key,
    _appliance_names,
    _driver,
    _families,
    family_keys,
    shared_keys,
)

__all__ = [
    "APPLIANCE_KEYS",
    "DEFAULT_MAX_PLAUSIBLE_MW",
    "FACILITIES",
    "GLOBAL_KEYS",
    "NOTIFICATION_KEYS",
    "ApplianceConfig",
    "Config",
    "ConfigError",
    "Key",
    "Notifications",
    "PlugConfig",
    "family_keys",
    "load",
    "parse",
    "shared_keys",
]

if TYPE_CHECKING:
    from whitegoodsd.drivers.base import Driver

DEFAULT_PATH = "/etc/whitegoodsd.ini"
MAIN_SECTION = "whitegoodsd"
MAX_BYTES = 64 * 1024 * 1024  # a configuration file larger than this is a mistake
PATH_KEYS = ("pidfile", "textfile", "state_file", "record_dir")  # relative: to the file's directory


class ConfigError(Exception):
    """The file cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[ini.Problem], warnings: list[ini.Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        self.warnings = sorted(warnings, key=lambda p: p.line)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Notifications:
    """What an appliance's events set off beyond the syslog line: commands, URLs."""

    on_running: str | None = None  # a /bin/sh command line
    on_finished: str | None = None
    on_unreachable: str | None = None
    on_reachable: str | None = None
    notify: tuple[str, ...] = ()  # Apprise URLs
    notify_events: tuple[str, ...] = (notices.FINISHED,)
    notify_template: str = messages.DEFAULT_TEMPLATE
    quiet_hours: tuple[int, int] | None = None  # minutes after midnight: from, until
    remind_every: float = 0.0  # seconds; 0: no reminders
    remind_times: int = 3

    def command(self, kind: str) -> str | None:
        """The command for event ``kind``, if any."""
        value = getattr(self, f"on_{kind.lower()}", None)
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class PlugConfig:
    """Where an appliance's plug is and how to speak to it."""

    driver: str  # the family's name
    host: str  # for families reached by address; a topic for pushed ones
    port: int | None = None  # None: the family's default
    options: tuple[tuple[str, Any], ...] = ()  # the family's own keys, by name

    @property
    def family(self) -> type[Driver]:
        from whitegoodsd import drivers

        return drivers.get(self.driver)

    def option(self, name: str) -> Any:
        return dict(self.options).get(name)

    def __str__(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True)
class ApplianceConfig:
    """One appliance: its plug and how to tell that it runs."""

    name: str  # exactly as written in ``appliances =``
    plug: PlugConfig
    settings: Settings
    kind: str | None = None  # the preset its detection keys default to
    notifications: Notifications = Notifications()


@dataclass(frozen=True)
class Config:
    """The whole file."""

    path: str
    appliances: tuple[ApplianceConfig, ...]
    monitor_interval: float = 60.0
    monitor_interval_nothing_running: float = 900.0
    log_debug: bool = False
    syslog_address: str | tuple[str, int] = "/dev/log"
    syslog_facility: int = FACILITIES["local5"]
    pidfile: str | None = None
    timeout: float = 5.0
    unreachable_after: int = 3
    textfile: str | None = None
    state_file: str | None = None
    mqtt_broker: tuple[str, int] | None = None
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: str | None = None
    mqtt_publish: bool = False
    mqtt_prefix: str = "whitegoodsd"
    homeassistant_discovery: bool = False
    record_dir: str | None = None
    shared: tuple[tuple[str, Any], ...] = ()  # family options set in [whitegoodsd]
    command_timeout: float = 60.0
    notifications: Notifications = Notifications()  # the defaults for every appliance
    warnings: tuple[ini.Problem, ...] = field(default=(), compare=False)


def _notifications(
    values: dict[str, Any], section: ini.Section, defaults: Notifications
) -> Notifications:
    """Take the notification keys out of ``values``; a key not in ``section`` takes ``defaults``'.

    An empty ``on_*`` in an appliance's section means no command for it, whatever
    ``[whitegoodsd]`` says.
    """
    given = {k: values.pop(k) for k in NOTIFICATION_KEYS}
    changes = {k: v for k, v in given.items() if k in section.entries}
    changes.update({k: v or None for k, v in changes.items() if k.startswith("on_")})
    return dataclasses.replace(defaults, **changes)


class _Reader:
    """Reads typed values out of a Document, collecting problems as it goes."""

    def __init__(self, doc: ini.Document) -> None:
        self.doc = doc
        self.problems: list[ini.Problem] = list(doc.problems)
        self.warnings: list[ini.Problem] = list(doc.warnings)

    def values(self, section: ini.Section, keys: Mapping[str, Key]) -> dict[str, Any] | None:
        """Every key of ``keys`` read from ``section``; None if any was bad."""
        ok = True
        out: dict[str, Any] = {}
        for name, key in keys.items():
            entry = section.entries.get(name)
            if entry is None:
                if key.required:
                    self._error(section.line, section.name, name, "required key is missing")
                    ok = False
                out[name] = key.default
                continue
            try:
                out[name] = key.parse(entry.raw if key.raw else entry.value)
            except ValueError as exc:
                self._error(entry.line, section.name, entry.key, str(exc))
                ok = False
        for lower, entry in section.entries.items():
            if lower not in keys:
                hint = difflib.get_close_matches(lower, list(keys), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                self.warnings.append(
                    ini.Problem(
                        self.doc.path,
                        entry.line,
                        section.name,
                        entry.key,
                        f"unknown key, ignored{suggestion}",
                    )
                )
        return out if ok else None

    def _error(self, line: int, section: str | None, key: str | None, message: str) -> None:
        self.problems.append(ini.Problem(self.doc.path, line, section, key, message))


def _secret_keys() -> set[str]:
    return {o.name for family in _families().values() for o in family.OPTIONS if o.secret}


def _exposed_secrets(doc: ini.Document, mode: int) -> list[ini.Problem]:
    """A warning for each secret (a password) in a file that others may read."""
    if not mode & 0o004:
        return []
    secret = _secret_keys()
    return [
        ini.Problem(
            doc.path, entry.line, section.name, entry.key,
            f"holds a password, but the file is readable by others (mode {mode & 0o777:04o}): "
            f"chmod 0600 {doc.path}",
        )
        for section in doc.sections.values()
        for name, entry in section.entries.items()
        if name in secret and entry.value
    ]  # fmt: skip


def parse(text: str, path: str, mode: int = 0o600) -> Config:
    """Build a Config from INI text, or raise ConfigError listing every problem.

    ``mode`` is the file's permission bits: a password in a file others can
    read is a warning.
    """
    doc = ini.parse(text, path)
    reader = _Reader(doc)
    reader.warnings.extend(_exposed_secrets(doc, mode))
    main = doc.section(MAIN_SECTION)
    if main is None:
        reader.problems.append(ini.Problem(path, 1, MAIN_SECTION, None, "section is missing"))
        raise ConfigError(reader.problems, reader.warnings)
    settings = reader.values(main, {**GLOBAL_KEYS, **shared_keys()})
    shared: dict[str, Any] = {}
    if settings is not None:
        for key in shared_keys():
            value = settings.pop(key)
            if key in main.entries:
                shared[key] = value
    defaults = _notifications(settings, main, Notifications()) if settings else Notifications()
    names: tuple[str, ...] = settings["appliances"] if settings else ()
    if settings is None and "appliances" in main.entries:
        names = _appliance_names(main.entries["appliances"].value)
    appliances = []
    seen: dict[str, str] = {}
    for name in names:
        where = main.entries["appliances"].line
        if name.upper() in seen:
            reader._error(where, main.name, "appliances", f"{name!r} is listed twice")
            continue
        seen[name.upper()] = name
        if name.upper() == MAIN_SECTION.upper():
            reader._error(
                where, main.name, "appliances",
                f"{name!r} cannot name an appliance: [{MAIN_SECTION}] is the main section",
            )  # fmt: skip
            continue
        section = doc.section(name)
        if section is None:
            reader._error(where, main.name, "appliances", f"no section [{name}] for {name!r}")
            continue
        appliance = _appliance(reader, name, section, shared, defaults)
        if appliance is not None:
            appliances.append(appliance)
    if "appliances" in main.entries:
        entry = main.entries["appliances"]
        if not names:
            reader.warnings.append(
                ini.Problem(
                    path, entry.line, main.name, entry.key,
                    "names no appliance: nothing is watched until one is added",
                )
            )  # fmt: skip
        reader.warnings.extend(_name_clashes(path, entry, list(seen.values())))
    for upper, section in doc.sections.items():
        if upper != MAIN_SECTION.upper() and upper not in seen:
            reader.warnings.append(
                ini.Problem(
                    path, section.line, section.name, None,
                    "section is not named in 'appliances', ignored",
                )
            )  # fmt: skip
    if settings is not None and settings["mqtt_broker"] is None:
        users = [a.name for a in appliances if a.plug.driver == "mqtt"]
        users += ["mqtt_publish"] if settings["mqtt_publish"] else []
        if users:
            reader._error(main.line, main.name, "mqtt_broker", f"needed by {', '.join(users)}")
    if reader.problems or settings is None:
        raise ConfigError(reader.problems, reader.warnings)
    base = os.path.dirname(os.path.abspath(path))
    for key in PATH_KEYS:
        if settings[key] is not None:
            settings[key] = os.path.normpath(os.path.join(base, settings[key]))
    if "monitor_interval_nothing_running" not in main.entries and any(a.kind for a in appliances):
        from whitegoodsd import presets

        settings["monitor_interval_nothing_running"] = presets.IDLE_INTERVAL
    return Config(
        path=path,
        appliances=tuple(appliances),
        shared=tuple(sorted(shared.items())),
        notifications=defaults,
        warnings=tuple(sorted(reader.warnings, key=lambda p: p.line)),
        **{k: v for k, v in settings.items() if k != "appliances"},
    )


def _name_clashes(path: str, entry: ini.Entry, names: list[str]) -> list[ini.Problem]:
    """A warning for each name that ends with another (TUMBLEDRYER and DRYER).

    ``NAME is FINISHED.`` for the longer name contains the shorter one's line,
    so an rsyslog ``contains`` rule for the shorter fires for both.
    """
    warnings = []
    for long in names:
        for short in names:
            if len(long) > len(short) and long.upper().endswith(short.upper()):
                warnings.append(
                    ini.Problem(
                        path, entry.line, MAIN_SECTION, entry.key,
                        f"{long!r} ends with {short!r}: an rsyslog 'contains' rule for "
                        f"\"{short} is FINISHED\" also fires for {long}; "
                        "use the anchored rule in sample/",
                    )
                )  # fmt: skip
    return warnings


def _appliance(
    reader: _Reader,
    name: str,
    section: ini.Section,
    shared: Mapping[str, Any],
    defaults: Notifications,
) -> ApplianceConfig | None:
    family = None
    entry = section.entries.get("driver")
    try:
        family = _families()[_driver(entry.value) if entry else "kasa"]
    except ValueError:
        pass  # reported by values() below
    own = family_keys(family) if family is not None else {}
    for key, value in shared.items():
        if key in own:
            own[key] = Key(own[key].parse, False, value)
    keys = {**APPLIANCE_KEYS, **own}
    preset = _preset(section)
    for key, value in preset.items():
        keys[key] = Key(keys[key].parse, False, value)
    if "kind" in section.entries and not preset:  # a bad kind: that error alone
        for key in ("threshold_running_mw", "minsamples"):
            keys[key] = Key(keys[key].parse)
    values = reader.values(section, keys)
    smartplug = section.entries.get("smartplug")
    if smartplug is None or family is None:
        return None
    try:
        host, port = family.parse_smartplug(smartplug.value)
    except ValueError as exc:
        reader._error(smartplug.line, section.name, smartplug.key, str(exc))
        return None
    if values is None:
        return None
    del values["smartplug"]
    notifications = _notifications(values, section, defaults)
    options = {key: values.pop(key) for key in own}
    for problem in family.check(host, port, options):
        reader._error(smartplug.line, section.name, smartplug.key, problem)
    if family.check(host, port, options):
        return None
    kind = values.pop("kind")
    if preset and "threshold_finished_mw" not in section.entries:
        # The preset's finished threshold never ends up above a running one written here.
        values["threshold_finished_mw"] = min(
            values["threshold_finished_mw"], values["threshold_running_mw"]
        )
    if values["threshold_finished_mw"] is None:
        values["threshold_finished_mw"] = values["threshold_running_mw"]
    elif values["threshold_finished_mw"] > values["threshold_running_mw"]:
        entry = section.entries["threshold_finished_mw"]
        reader._error(
            entry.line, section.name, entry.key,
            f"{values['threshold_finished_mw']:,} mW is above "
            f"threshold_running_mw ({values['threshold_running_mw']:,} mW)",
        )  # fmt: skip
        return None
    if values["minsamples_finished"] is None:
        values["minsamples_finished"] = values["minsamples"]
    if values["max_plausible_mw"] is None:
        # A file that worked before (a threshold above the default limit) keeps working.
        if values["threshold_running_mw"] < DEFAULT_MAX_PLAUSIBLE_MW:
            values["max_plausible_mw"] = DEFAULT_MAX_PLAUSIBLE_MW
    elif values["max_plausible_mw"] <= values["threshold_running_mw"]:
        entry = section.entries["max_plausible_mw"]
        reader._error(
            entry.line, section.name, entry.key,
            f"{values['max_plausible_mw']:,} mW is not above "
            f"threshold_running_mw ({values['threshold_running_mw']:,} mW)",
        )  # fmt: skip
        return None
    plug = PlugConfig(values.pop("driver"), host, port, tuple(sorted(options.items())))
    return ApplianceConfig(
        name=name, plug=plug, settings=Settings(**values), kind=kind, notifications=notifications
    )


def _preset(section: ini.Section) -> dict[str, Any]:
    """The defaults that the section's ``kind`` gives (none without a valid one)."""
    from whitegoodsd import presets

    entry = section.entries.get("kind")
    if entry is None or entry.value.lower() not in presets.KINDS:
        return {}  # a bad kind is reported with the other keys
    return presets.PRESETS[entry.value.lower()].keys()


def load(path: str) -> Config:
    """Read and parse the file at ``path``; ConfigError for every problem."""
    path = os.path.abspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
            mode = os.fstat(handle.fileno()).st_mode
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            [ini.Problem(path, 0, None, None, f"cannot read: {reason}")], []
        ) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(
            [ini.Problem(path, 0, None, None, f"larger than {MAX_BYTES:,} bytes")], []
        )
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = ini.line_of(data[bom:], exc.start)
        message = f"not UTF-8: byte 0x{data[bom + exc.start]:02x} at column {column}"
        raise ConfigError([ini.Problem(path, line, None, None, message)], []) from None
    return parse(text, path, mode)

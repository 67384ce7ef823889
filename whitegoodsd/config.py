"""The INI file as frozen dataclasses, with every problem reported at once.

Every file the original daemon accepted loads with the same meaning.  Keys are
described by the tables ``GLOBAL_KEYS`` and ``APPLIANCE_KEYS``: a key is
added by adding a row (and a field of the matching dataclass).  Each plug
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
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from whitegoodsd import ini, messages, notices
from whitegoodsd.detector import Settings
from whitegoodsd.drivers.base import format_address, split_host_port

if TYPE_CHECKING:
    from whitegoodsd.drivers.base import Driver

DEFAULT_PATH = "/etc/whitegoodsd.ini"
MAIN_SECTION = "whitegoodsd"
MAX_BYTES = 64 * 1024 * 1024  # a configuration file larger than this is a mistake
PATH_KEYS = ("pidfile", "textfile", "state_file", "record_dir")  # relative: to the file's directory

# A little above what a 16 A mains plug carries (16 A x 230 V = 3,680 W).
DEFAULT_MAX_PLAUSIBLE_MW = 4_000_000

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{n}": 16 + n for n in range(8)},
}  # fmt: skip


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


# -- value parsers: text -> value, or ValueError with a message ---------------


def _count(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"expected a whole number, got {text!r}")
    value = int(text)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _milliwatts(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"expected a whole number of milliwatts, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive number of seconds, got {text!r}")
    return value


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be 0 or more seconds, got {text!r}")
    return value


def _flag(text: str) -> bool:
    # The original turned debug on only for exactly "1"; anything else was off.
    return text == "1"


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def _kind(text: str) -> str:
    from whitegoodsd import presets

    if text.lower() not in presets.KINDS:
        raise ValueError(f"unknown kind {text!r} (known: {', '.join(presets.KINDS)})")
    return text.lower()


def _path(text: str) -> str:
    if not text:
        raise ValueError("expected a path")
    return os.path.abspath(text)


def _optional_path(text: str) -> str | None:
    # Made absolute by ``parse``, against the configuration file's directory.
    return text or None


def _syslog_address(text: str) -> str | tuple[str, int]:
    if text.startswith("/"):
        return text
    host, port = split_host_port(text)
    return host, 514 if port is None else port


def _facility(text: str) -> int:
    name = text.lower().removeprefix("log_")
    if name not in FACILITIES:
        raise ValueError(f"unknown facility {text!r} (try local0 to local7, daemon, user)")
    return FACILITIES[name]


def _yes_no(text: str) -> bool:
    word = text.lower()
    if word in ("yes", "true", "on", "1"):
        return True
    if word in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def _broker(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    host, port = split_host_port(text)
    return host, 1883 if port is None else port


def _optional_text(text: str) -> str | None:
    return text or None


def _prefix(text: str) -> str:
    if not text or "+" in text or "#" in text or "\0" in text:
        raise ValueError(f"expected a topic without wildcards, got {text!r}")
    return text.strip("/")


def _appliance_names(text: str) -> tuple[str, ...]:
    # An empty list is allowed (a warning, in parse): the daemon then idles,
    # which lets a packaged default file start a service that watches nothing.
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _families() -> dict[str, type[Driver]]:
    from whitegoodsd import drivers

    return drivers.registry()


def shared_keys() -> dict[str, Key]:
    """The family options that may be set in [whitegoodsd] as defaults."""
    return {
        o.name: Key(o.parse) for family in _families().values() for o in family.OPTIONS if o.shared
    }


def family_keys(family: type[Driver]) -> dict[str, Key]:
    return {o.name: Key(o.parse, o.required, o.default) for o in family.OPTIONS}


def _driver(text: str) -> str:
    from whitegoodsd import drivers

    name = text.lower()
    if name not in drivers.registry():
        known = ", ".join(drivers.registry())
        raise ValueError(f"unknown driver {text!r} (known: {known})")
    return name


def _command(text: str) -> str:
    return text  # empty: no command, even if [whitegoodsd] names one


def _urls(text: str) -> tuple[str, ...]:
    """``URL[, URL...]``; a comma inside a URL (``?to=a@x,b@y``) stays in it."""
    urls = tuple(
        u.rstrip(",") for u in re.split(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)", text) if u
    )
    for url in urls:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", url):
            raise ValueError(f"expected URL[, URL...], got {url!r}")
    if urls:
        try:
            import apprise
        except ImportError:
            raise ValueError("needs the Python package apprise (pip install apprise)") from None
        for url in urls:
            if apprise.Apprise.instantiate(url) is None:
                scheme = url.split("://", 1)[0]
                raise ValueError(f"Apprise cannot use this {scheme}:// URL")
    return urls


def _events(text: str) -> tuple[str, ...]:
    names = tuple(n.upper() for n in re.split(r"[\s,]+", text) if n)
    for name in names:
        if name not in notices.EVENT_KINDS:
            raise ValueError(f"unknown event {name!r} (known: {', '.join(notices.EVENT_KINDS)})")
    return names


def _clock_time(text: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d\d)", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    return int(match[1]) * 60 + int(match[2])


def _quiet_hours(text: str) -> tuple[int, int] | None:
    if text.lower() in ("", "none", "off"):
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    window = _clock_time(start), _clock_time(end)
    if window[0] == window[1]:
        raise ValueError(f"{text!r} starts where it ends (write none for no quiet hours)")
    return window


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


@dataclass(frozen=True)
class Key:
    """How one key is read."""

    parse: Callable[[str], Any]
    required: bool = False
    default: Any = None
    raw: bool = False  # the value as written: ';' and '#' are part of it, not a comment


GLOBAL_KEYS: Mapping[str, Key] = {
    "appliances": Key(_appliance_names, required=True),
    "monitor_interval": Key(_seconds, default=60.0),
    "monitor_interval_nothing_running": Key(_seconds, default=900.0),
    "log_debug": Key(_flag, default=False),
    "syslog_address": Key(_syslog_address, default="/dev/log"),
    "syslog_facility": Key(_facility, default=FACILITIES["local5"]),
    "pidfile": Key(_optional_path),
    "timeout": Key(_seconds, default=5.0),
    "unreachable_after": Key(_count, default=3),
    "textfile": Key(_optional_path),
    "state_file": Key(_optional_path),
    "mqtt_broker": Key(_broker),
    "mqtt_username": Key(_optional_text),
    "mqtt_password": Key(_optional_text),
    "mqtt_tls": Key(_yes_no, default=False),
    "mqtt_ca_file": Key(_optional_path),
    "mqtt_publish": Key(_yes_no, default=False),
    "mqtt_prefix": Key(_prefix, default="whitegoodsd"),
    "homeassistant_discovery": Key(_yes_no, default=False),
    "record_dir": Key(_optional_path),
    "command_timeout": Key(_seconds, default=60.0),
}

APPLIANCE_KEYS: Mapping[str, Key] = {
    "smartplug": Key(str, required=True),  # parsed by the family: parse_smartplug()
    "driver": Key(_driver, default="kasa"),
    "threshold_running_mw": Key(_milliwatts, required=True),
    "minsamples": Key(_count, required=True),
    "threshold_finished_mw": Key(_milliwatts),  # default: threshold_running_mw
    "minsamples_finished": Key(_count),  # default: minsamples
    "start_delay": Key(_delay, default=0.0),
    "finish_delay": Key(_delay, default=0.0),
    "max_plausible_mw": Key(_milliwatts),  # default: DEFAULT_MAX_PLAUSIBLE_MW
    "kind": Key(_kind),  # the preset the detection keys default to
    "max_dip": Key(_delay, default=0.0),
    "max_burst": Key(_delay, default=0.0),
    "energy_counter": Key(_boolean, default=False),
}

# In [whitegoodsd] as the default for every appliance, and in each appliance's section.
NOTIFICATION_KEYS: Mapping[str, Key] = {
    "on_running": Key(_command, raw=True),
    "on_finished": Key(_command, raw=True),
    "on_unreachable": Key(_command, raw=True),
    "on_reachable": Key(_command, raw=True),
    "notify": Key(_urls, raw=True),
    "notify_events": Key(_events),
    "notify_template": Key(messages.check_template, raw=True),
    "quiet_hours": Key(_quiet_hours),
    "remind_every": Key(_delay),
    "remind_times": Key(_count),
}
GLOBAL_KEYS = {**GLOBAL_KEYS, **NOTIFICATION_KEYS}
APPLIANCE_KEYS = {**APPLIANCE_KEYS, **NOTIFICATION_KEYS}


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


def summary(config: Config) -> str:
    """A human-readable account of a loaded config, for --check-config."""

    lines = [
        f"{config.path}: OK, {len(config.appliances)} appliance(s)",
        f"  poll every {config.monitor_interval:g} s while anything runs, "
        f"every {config.monitor_interval_nothing_running:g} s when all is idle; "
        f"timeout {config.timeout:g} s; UNREACHABLE after {config.unreachable_after} "
        "failed polls",
    ]
    address = config.syslog_address
    where = address if isinstance(address, str) else f"{address[0]}:{address[1]} (UDP)"
    facility = next(k for k, v in FACILITIES.items() if v == config.syslog_facility)
    lines.append(
        f"  syslog to {where}, facility {facility}" + (", debug on" if config.log_debug else "")
    )
    if config.textfile:
        lines.append(f"  textfile {config.textfile}")
    if config.state_file:
        lines.append(f"  state file {config.state_file}")
    if config.mqtt_broker:
        login = f" as {config.mqtt_username}" if config.mqtt_username else ""
        tls = ", TLS" if config.mqtt_tls else ""
        publish = f", publishing under {config.mqtt_prefix}/" if config.mqtt_publish else ""
        discovery = ", Home Assistant discovery" if config.homeassistant_discovery else ""
        broker = format_address(*config.mqtt_broker)
        lines.append(f"  MQTT broker {broker}{login}{tls}{publish}{discovery}")
    if config.record_dir:
        lines.append(f"  readings recorded in {config.record_dir}")
    for a in config.appliances:
        s = a.settings
        family = a.plug.family
        port = a.plug.port if a.plug.port is not None else family.default_port(dict(a.plug.options))
        where = format_address(a.plug.host, port)
        hysteresis = ""
        if (s.threshold_finished_mw, s.minsamples_finished) != (
            s.threshold_running_mw,
            s.minsamples,
        ):
            hysteresis = (
                f", FINISHED after {s.minsamples_finished} below {s.threshold_finished_mw:,} mW"
            )
        delays = "".join(
            f", {what} {seconds:g} s" for what, seconds in
            (("start_delay", s.start_delay), ("finish_delay", s.finish_delay),
             ("max_dip", s.max_dip), ("max_burst", s.max_burst)) if seconds
        )  # fmt: skip
        if s.energy_counter:
            delays += ", energy counter"
        secret = {o.name for o in family.OPTIONS if o.secret}
        options = "".join(
            f", {k} {'(set)' if k in secret else v}" for k, v in a.plug.options if v is not None
        )
        lines.append(
            f"  {a.name}: {a.plug.driver} plug at {where}"
            f"{f', kind {a.kind}' if a.kind else ''}, RUNNING after "
            f"{s.minsamples} sample(s) at or above {s.threshold_running_mw:,} mW{hysteresis}"
            f"{delays}{options}"
        )
        told = [f"on_{k.lower()}" for k in notices.EVENT_KINDS if a.notifications.command(k)]
        if a.notifications.notify and a.notifications.notify_events:
            told.append(
                f"notify {len(a.notifications.notify)} URL(s) of "
                + " ".join(a.notifications.notify_events)
            )
        if told:
            lines.append(f"    {', '.join(told)}")
    return "\n".join(lines)

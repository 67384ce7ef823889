"""The INI keys: how each value is read, and the tables of keys by section.

A key is a row: its parser (text -> value, or ValueError with a message that
becomes ``FILE:LINE: [SECTION] key: message``), whether it is required, its
default, and whether its value is taken as written (``raw``: ``;`` and ``#``
are part of it).  ``GLOBAL_KEYS`` are read from ``[whitegoodsd]``,
``APPLIANCE_KEYS`` from every appliance's section, ``NOTIFICATION_KEYS``
from both; a plug family's own options come from its ``OPTIONS``
(``family_keys``), and those marked shared may also be set in
``[whitegoodsd]`` (``shared_keys``).  ``config.py`` reads the file with them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from whitegoodsd import messages, notices
from whitegoodsd.drivers.base import split_host_port

if TYPE_CHECKING:
    from whitegoodsd.drivers.base import Driver

# A little above what a 16 A mains plug carries (16 A x 230 V = 3,680 W).
DEFAULT_MAX_PLAUSIBLE_MW = 4_000_000

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{n}": 16 + n for n in range(8)},
}  # fmt: skip


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

"""The state file: which appliances are running, and their open cycles, across restarts.

With ``state_file`` set, the monitor saves here after every pass that changed
anything: each appliance's running/stopped state, the statistics of its open
cycle (or of the high run that may start one), its cycle count and its last
cycle.  A daemon restarted in the middle
of a cycle reads it back, does not log RUNNING again, and logs FINISHED with
the whole cycle's statistics.

The file is JSON with a format ``version``.  It is replaced atomically (a
temporary file in the same directory, fsync, ``os.replace``), so a crash or a
``kill -9`` leaves either the old file or the new one, never half of one.
Loading never raises: a file that is missing, unreadable, malformed (even
nested too deep for the parser) or of an older version gives one warning and
no state; an entry for an appliance whose plug changed is dropped with a
warning.  A file of a newer version is left as it is: the daemon runs
without it and never overwrites it.

Times
-----
The detector measures cycles on the monotonic clock, which no NTP step or
``date -s`` moves.  The file holds wall-clock times, converted with one
reading of both clocks (``clock``: taken when the daemon started, so the
text changes only when the state does) and the kernel's boot id.  A daemon
restarted in the same boot converts back exactly, whatever the wall clock
did meanwhile.  After a reboot (or from a file without ``clock``) only the
wall clock links the two runs: the time between the last sample saved and
now counts as at most ``RESTART_GAP_LIMIT`` seconds, and never less than 0,
so a clock stepped across the restart cannot make a cycle negative or hours
long.

Syslog lines that could not be delivered (``syslog``: the events among them)
are saved too and sent, with their original timestamps, after a restart.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from whitegoodsd import files
from whitegoodsd.cycle import OpenCycle
from whitegoodsd.outputs.syslog import Line
from whitegoodsd.status import CycleRecord

VERSION = 1
MAX_BYTES = 16 * 1024 * 1024  # a larger file is not one this daemon wrote
RESTART_GAP_LIMIT = 900.0  # seconds a restart across a reboot may add to a cycle
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str | None:
    """This boot's id: monotonic times compare only within one boot."""
    try:
        with open(BOOT_ID, encoding="ascii") as handle:
            return handle.read(64).strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class Clocks:
    """Both clocks read at one moment, and the boot the monotonic one counts from."""

    wall: float
    monotonic: float
    boot: str | None

    def to_monotonic(self, saved: Clocks | None, wall_times: Sequence[float]) -> float:
        """The shift that turns saved wall-clock times into this run's monotonic times."""
        if (
            saved is not None
            and saved.boot is not None
            and saved.boot == self.boot
            and saved.monotonic <= self.monotonic
        ):
            return saved.monotonic - saved.wall  # exact: the inverse of the save
        last = max(wall_times, default=self.wall)
        gap = min(max(self.wall - last, 0.0), RESTART_GAP_LIMIT)
        return self.monotonic - gap - last


@dataclass(frozen=True)
class ApplianceState:
    """What is remembered of one appliance."""

    plug: str  # HOST:PORT; a saved cycle belongs to this plug
    running: bool
    cycle: OpenCycle | None  # the open cycle; when stopped, a high run that may start one
    cycles: int  # FINISHED events counted so far
    last_cycle: CycleRecord | None


@dataclass(frozen=True)
class Loaded:
    """What ``load`` found: states by upper-cased appliance name, and warnings."""

    appliances: Mapping[str, ApplianceState]
    warnings: tuple[str, ...]
    pending: tuple[Line, ...] = ()  # syslog lines a previous run could not deliver
    writable: bool = True  # False: a newer daemon's file, not to be overwritten


class _Malformed(ValueError):
    pass


def dumps(
    appliances: Mapping[str, ApplianceState],
    pending: Sequence[Line] = (),
    origin: Clocks | None = None,
) -> str:
    """The file's text for ``appliances`` (keyed by name as written).

    ``origin``: the clocks that convert open cycles' monotonic times to the
    wall clock; None keeps them as they are.
    """
    shift = 0.0 if origin is None else origin.wall - origin.monotonic
    body: dict[str, Any] = {
        "version": VERSION,
        "appliances": {
            name: {
                "plug": a.plug,
                "running": a.running,
                "cycle": asdict(_shifted(a.cycle, shift)) if a.cycle is not None else None,
                "cycles": a.cycles,
                "last_cycle": asdict(a.last_cycle) if a.last_cycle is not None else None,
            }
            for name, a in appliances.items()
        },
    }
    if origin is not None:
        body["clock"] = asdict(origin)
    if pending:
        body["syslog"] = [
            {"at": line.at, "severity": line.severity, "text": line.text} for line in pending
        ]
    return json.dumps(body, indent=1, sort_keys=True, allow_nan=False) + "\n"


def loads(text: str, plugs: Mapping[str, str] | None = None, now: Clocks | None = None) -> Loaded:
    """Parse the file's text; ``plugs``: each appliance's plug now, by upper-cased name.

    ``now``: this run's clocks, to turn open cycles' times into monotonic
    ones (see Times above); None keeps them as written.
    """
    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise _Malformed("not a JSON object")
        version = body.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            return Loaded(
                {},
                (
                    f"is of version {version}, newer than this daemon's {VERSION}; "
                    "left untouched, running without it",
                ),
                writable=False,
            )
        if version != VERSION:
            return Loaded({}, (f"is of version {version!r}, not {VERSION}; ignored",))
        entries = body.get("appliances")
        if not isinstance(entries, dict):
            raise _Malformed("no 'appliances' object")
        appliances = {str(name).upper(): _appliance(entry) for name, entry in entries.items()}
        pending = _pending(body.get("syslog"))
        if now is not None:
            appliances = _to_monotonic(appliances, _clocks(body.get("clock")), now)
    except (ValueError, TypeError, KeyError, RecursionError, MemoryError) as exc:
        # RecursionError: JSON nested deeper than the parser's stack allows.
        return Loaded({}, (f"is unreadable ({_brief(exc)}); ignored",))
    warnings = []
    if plugs is not None:
        for name, saved in list(appliances.items()):
            plug = plugs.get(name)
            if plug is not None and plug != saved.plug:
                del appliances[name]
                warnings.append(f"has {name} on plug {saved.plug}, now {plug}; its entry ignored")
    return Loaded(appliances, tuple(warnings), pending)


def load(path: str, plugs: Mapping[str, str] | None = None, now: Clocks | None = None) -> Loaded:
    """Read the state file at ``path``; warnings name the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return Loaded({}, (f"State file {path} not found; every appliance starts stopped.",))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Loaded({}, (f"State file {path} cannot be read ({reason}); ignored.",))
    if len(text) > MAX_BYTES:
        return Loaded({}, (f"State file {path} is larger than {MAX_BYTES:,} bytes; ignored.",))
    try:
        loaded = loads(text, plugs, now)
    except Exception as exc:  # noqa: BLE001 - whatever is in the file, start afresh
        return Loaded({}, (f"State file {path} is unreadable ({_brief(exc)}); ignored.",))
    warnings = tuple(f"State file {path} {w}." for w in loaded.warnings)
    return dataclasses.replace(loaded, warnings=warnings)


def save(path: str, text: str) -> None:
    """Replace the file at ``path`` with ``text`` atomically; OSError on failure."""
    files.write_atomically(path, text.encode(), prefix=".state-", suffix=".tmp")


def _brief(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deep"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:100]


def _shifted(cycle: OpenCycle, shift: float) -> OpenCycle:
    if shift == 0.0:
        return cycle
    return dataclasses.replace(
        cycle,
        started=cycle.started + shift,
        last_at=cycle.last_at + shift,
        end_at=None if cycle.end_at is None else cycle.end_at + shift,
    )


def _to_monotonic(
    appliances: dict[str, ApplianceState], saved: Clocks | None, now: Clocks
) -> dict[str, ApplianceState]:
    last = [a.cycle.last_at for a in appliances.values() if a.cycle is not None]
    shift = now.to_monotonic(saved, last)
    return {
        name: a if a.cycle is None else dataclasses.replace(a, cycle=_shifted(a.cycle, shift))
        for name, a in appliances.items()
    }


def _clocks(raw: Any) -> Clocks | None:
    if raw is None:
        return None
    obj = _object(raw, "'clock'")
    boot = obj.get("boot")
    if boot is not None and not isinstance(boot, str):
        raise _Malformed("'boot' is not a string")
    return Clocks(_number(obj, "wall"), _number(obj, "monotonic"), boot)


def _pending(raw: Any) -> tuple[Line, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _Malformed("'syslog' is not a list")
    lines = []
    for item in raw:
        obj = _object(item, "a syslog line")
        text, level = obj.get("text"), obj.get("severity")
        if not isinstance(text, str) or not isinstance(level, int) or not 0 <= level <= 7:
            raise _Malformed("a syslog line without text or severity")
        lines.append(Line(_number(obj, "at"), level, text, event=True))
    return tuple(lines)


def _appliance(entry: Any) -> ApplianceState:
    obj = _object(entry, "an appliance entry")
    running = obj.get("running")
    cycles = obj.get("cycles")
    plug = obj.get("plug")
    if not isinstance(running, bool):
        raise _Malformed("'running' is not true or false")
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 0:
        raise _Malformed("'cycles' is not a count")
    if not isinstance(plug, str):
        raise _Malformed("'plug' is not a string")
    cycle = _open_cycle(obj.get("cycle"))
    return ApplianceState(plug, running, cycle, cycles, _cycle_record(obj.get("last_cycle")))


def _open_cycle(raw: Any) -> OpenCycle | None:
    if raw is None:
        return None
    obj = _object(raw, "'cycle'")
    return OpenCycle(
        started=_number(obj, "started"),
        start_total_wh=_optional(obj, "start_total_wh"),
        peak_mw=int(_number(obj, "peak_mw")),
        integrated_wh=_number(obj, "integrated_wh"),
        last_at=_number(obj, "last_at"),
        last_power_mw=int(_number(obj, "last_power_mw")),
        end_at=_optional(obj, "end_at"),
        end_total_wh=_optional(obj, "end_total_wh"),
        end_integrated_wh=_number(obj, "end_integrated_wh"),
    )


def _cycle_record(raw: Any) -> CycleRecord | None:
    if raw is None:
        return None
    obj = _object(raw, "'last_cycle'")
    return CycleRecord(
        started=_number(obj, "started"),
        duration=_number(obj, "duration"),
        energy_wh=_optional(obj, "energy_wh"),
        peak_mw=int(_number(obj, "peak_mw")),
    )


def _object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Malformed(f"{what} is not an object")
    return raw


def _optional(obj: dict[str, Any], key: str) -> float | None:
    return None if obj.get(key) is None else _number(obj, key)


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Malformed(f"{key!r} is not a finite number")
    return float(value)

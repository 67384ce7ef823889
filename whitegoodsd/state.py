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
Loading never raises: a file that is missing, unreadable, malformed or of
another version gives a warning and no state; an entry for an appliance
whose plug changed is dropped with a warning.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from whitegoodsd import files
from whitegoodsd.cycle import OpenCycle
from whitegoodsd.status import CycleRecord

VERSION = 1


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


class _Malformed(ValueError):
    pass


def dumps(appliances: Mapping[str, ApplianceState]) -> str:
    """The file's text for ``appliances`` (keyed by name as written)."""
    body = {
        "version": VERSION,
        "appliances": {
            name: {
                "plug": a.plug,
                "running": a.running,
                "cycle": asdict(a.cycle) if a.cycle is not None else None,
                "cycles": a.cycles,
                "last_cycle": asdict(a.last_cycle) if a.last_cycle is not None else None,
            }
            for name, a in appliances.items()
        },
    }
    return json.dumps(body, indent=1, sort_keys=True, allow_nan=False) + "\n"


def loads(text: str, plugs: Mapping[str, str] | None = None) -> Loaded:
    """Parse the file's text; ``plugs``: each appliance's plug now, by upper-cased name."""
    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise _Malformed("not a JSON object")
        version = body.get("version")
        if version != VERSION:
            return Loaded({}, (f"is of version {version!r}, not {VERSION}; ignored",))
        entries = body.get("appliances")
        if not isinstance(entries, dict):
            raise _Malformed("no 'appliances' object")
        appliances = {str(name).upper(): _appliance(entry) for name, entry in entries.items()}
    except (ValueError, TypeError, KeyError) as exc:
        return Loaded({}, (f"is unreadable ({_brief(exc)}); ignored",))
    warnings = []
    if plugs is not None:
        for name, saved in list(appliances.items()):
            now = plugs.get(name)
            if now is not None and now != saved.plug:
                del appliances[name]
                warnings.append(f"has {name} on plug {saved.plug}, now {now}; its entry ignored")
    return Loaded(appliances, tuple(warnings))


def load(path: str, plugs: Mapping[str, str] | None = None) -> Loaded:
    """Read the state file at ``path``; warnings name the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return Loaded({}, (f"State file {path} not found; every appliance starts stopped.",))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Loaded({}, (f"State file {path} cannot be read ({reason}); ignored.",))
    loaded = loads(text, plugs)
    warnings = tuple(f"State file {path} {w}." for w in loaded.warnings)
    return Loaded(loaded.appliances, warnings)


def save(path: str, text: str) -> None:
    """Replace the file at ``path`` with ``text`` atomically; OSError on failure."""
    files.write_atomically(path, text.encode(), prefix=".state-", suffix=".tmp")


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:100]


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

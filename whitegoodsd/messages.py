"""Words for people about an event: notify_template and its fields.

Pure: a notice in, text out.  ``check_template`` is what the configuration
uses to refuse a template with an unknown field; ``render`` fills one in.
"""

from __future__ import annotations

import datetime
import string
import time

from whitegoodsd.notices import Notice

DEFAULT_TEMPLATE = "{Appliance} finished after {duration}, {energy}."

# name -> what it holds; the cycle's fields are empty for events other than FINISHED
FIELDS = {
    "appliance": "the name as written in appliances =",
    "Appliance": "the name with only its first letter capitalised (WASHER: Washer)",
    "event": "RUNNING, FINISHED, UNREACHABLE or REACHABLE",
    "message": "the syslog line, e.g. WASHER is FINISHED. Ran 1:32:05, ...",
    "time": "the local time of the event, HH:MM",
    "at": "the time of the event in ISO 8601, with the UTC offset",
    "duration": "how long the cycle ran, H:MM",
    "duration_s": "the same in whole seconds",
    "energy": "the energy the cycle used, e.g. 0.85 kWh",
    "energy_wh": "the same in watt-hours",
    "peak": "the cycle's peak power, e.g. 2,150 W",
    "peak_w": "the same in watts",
    "reason": "for UNREACHABLE, why the last poll failed",
}


def check_template(template: str) -> str:
    """``template`` if every ``{field}`` in it is known, else ValueError."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for a literal brace)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS:
            known = ", ".join(f"{{{f}}}" for f in FIELDS)
            raise ValueError(f"unknown field {{{name}}} (known: {known})")
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no format or conversion")
    return template


def iso_time(at: float) -> str:
    """``at`` as local ISO 8601 with its offset: ``2026-11-21T02:15:24+01:00``."""
    return datetime.datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def fields(notice: Notice, message: str) -> dict[str, str]:
    """The value of every template field for ``notice``, whose syslog line is ``message``."""
    values = dict.fromkeys(FIELDS, "")
    name = notice.appliance
    values.update(
        appliance=name,
        Appliance=name[:1].upper() + name[1:].lower(),
        event=notice.kind,
        message=message,
        time=time.strftime("%H:%M", time.localtime(notice.at)),
        at=iso_time(notice.at),
        reason=notice.reason or "",
    )
    record = notice.cycle
    if record is not None:
        minutes = round(max(0.0, record.duration) / 60)
        values.update(
            duration=f"{minutes // 60}:{minutes % 60:02d}",
            duration_s=str(round(max(0.0, record.duration))),
            peak=f"{round(record.peak_mw / 1000):,} W",
            peak_w=str(round(record.peak_mw / 1000)),
            energy="unknown energy",
        )
        if record.energy_wh is not None:
            values.update(
                energy=f"{record.energy_wh / 1000:.2f} kWh",
                energy_wh=f"{record.energy_wh:.1f}",
            )
    return values


def render(template: str, notice: Notice, message: str) -> str:
    """``template`` (checked by check_template) filled in for ``notice``."""
    return template.format_map(fields(notice, message))

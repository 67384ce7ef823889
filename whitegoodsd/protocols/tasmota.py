"""Tasmota (and OpenBeken) energy plugs over HTTP, without I/O.

``GET /cm?cmnd=Status%2010`` answers ``{"StatusSNS": {"Time": ...,
"ENERGY": {...}}}``: ``Power`` in W, ``Voltage`` V, ``Current`` A, ``Total``
kWh (OpenBeken: ``ConsumptionTotal``, in Wh, instead).  Devices with several
metered channels give arrays; :func:`parse_status` picks one.  Only ``Power``
is required: the energy keys vary between builds.

With a web password set, ``user`` and ``password`` go in the query.  A wrong
or missing one is answered, with HTTP 200, by ``{"WARNING": "Need
user=<username>&password=<password>"}``: an AuthError, not data.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass
from typing import Any

from whitegoodsd.errors import AuthError, ProtocolError, Reading, finite

PORT = 80
COMMAND = "Status 10"
MAX_REPLY = 64 * 1024
NEED_PASSWORD = "Need user=<username>&password=<password>"


def target(username: str | None = None, password: str | None = None, command: str = COMMAND) -> str:
    """The request target for a command (``Status 10``), with credentials when given."""
    query: list[tuple[str, str]] = []
    if password is not None:
        query += [("user", username or "admin"), ("password", password)]
    query.append(("cmnd", command))
    return "/cm?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")


def loads(body: bytes) -> Any:
    if len(body) > MAX_REPLY:
        raise ProtocolError(f"reply longer than the {MAX_REPLY:,} bytes accepted")
    try:
        return json.loads(body)
    except RecursionError:
        raise ProtocolError("reply is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:60] if str(exc) else type(exc).__name__
        raise ProtocolError(f"reply is not JSON ({reason})") from None


def milli(value: object, what: str) -> int:
    """A reading in W, V or A as an integer count of mW, mV or mA."""
    scaled = finite(value, what) * 1000
    if not math.isfinite(scaled):  # 1e308 W is finite, 1e311 mW is not
        raise ProtocolError(f"{what} is out of range")
    return round(scaled)


def _pick(value: object, channel: int, what: str) -> object:
    """``value``, or its ``channel``-th element when it is an array."""
    if not isinstance(value, list):
        if channel:
            raise ProtocolError(f"{what} is a single value: the plug has one channel")
        return value
    if not 0 <= channel < len(value):
        raise ProtocolError(f"no channel {channel}: {what} has {len(value)}")
    return value[channel]


def parse_status(body: bytes, channel: int = 0) -> Reading:
    """A ``Status 10`` (or ``Status 8``) reply."""
    reply = loads(body)
    if not isinstance(reply, dict):
        raise ProtocolError("reply is not a JSON object")
    if "WARNING" in reply:
        warning = reply["WARNING"]
        text = warning.splitlines()[0][:80] if isinstance(warning, str) and warning else ""
        raise AuthError(f"plug refused the credentials ({text or 'WARNING'})")
    sensors = reply.get("StatusSNS", reply)
    if not isinstance(sensors, dict):
        raise ProtocolError("StatusSNS is not an object")
    energy = sensors.get("ENERGY")
    if not isinstance(energy, dict):
        if "Command" in reply:  # {"Command":"Unknown"}
            raise ProtocolError(f"plug answered Command {str(reply['Command'])[:30]!r}")
        raise ProtocolError("reply has no ENERGY: the plug has no power meter")
    if "Power" not in energy:
        raise ProtocolError("ENERGY has no Power")
    power_mw = milli(_pick(energy["Power"], channel, "Power"), "Power")
    several = isinstance(energy["Power"], list) and len(energy["Power"]) > 1
    voltage = _own(energy, "Voltage", channel, shared=True)  # one mains for every channel
    current = _own(energy, "Current", channel, several)
    total = _own(energy, "Total", channel, several)
    total_wh = None if total is None else total * 1000
    if total_wh is not None and not math.isfinite(total_wh):
        raise ProtocolError("Total is out of range")
    if total_wh is None:
        total_wh = _own(energy, "ConsumptionTotal", channel, several)  # OpenBeken: Wh
    return Reading(
        power_mw=power_mw,
        voltage_mv=None if voltage is None else milli(voltage, "Voltage"),
        current_ma=None if current is None else milli(current, "Current"),
        total_wh=total_wh,
    )


def _own(
    energy: dict[str, Any], key: str, channel: int, several: bool = False, *, shared: bool = False
) -> float | None:
    """The channel's own value of an optional key, or None.

    An array gives each channel its own; a single value on a device with
    several channels is a sum, no channel's own, unless it is ``shared``
    (the mains voltage).
    """
    value = energy.get(key)
    if value is None or (isinstance(value, list) and not value):
        return None
    if isinstance(value, list):
        return finite(_pick(value, channel, key), key)
    if (several or channel) and not shared:
        return None
    return finite(value, key)


def status_reply(readings: list[Reading], *, time: str = "1970-01-01T00:00:00") -> dict[str, Any]:
    """A ``Status 10`` reply as Tasmota sends it: scalars for one channel, arrays for more."""

    def each(values: list[float]) -> float | list[float]:
        return values[0] if len(values) == 1 else values

    total_kwh = sum(r.total_wh or 0.0 for r in readings) / 1000
    return {
        "StatusSNS": {
            "Time": time,
            "ENERGY": {
                "TotalStartTime": "1970-01-01T00:00:00",
                "Total": round(total_kwh, 3),
                "Yesterday": 0.0,
                "Today": round(total_kwh, 3),
                "Power": each([round(r.power_mw / 1000) for r in readings]),
                "ApparentPower": each([round(r.power_mw / 1000) for r in readings]),
                "ReactivePower": each([0 for _ in readings]),
                "Factor": each([1.0 if r.power_mw else 0.0 for r in readings]),
                "Voltage": each([round((r.voltage_mv or 0) / 1000) for r in readings]),
                "Current": each([round((r.current_ma or 0) / 1000, 3) for r in readings]),
            },
        }
    }


def openbeken_reply(reading: Reading, *, time: str = "1970-01-01T00:00:00") -> dict[str, Any]:
    """A ``Status 10`` reply as OpenBeken sends it (floats, ConsumptionTotal in Wh)."""
    return {
        "StatusSNS": {
            "Time": time,
            "ENERGY": {
                "Power": reading.power_mw / 1000,
                "ApparentPower": reading.power_mw / 1000,
                "ReactivePower": 0.0,
                "Factor": 1.0,
                "Voltage": (reading.voltage_mv or 0) / 1000,
                "Current": (reading.current_ma or 0) / 1000,
                "ConsumptionTotal": reading.total_wh or 0.0,
                "Yesterday": 0.0,
                "ConsumptionLastHour": 0.0,
            },
        }
    }


def warning_reply() -> dict[str, str]:
    """What Tasmota answers a request with a wrong or missing password."""
    return {"WARNING": NEED_PASSWORD}


DEVICE_STATUS = "Status 0"


@dataclass(frozen=True)
class Device:
    """What ``Status 0`` says about a device (for discovery)."""

    name: str
    mac: str
    version: str
    meters_power: bool  # StatusSNS carries ENERGY


def parse_device(body: bytes) -> Device:
    """A ``Status 0`` reply; AuthError for a WARNING, ProtocolError if not Tasmota."""
    reply = loads(body)
    if not isinstance(reply, dict):
        raise ProtocolError("reply is not a JSON object")
    if "WARNING" in reply:
        raise AuthError("plug asks for a password")
    status, net, firmware = (reply.get(k) for k in ("Status", "StatusNET", "StatusFWR"))
    if not isinstance(status, dict) or not isinstance(net, dict):
        raise ProtocolError("reply has no Status and StatusNET: not Tasmota")
    names = status.get("FriendlyName")
    name = status.get("DeviceName") or (names[0] if isinstance(names, list) and names else "")
    sensors = reply.get("StatusSNS")
    version = firmware.get("Version") if isinstance(firmware, dict) else ""
    return Device(
        name=name[:64] if isinstance(name, str) else "",
        mac=net.get("Mac", "")[:32] if isinstance(net.get("Mac"), str) else "",
        version=version[:40] if isinstance(version, str) else "",
        meters_power=isinstance(sensors, dict) and isinstance(sensors.get("ENERGY"), dict),
    )

"""Shelly plugs over HTTP, without I/O: what to ask, and what the replies mean.

Every Shelly answers ``GET /shelly`` without a password.  A Gen1 device
(Plug S, Plug, Plug US) says ``type``, ``mac``, ``auth`` and no ``gen``; a
Gen2, Gen3 or Gen4 device (Plus Plug S, Plug S Gen3, Pro 1PM...) says
``gen``, ``id``, ``model``, ``auth_en`` and ``auth_domain``, the realm of its
Digest authentication (see ``digest.py``).

* Gen1: ``GET /meter/N`` (or ``/status`` and its ``meters[N]``): ``power`` in
  W and ``total`` in **watt-minutes** since boot.  Basic authentication.
* Gen2+: ``GET /rpc/Switch.GetStatus?id=N`` (``PM1.GetStatus`` on meters
  without a relay) answers the component's status object: ``apower`` W,
  ``voltage`` V, ``current`` A, ``aenergy.total`` Wh.  An RPC error comes
  back as ``{"code": C, "message": M}`` with an HTTP error status.

The parsers take the body's bytes and return an :class:`Identity` or a
Reading; anything else is a ProtocolError with a one-line reason.  The
builders (``gen1_meter``, ``switch_status``...) make the replies a real
device sends, for the emulator and the tests.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from whitegoodsd.errors import ProtocolError, Reading, finite

PORT = 80
IDENTIFY = "/shelly"
MAX_REPLY = 64 * 1024
RPC_USER = "admin"  # Gen2+ digest: the user is always admin
SWITCH = "Switch.GetStatus"
PM1 = "PM1.GetStatus"
METHODS = (SWITCH, PM1)
# The RPC error code for "no such method here" (a meter without a relay has no
# Switch): try the next method.  -105, "no such id", is the user's to fix.
NOT_HERE = frozenset({404})


@dataclass(frozen=True)
class Identity:
    """What ``/shelly`` says about a device."""

    gen: int  # 1 for a reply without "gen"
    model: str  # Gen1 "type" (SHPLG-S), Gen2+ "model" (SNPL-00112EU)
    mac: str
    device_id: str  # Gen2+ "id" (shellyplusplugs-aabbccddeeff); Gen1: "" (none given)
    auth: bool  # a password is set
    realm: str  # Gen2+ digest realm: auth_domain, else id
    name: str = ""
    firmware: str = ""
    app: str = ""  # Gen2+ "app" (PlusPlugS)
    outputs: int | None = None  # Gen1 num_outputs / num_meters, when given
    meters: int | None = None


def loads(body: bytes, what: str = "reply") -> Any:
    """JSON from a reply body; ProtocolError for anything else."""
    if len(body) > MAX_REPLY:
        raise ProtocolError(f"{what} longer than the {MAX_REPLY:,} bytes accepted")
    try:
        return json.loads(body)
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:60] if str(exc) else type(exc).__name__
        raise ProtocolError(f"{what} is not JSON ({reason})") from None


def milli(value: object, what: str) -> int:
    """A reading in W, V or A as an integer count of mW, mV or mA."""
    scaled = finite(value, what) * 1000
    if not math.isfinite(scaled):  # 1e308 W is finite, 1e311 mW is not
        raise ProtocolError(f"{what} is out of range")
    return round(scaled)


def _text(value: object, limit: int = 64) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not an object: {_short(value)}")
    return value


def _short(value: object) -> str:
    text = json.dumps(value) if isinstance(value, dict | list | str | int | float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_identity(body: bytes) -> Identity:
    """A ``/shelly`` reply."""
    info = _object(loads(body, "/shelly reply"), "/shelly reply")
    gen = info.get("gen")
    if gen is None:
        if "type" not in info or "mac" not in info:
            raise ProtocolError("/shelly reply has neither gen nor type and mac: not a Shelly")
        outputs, meters = info.get("num_outputs"), info.get("num_meters")
        return Identity(
            gen=1,
            model=_text(info["type"]) or "unknown",
            mac=_text(info["mac"]),
            device_id="",
            auth=info.get("auth") is True,
            realm="",
            firmware=_text(info.get("fw")),
            outputs=outputs if isinstance(outputs, int) and not isinstance(outputs, bool) else None,
            meters=meters if isinstance(meters, int) and not isinstance(meters, bool) else None,
        )
    if isinstance(gen, bool) or not isinstance(gen, int) or not 2 <= gen <= 99:
        raise ProtocolError(f"/shelly reply has gen {_short(gen)}")
    device_id = _text(info.get("id"), 128)
    realm = _text(info.get("auth_domain"), 128) or device_id
    if not device_id:
        raise ProtocolError("/shelly reply has no device id")
    return Identity(
        gen=gen,
        model=_text(info.get("model")) or _text(info.get("app")) or "unknown",
        mac=_text(info.get("mac")),
        device_id=device_id,
        auth=info.get("auth_en") is True,
        realm=realm,
        name=_text(info.get("name")),
        firmware=_text(info.get("fw_id")) or _text(info.get("ver")),
        app=_text(info.get("app")),
    )


# -- Gen1 ---------------------------------------------------------------------


def meter_target(channel: int) -> str:
    return f"/meter/{channel}"


def parse_gen1_meter(meter: object) -> Reading:
    """A Gen1 meter object (``/meter/N``, or one of ``/status``'s ``meters``)."""
    record = _object(meter, "meter")
    if "power" not in record:
        raise ProtocolError(f"meter has no power: {_short(record)}")
    reading = Reading(power_mw=milli(record["power"], "power"))
    total = record.get("total")
    if total is not None:
        reading = Reading(reading.power_mw, total_wh=finite(total, "total") / 60)  # W-min
    return reading


def parse_gen1_meter_reply(body: bytes) -> Reading:
    """A ``/meter/N`` reply."""
    return parse_gen1_meter(loads(body, "/meter reply"))


def parse_gen1_status(body: bytes, channel: int = 0) -> Reading:
    """A ``/status`` reply: its ``meters[channel]``."""
    status = _object(loads(body, "/status reply"), "/status reply")
    meters = status.get("meters")
    if not isinstance(meters, list):
        raise ProtocolError("/status reply has no meters")
    if not 0 <= channel < len(meters):
        raise ProtocolError(f"no meter {channel}: the plug has {len(meters)}")
    return parse_gen1_meter(meters[channel])


def gen1_meter(reading: Reading, timestamp: int = 0) -> dict[str, Any]:
    """A Gen1 meter object for ``reading`` (energy in watt-minutes)."""
    watt_minutes = (reading.total_wh or 0.0) * 60
    return {
        "power": round(reading.power_mw / 1000, 2),
        "overpower": 0.0,
        "is_valid": True,
        "timestamp": timestamp,
        "counters": [0.0, 0.0, 0.0],
        "total": int(watt_minutes),
    }


# -- Gen2 and later: RPC ------------------------------------------------------


def rpc_target(method: str, channel: int) -> str:
    return f"/rpc/{method}?id={channel}"


def rpc_error(reply: object) -> tuple[int, str] | None:
    """``(code, message)`` when ``reply`` is an RPC error, else None."""
    if not isinstance(reply, dict):
        return None
    error = reply.get("error", reply) if "result" not in reply else None
    if not isinstance(error, dict) or "code" not in error or "message" not in error:
        return None
    code = error["code"]
    if isinstance(code, bool) or not isinstance(code, int) or not -(10**9) < code < 10**9:
        return None
    lines = _text(error["message"], 80).splitlines()
    return code, lines[0] if lines else ""


def parse_rpc_status(body: bytes, method: str = SWITCH) -> Reading:
    """A ``Switch.GetStatus`` or ``PM1.GetStatus`` reply (the bare result, or a
    JSON-RPC frame holding it)."""
    reply = loads(body, f"{method} reply")
    error = rpc_error(reply)
    if error is not None:
        raise ProtocolError(f"{method} failed: {error[0]} {error[1]}".rstrip())
    status = _object(reply, f"{method} reply")
    if "result" in status and "apower" not in status:
        status = _object(status["result"], f"{method} result")
    if "apower" not in status:
        raise ProtocolError(f"{method} reply has no apower: {_short(status)}")
    voltage = status.get("voltage")
    current = status.get("current")
    energy = status.get("aenergy")
    total = None
    if isinstance(energy, dict) and energy.get("total") is not None:
        total = finite(energy["total"], "aenergy.total")
    return Reading(
        power_mw=milli(status["apower"], "apower"),
        voltage_mv=None if voltage is None else milli(voltage, "voltage"),
        current_ma=None if current is None else milli(current, "current"),
        total_wh=total,
    )


def switch_status(
    channel: int, reading: Reading, *, output: bool = True, minute_ts: int = 0
) -> dict[str, Any]:
    """A ``switch:N`` status object as a Plus Plug S reports it."""
    status: dict[str, Any] = {
        "id": channel,
        "source": "init",
        "output": output,
        "apower": round(reading.power_mw / 1000, 1),
        "voltage": round((reading.voltage_mv or 0) / 1000, 1),
        "current": round((reading.current_ma or 0) / 1000, 3),
        "aenergy": {
            "total": round(reading.total_wh or 0.0, 3),
            "by_minute": [0.0, 0.0, 0.0],
            "minute_ts": minute_ts,
        },
        "temperature": {"tC": 32.1, "tF": 89.7},
    }
    return status


def pm1_status(channel: int, reading: Reading, *, minute_ts: int = 0) -> dict[str, Any]:
    """A ``pm1:N`` status object (a meter without a relay)."""
    return {
        "id": channel,
        "voltage": round((reading.voltage_mv or 0) / 1000, 1),
        "current": round((reading.current_ma or 0) / 1000, 3),
        "apower": round(reading.power_mw / 1000, 1),
        "freq": 50.0,
        "aenergy": {
            "total": round(reading.total_wh or 0.0, 3),
            "by_minute": [0.0, 0.0, 0.0],
            "minute_ts": minute_ts,
        },
        "ret_aenergy": {"total": 0.0, "by_minute": [0.0, 0.0, 0.0], "minute_ts": minute_ts},
    }

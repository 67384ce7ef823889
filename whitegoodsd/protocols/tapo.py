"""The TP-Link "SMART" JSON protocol of Tapo plugs, without I/O.

Inside a KLAP session (``klap.py``) a Tapo plug takes requests
``{"method": M, "params": {...}, "request_time_milis": T, "terminal_uuid": U}``
and answers ``{"error_code": 0, "result": {...}}``.  Three methods report
power; a plug answers those its firmware has and refuses the others with an
error code:

====================  ===========================================  ==========================
method                fields                                       firmware
====================  ===========================================  ==========================
``get_emeter_data``   ``power_mw``, ``voltage_mv``, ``current_ma``   newer (P110M, P115 US ...)
``get_energy_usage``  ``current_power`` in mW                        every metered plug
``get_current_power`` ``current_power`` in whole W                   energy_monitoring v2+
====================  ===========================================  ==========================

:data:`POWER_METHODS` lists them most precise first; :func:`parse_power`
reads any of them.  The emulator builds its replies with :func:`reply` and
the ``*_result`` functions, the inverse of the parsers.
"""

from __future__ import annotations

import json
from typing import Any

from whitegoodsd.errors import ProtocolError, Reading, finite

GET_EMETER_DATA = "get_emeter_data"
GET_ENERGY_USAGE = "get_energy_usage"
GET_CURRENT_POWER = "get_current_power"
GET_DEVICE_INFO = "get_device_info"
POWER_METHODS = (GET_EMETER_DATA, GET_ENERGY_USAGE, GET_CURRENT_POWER)

# error_code values
OK = 0
UNKNOWN_METHOD = -1002
BAD_REQUEST = -1003  # some firmware answers this for a method it lacks
PARAMS_ERROR = -1008
SESSION_TIMEOUT = 9999
# a plug that does not have a method says so with one of these
NOT_SUPPORTED = frozenset({UNKNOWN_METHOD, BAD_REQUEST, -1})

MAX_POWER_MW = 1_000_000_000  # 1 MW: past any plug; above it the reply is garbage


class MethodUnsupported(ProtocolError):
    """The plug does not know this method: ask another."""


class SessionTimeout(ProtocolError):
    """The plug says the session timed out (error 9999): handshake again."""


def dumps(message: object) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def request(
    method: str,
    time_ms: int,
    terminal_uuid: str,
    params: dict[str, Any] | None = None,
) -> bytes:
    """A SMART request, as the vendor's app sends it."""
    message: dict[str, Any] = {"method": method}
    if params is not None:
        message["params"] = params
    message["request_time_milis"] = time_ms
    message["terminal_uuid"] = terminal_uuid
    return dumps(message)


def loads(body: bytes, kind: str = "reply") -> dict[str, Any]:
    """A JSON object, or ProtocolError."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"{kind} is not JSON ({str(exc).splitlines()[0][:80]})") from None
    except RecursionError:
        raise ProtocolError(f"{kind} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{kind} is not a JSON object")
    return value


def result(body: bytes, method: str) -> dict[str, Any]:
    """The ``result`` object of a reply to ``method``; the plug's error as an exception."""
    reply = loads(body)
    code = reply.get("error_code")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ProtocolError(f"{method} reply has no error_code")
    if code in NOT_SUPPORTED:
        raise MethodUnsupported(f"the plug does not know {method} (error {code})")
    if code == SESSION_TIMEOUT:
        raise SessionTimeout("the plug says the session timed out (error 9999)")
    if code != OK:
        raise ProtocolError(f"{method} failed with error {code}")
    value = reply.get("result", {})
    if not isinstance(value, dict):
        raise ProtocolError(f"{method} reply's result is not an object")
    return value


def _milli(value: object, what: str, scale: float) -> int:
    number = finite(value, what) * scale
    if not -1000 <= number <= MAX_POWER_MW:
        raise ProtocolError(f"{what} out of range: {value!r:.40}")
    return max(0, round(number))


def _optional(result: dict[str, Any], key: str) -> int | None:
    if key not in result:
        return None
    number = finite(result[key], key)
    if not 0 <= number <= 1e9:
        raise ProtocolError(f"{key} out of range: {result[key]!r:.40}")
    return round(number)


def parse_power(method: str, result: dict[str, Any]) -> Reading:
    """The reading in the ``result`` of one of :data:`POWER_METHODS`."""
    if method == GET_EMETER_DATA:
        if "power_mw" not in result:
            raise ProtocolError("get_emeter_data result has no power_mw")
        return Reading(
            power_mw=_milli(result["power_mw"], "power_mw", 1.0),
            voltage_mv=_optional(result, "voltage_mv"),
            current_ma=_optional(result, "current_ma"),
        )
    if method in (GET_ENERGY_USAGE, GET_CURRENT_POWER):
        if "current_power" not in result:
            raise ProtocolError(f"{method} result has no current_power")
        scale = 1.0 if method == GET_ENERGY_USAGE else 1000.0
        return Reading(power_mw=_milli(result["current_power"], "current_power", scale))
    raise ValueError(f"{method} does not report power")


# -- the plug's side (the emulator) --------------------------------------------


def reply(result: dict[str, Any] | None = None, error_code: int = OK) -> bytes:
    """A SMART reply."""
    message: dict[str, Any] = {"error_code": error_code}
    if result is not None:
        message["result"] = result
    return dumps(message)


def emeter_data_result(reading: Reading) -> dict[str, Any]:
    out: dict[str, Any] = {"power_mw": reading.power_mw}
    if reading.voltage_mv is not None:
        out["voltage_mv"] = reading.voltage_mv
    if reading.current_ma is not None:
        out["current_ma"] = reading.current_ma
    if reading.total_wh is not None:
        out["energy_wh"] = int(reading.total_wh)
    return out


def current_power_result(reading: Reading) -> dict[str, Any]:
    """``get_current_power``: whole watts, as the plugs round them."""
    return {"current_power": reading.power_mw // 1000}

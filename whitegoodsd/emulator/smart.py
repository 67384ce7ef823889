"""An emulated Tapo P110 as SMART requests and replies, without I/O.

:class:`SmartDevice` answers what a real P110 answers to the vendor's app
and to third-party clients: ``component_nego``, ``get_device_info``,
``get_device_usage``, ``get_device_time``, ``get_connect_cloud_state``,
``get_energy_usage``, ``get_current_power``, ``get_emeter_data`` and
``get_emeter_vgain_igain`` (only when the emulated firmware is new enough:
``emeter_data``), ``set_device_info``
(the relay) and ``multipleRequest`` batches of these.  Any other method gets
error -1002, as on the plugs.  The relay off reads 0 W.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from whitegoodsd.emulator import PowerSource
from whitegoodsd.errors import Reading
from whitegoodsd.protocols import tapo

MAX_BATCH = 16


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SmartDevice:
    """A Tapo P110 (or P115, P110M with ``emeter_data``) as request and reply objects."""

    def __init__(
        self,
        source: PowerSource,
        *,
        alias: str = "Emulated plug",
        index: int = 0,
        model: str = "P110",
        emeter_data: bool = True,
        voltage_mv: int = 230_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.alias = alias
        self.index = index
        self.model = model
        self.emeter_data = emeter_data
        self.voltage_mv = voltage_mv
        self.relay_on = True
        self.requests = 0
        self._clock = clock
        self._booted = clock()
        self._relay_since = self._booted
        digest = hashlib.sha256(f"whitegoodsd emulated tapo {index}".encode()).hexdigest()
        tail = f"{(0x7C2A00 + index) % 0x1000000:06X}"
        self.mac = f"3C-52-A1-{tail[0:2]}-{tail[2:4]}-{tail[4:6]}"  # a TP-Link prefix
        self.device_id = digest[:40].upper()
        self.hw_id = digest[40:64].upper() + "0" * 8
        self.oem_id = hashlib.md5(f"oem {model}".encode()).hexdigest().upper()
        self._methods: dict[str, Callable[[Any], dict[str, Any]]] = {
            "component_nego": lambda _: self.components(),
            "get_device_info": lambda _: self.device_info(),
            "get_device_usage": lambda _: self._usage(),
            "get_device_time": lambda _: self._time(),
            "get_connect_cloud_state": lambda _: {"status": 0},
            tapo.GET_ENERGY_USAGE: lambda _: self._energy_usage(),
            tapo.GET_CURRENT_POWER: lambda _: tapo.current_power_result(self.reading()),
            "set_device_info": self._set_device_info,
        }
        if emeter_data:
            self._methods[tapo.GET_EMETER_DATA] = lambda _: tapo.emeter_data_result(self.reading())
            self._methods["get_emeter_vgain_igain"] = lambda _: {"v_gain": 118632, "i_gain": 10287}

    def reading(self) -> Reading:
        power = max(0, self.source.power_mw()) if self.relay_on else 0
        wobble = math.sin(self._clock() / 7.0 + self.index) * 1200
        voltage = round(self.voltage_mv + wobble)
        current = round(power / voltage * 1000) if voltage else 0
        return Reading(power, voltage, current, self.source.total_wh())

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply object to one request object."""
        self.requests += 1
        method = request.get("method")
        if method == "multipleRequest":
            params = request.get("params")
            requests = params.get("requests") if isinstance(params, dict) else None
            if not isinstance(requests, list) or len(requests) > MAX_BATCH:
                return {"error_code": tapo.PARAMS_ERROR}
            responses = []
            for item in requests:
                inner = self._one(item if isinstance(item, dict) else {})
                responses.append({"method": item.get("method") if isinstance(item, dict) else None,
                                  **inner})  # fmt: skip
            return {"error_code": 0, "result": {"responses": responses}}
        return self._one(request)

    def _one(self, request: dict[str, Any]) -> dict[str, Any]:
        handler = self._methods.get(str(request.get("method")))
        if handler is None:
            return {"error_code": tapo.UNKNOWN_METHOD}
        try:
            return {"error_code": 0, "result": handler(request.get("params"))}
        except (TypeError, ValueError, KeyError):
            return {"error_code": tapo.PARAMS_ERROR}

    def components(self) -> dict[str, Any]:
        names = {"device": 2, "energy_monitoring": 2 if self.emeter_data else 1}
        return {"component_list": [{"id": k, "ver_code": v} for k, v in names.items()]}

    def device_info(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "device_id": self.device_id,
            "fw_ver": "1.3.1 Build 240621 Rel.162048" if self.emeter_data else "1.2.3 Build 230425",
            "hw_ver": "1.0",
            "type": "SMART.TAPOPLUG",
            "model": self.model,
            "mac": self.mac,
            "hw_id": self.hw_id,
            "fw_id": "00000000000000000000000000000000",
            "oem_id": self.oem_id,
            "ip": "127.0.0.1",
            "time_diff": 0,
            "ssid": _b64("whitegoodsd"),
            "rssi": -50 - self.index % 20,
            "signal_level": 3,
            "auto_off_status": "off",
            "auto_off_remain_time": 0,
            "latitude": 0,
            "longitude": 0,
            "lang": "en_US",
            "avatar": "plug",
            "region": "Etc/UTC",
            "specs": "",
            "nickname": _b64(self.alias),
            "has_set_location_info": False,
            "device_on": self.relay_on,
            "on_time": int(now - self._relay_since) if self.relay_on else 0,
            "default_states": {"type": "last_states", "state": {}},
            "overheated": False,
            "power_protection_status": "normal",
            "overcurrent_status": "normal",
        }

    def _usage(self) -> dict[str, Any]:
        minutes = int((self._clock() - self._booted) / 60)
        wh = int(self.source.total_wh())
        return {
            "time_usage": {"today": minutes, "past7": minutes, "past30": minutes},
            "power_usage": {"today": wh, "past7": wh, "past30": wh},
            "saved_power": {"today": 0, "past7": 0, "past30": 0},
        }

    def _energy_usage(self) -> dict[str, Any]:
        minutes = int((self._clock() - self._booted) / 60)
        wh = int(self.source.total_wh())
        return {
            "today_runtime": minutes,
            "month_runtime": minutes,
            "today_energy": wh,
            "month_energy": wh,
            "local_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "electricity_charge": [0, 0, 0],
            "current_power": self.reading().power_mw,
        }

    def _time(self) -> dict[str, Any]:
        return {"time_diff": 0, "timestamp": int(time.time()), "region": "Etc/UTC"}

    def _set_device_info(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise TypeError("params")
        if "device_on" in params:
            on = bool(params["device_on"])
            if on != self.relay_on:
                self.relay_on = on
                self._relay_since = self._clock()
        if isinstance(params.get("nickname"), str):
            try:
                self.alias = base64.b64decode(params["nickname"]).decode()[:64]
            except ValueError:
                raise ValueError("nickname") from None
        return {}

    def summary(self, request: dict[str, Any]) -> str:
        method = str(request.get("method"))[:40]
        if method == "multipleRequest":
            params = request.get("params")
            items = params.get("requests", []) if isinstance(params, dict) else []
            names = [str(i.get("method"))[:40] for i in items if isinstance(i, dict)][:MAX_BATCH]
            return "multipleRequest(" + ", ".join(names) + ")"
        return method

"""Emulated Shelly plugs: a Gen1 Plug S and a Gen2 Plus Plug S, over HTTP.

:class:`ShellyDevice` is the plug without I/O: an HTTP request in, a reply
out, built with :mod:`whitegoodsd.protocols.shelly` as the real device
answers.  Both generations answer ``/shelly`` without a password.

* Gen1 (``shelly-gen1``, SHPLG-S): ``/status``, ``/meter/0``, ``/settings``;
  with a password, HTTP Basic (user ``admin`` unless ``username`` says
  otherwise) on everything but ``/shelly``.
* Gen2 (``shelly-gen2``, SNPL-00112EU): ``GET /rpc/METHOD?id=N`` and
  ``POST /rpc`` JSON-RPC frames for ``Shelly.GetDeviceInfo``,
  ``Shelly.GetStatus``, ``Shelly.GetConfig``, ``Sys.GetStatus``,
  ``Switch.GetStatus`` (or ``PM1.GetStatus`` with ``component="pm1"``);
  with a password, HTTP Digest (SHA-256, user ``admin``, realm = the device
  id) on everything but ``/shelly`` and ``Shelly.GetDeviceInfo``.  A nonce
  is good for an hour and for any number of requests with a rising ``nc``,
  as on firmware 2.0 and later.  The same frames go over a WebSocket at
  ``/rpc`` (when wsproto is installed), each carrying its own ``auth``
  object, as the device's inbound WebSocket takes them.

The replies report what the power source draws; voltage wanders a little
around 230 V as mains does.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.httpserver import HttpServer, Reply, Request, start_http
from whitegoodsd.emulator.serve import Family, PlugServer, Starter
from whitegoodsd.errors import ProtocolError, Reading
from whitegoodsd.protocols import digest, shelly

NONCE_LIFETIME = 3600.0
GEN1_FIRMWARE = "20230913-113421/v1.14.0-gcb84623"
GEN2_FIRMWARE = "20231107-164738/1.0.8-g8c7bb8d"


def _json(value: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(value, separators=(",", ":")).encode())


def _mac(index: int, gen: int) -> str:
    # 0xC45BBE and 0x80646F are Espressif prefixes real Shellys carry.
    prefix = "C45BBE" if gen == 1 else "80646F"
    return prefix + f"{(0xA10000 + index) % 0x1000000:06X}"


def meter_reading(source: PowerSource, clock: float, index: int, on: bool = True) -> Reading:
    power = max(0, source.power_mw()) if on else 0
    voltage = round(230_000 + math.sin(clock / 7.0 + index) * 1200)
    return Reading(power, voltage, round(power / voltage * 1000), source.total_wh())


class ShellyDevice:
    """A Shelly plug as HTTP requests and replies, no I/O."""

    def __init__(
        self,
        source: PowerSource,
        *,
        gen: int = 2,
        password: str | None = None,
        username: str = "admin",
        alias: str = "Emulated plug",
        index: int = 0,
        component: str = "switch",
        firmware: str | None = None,
        others: tuple[PowerSource, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if gen not in (1, 2):
            raise ValueError(f"no emulated Shelly of generation {gen}")
        self.source = source
        self.sources = (source, *others)  # one per output: a Pro 2PM has two
        self.gen = gen
        self.password = password
        self.username = username if gen == 1 else shelly.RPC_USER
        self.alias = alias
        self.index = index
        self.component = component
        self.clock = clock
        self.firmware = firmware or (GEN1_FIRMWARE if gen == 1 else GEN2_FIRMWARE)
        self.mac = _mac(index, gen)
        self.device_id = f"shellyplusplugs-{self.mac.lower()}"
        self.relay_on = True
        self.requests = 0
        self.challenges = 0  # 401s answered
        self.nonces: dict[str, tuple[float, int]] = {}  # nonce -> (issued, highest nc)

    def reading(self, channel: int = 0) -> Reading:
        return meter_reading(self.sources[channel], self.clock(), self.index, self.relay_on)

    def identity(self) -> dict[str, Any]:
        if self.gen == 1:
            return {
                "type": "SHPLG-S", "mac": self.mac, "auth": self.password is not None,
                "fw": self.firmware, "discoverable": True, "longid": 1,
                "num_outputs": 1, "num_meters": 1,
            }  # fmt: skip
        return {
            "name": self.alias, "id": self.device_id, "mac": self.mac, "slot": 0,
            "model": "SNPL-00112EU" if self.component == "switch" else "S3PM-001PCEU16",
            "gen": 2, "fw_id": self.firmware, "ver": "1.0.8",
            "app": "PlusPlugS" if self.component == "switch" else "Mini1PMG3",
            "auth_en": self.password is not None,
            "auth_domain": self.device_id if self.password is not None else None,
        }  # fmt: skip

    # -- requests -------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        self.requests += 1
        if request.path == shelly.IDENTIFY:
            return _json(self.identity())
        if self.gen == 1:
            return self._gen1(request)
        return self._gen2(request)

    def _gen1(self, request: Request) -> Reply:
        if self.password is not None and not self._basic_ok(request.header("authorization")):
            self.challenges += 1
            return Reply(
                401,
                b"401 Unauthorized",
                (("WWW-Authenticate", 'Basic realm="SHPLG-S"'),),
                content_type="text/plain",
            )
        now = int(time.time())
        meters = [shelly.gen1_meter(self.reading(n), now) for n in range(len(self.sources))]
        if request.path == "/status":
            return _json(self._gen1_status(meters))
        path, _, number = request.path.rpartition("/")
        if path == "/meter" and number.isdigit() and int(number) < len(meters):
            return _json(meters[int(number)])
        if request.path == "/settings":
            return _json(self._gen1_settings())
        return Reply(404, b"Not Found", content_type="text/plain")

    def _basic_ok(self, value: str | None) -> bool:
        if value is None or not value.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded, f"{self.username}:{self.password}")

    def _gen1_status(self, meters: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "wifi_sta": {"connected": True, "ssid": "emulated", "ip": "127.0.0.1", "rssi": -52},
            "cloud": {"enabled": False, "connected": False},
            "mqtt": {"connected": False},
            "time": time.strftime("%H:%M"), "unixtime": int(time.time()),
            "has_update": False, "mac": self.mac,
            "relays": [{"ison": self.relay_on, "has_timer": False, "timer_started": 0,
                        "timer_duration": 0, "timer_remaining": 0, "overpower": False,
                        "source": "http"}],
            "meters": meters,
            "temperature": 32.1, "overtemperature": False, "tmp": {"tC": 32.1, "is_valid": True},
            "update": {"status": "idle", "has_update": False, "new_version": GEN1_FIRMWARE,
                       "old_version": GEN1_FIRMWARE},
            "ram_total": 52064, "ram_free": 39020, "fs_size": 233681, "fs_free": 166664,
            "uptime": int(self.clock()),
        }  # fmt: skip

    def _gen1_settings(self) -> dict[str, Any]:
        return {
            "device": {"type": "SHPLG-S", "mac": self.mac,
                       "hostname": f"shellyplug-s-{self.mac[-6:]}",
                       "num_outputs": 1, "num_meters": 1},
            "name": self.alias, "fw": self.firmware, "login": {"enabled": self.password is not None,
            "unprotected": False, "username": self.username},
            "relays": [{"name": None, "ison": self.relay_on, "default_state": "on"}],
            "max_power": 2500, "coiot": {"enabled": True, "update_period": 30, "peer": ""},
        }  # fmt: skip

    # -- Gen2 RPC ----------------------------------------------------------------------

    def _gen2(self, request: Request) -> Reply:
        frame: dict[str, Any] | None = None
        if request.path == "/rpc" and request.method == "POST":
            try:
                frame = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                return _json({"code": -103, "message": "Invalid JSON frame"}, 400)
            if not isinstance(frame, dict) or not isinstance(frame.get("method"), str):
                return _json({"code": -103, "message": "Invalid JSON frame"}, 400)
            method = frame["method"]
            params = frame.get("params") or {}
        elif request.path.startswith("/rpc/"):
            method = request.path[5:]
            params = {
                k: _query_value(v[-1])
                for k, v in urllib.parse.parse_qs(request.query, keep_blank_values=True).items()
            }
        else:
            return Reply(404, b"Not Found", content_type="text/plain")
        if self.password is not None and method != "Shelly.GetDeviceInfo":
            refused = self.check_digest(request.method, request.header("authorization"))
            if refused is not None:
                return refused
        result, error = self.call(method, params if isinstance(params, dict) else {})
        if frame is not None:
            framed: dict[str, Any] = {"id": frame.get("id"), "src": self.device_id}
            framed.update({"error": error} if error else {"result": result})
            return _json(framed)
        if error is not None:
            return _json(error, 404 if error["code"] == 404 else 500)
        return _json(result)

    def call(self, method: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """An RPC call: (result, None) or (None, error)."""
        channel = params.get("id", 0)
        minute_ts = int(time.time()) // 60 * 60
        own = "Switch.GetStatus" if self.component == "switch" else "PM1.GetStatus"
        if method in ("Switch.GetStatus", "PM1.GetStatus"):
            if method != own:
                return None, {"code": 404, "message": f"No handler for {method}"}
            if not isinstance(channel, int) or not 0 <= channel < len(self.sources):
                return None, {"code": -105, "message": f"Argument 'id', value {channel} not found!"}
            return self._component(channel, minute_ts), None
        if method == "Shelly.GetDeviceInfo":
            return self.identity(), None
        if method == "Sys.GetStatus":
            return self._sys(), None
        if method == "Shelly.GetStatus":
            status: dict[str, Any] = {
                "sys": self._sys(), "cloud": {"connected": False},
                "mqtt": {"connected": False}, "ws": {"connected": False},
            }  # fmt: skip
            for n in range(len(self.sources)):
                status[f"{self.component}:{n}"] = self._component(n, minute_ts)
            return status, None
        if method == "Shelly.GetConfig":
            return self._config(), None
        if method == "Shelly.GetComponents":
            status_all, _ = self.call("Shelly.GetStatus", {})
            config = self._config()
            components = [
                {"key": key, "status": value, "config": config.get(key, {})}
                for key, value in status_all.items()
            ]
            return {"components": components, "cfg_rev": 1, "offset": 0,
                    "total": len(components)}, None  # fmt: skip
        return None, {"code": 404, "message": f"No handler for {method}"}

    def _component(self, channel: int, minute_ts: int) -> dict[str, Any]:
        reading = self.reading(channel)
        if self.component == "switch":
            return shelly.switch_status(channel, reading, output=self.relay_on, minute_ts=minute_ts)
        return shelly.pm1_status(channel, reading, minute_ts=minute_ts)

    def _sys(self) -> dict[str, Any]:
        return {
            "mac": self.mac, "restart_required": False, "time": time.strftime("%H:%M"),
            "unixtime": int(time.time()), "uptime": int(self.clock()), "ram_size": 260000,
            "ram_free": 120000, "fs_size": 458752, "fs_free": 131072, "cfg_rev": 1,
            "kvs_rev": 0, "schedule_rev": 0, "webhook_rev": 0,
            "available_updates": {}, "reset_reason": 1,
        }  # fmt: skip

    def _config(self) -> dict[str, Any]:
        key = f"{self.component}:0"
        return {
            "sys": {"device": {"name": self.alias, "mac": self.mac, "fw_id": GEN2_FIRMWARE,
                               "discoverable": True},
                    "location": {"tz": "UTC", "lat": None, "lon": None},
                    "debug": {"mqtt": {"enable": False}, "websocket": {"enable": False},
                              "udp": {"addr": None}},
                    "ui_data": {}, "rpc_udp": {"dst_addr": None, "listen_port": None},
                    "sntp": {"server": "time.google.com"}, "cfg_rev": 1},
            key: {"id": 0, "name": None, "initial_state": "on", "auto_on": False,
                  "auto_off": False, "power_limit": 2500, "voltage_limit": 280,
                  "current_limit": 12.0},
        }  # fmt: skip

    # -- WebSocket RPC -------------------------------------------------------------

    def websocket(self, request: Request) -> Callable[[str], str | None] | None:
        """The inbound WebSocket at /rpc (Gen2 only): a frame in, a frame out."""
        if self.gen == 1 or request.path != "/rpc":
            return None
        return self.rpc_text

    def rpc_text(self, text: str) -> str | None:
        """One JSON-RPC frame from a WebSocket, and the frame to answer."""
        self.requests += 1
        try:
            frame = json.loads(text)
        except ValueError:
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("method"), str):
            return None
        method = frame["method"]
        params = frame.get("params") or {}
        answer: dict[str, Any] = {"id": frame.get("id"), "src": self.device_id}
        if isinstance(frame.get("src"), str):
            answer["dst"] = frame["src"]
        needs_auth = self.password is not None and method != "Shelly.GetDeviceInfo"
        if needs_auth and not self._frame_auth_ok(frame.get("auth")):
            self.challenges += 1
            challenge = {
                "auth_type": "digest", "nonce": self.new_nonce(), "nc": 1,
                "realm": self.device_id, "algorithm": "SHA-256",
            }  # fmt: skip
            answer["error"] = {"code": 401, "message": json.dumps(challenge)}
            return json.dumps(answer)
        result, error = self.call(method, params if isinstance(params, dict) else {})
        answer.update({"error": error} if error else {"result": result})
        return json.dumps(answer)

    def _frame_auth_ok(self, auth: object) -> bool:
        """An RPC frame's ``auth``: digest over "dummy_method:dummy_uri", nc counting up."""
        if not isinstance(auth, dict):
            return False
        try:
            nonce, cnonce, response = (str(auth[k]) for k in ("nonce", "cnonce", "response"))
            count = int(str(auth["nc"]))
        except (KeyError, ValueError):
            return False
        known = self.nonces.get(nonce)
        if (
            known is None
            or self.clock() - known[0] > NONCE_LIFETIME
            or auth.get("realm") != self.device_id
            or auth.get("username") != shelly.RPC_USER
            or count <= known[1]
        ):
            return False
        expected = digest.response_hash(
            "SHA-256", shelly.RPC_USER, self.device_id, self.password or "",
            "dummy_method", "dummy_uri", nonce, str(auth["nc"]), cnonce, "auth",
        )  # fmt: skip
        if not hmac.compare_digest(expected, response.lower()):
            return False
        self.nonces[nonce] = (known[0], count)
        return True

    # -- digest -----------------------------------------------------------------------

    def new_nonce(self) -> str:
        now = self.clock()
        for nonce, (issued, _) in list(self.nonces.items()):
            if now - issued > NONCE_LIFETIME:
                del self.nonces[nonce]
        nonce = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
        self.nonces[nonce] = (now, 0)
        while len(self.nonces) > 64:
            del self.nonces[next(iter(self.nonces))]
        return nonce

    def unauthorized(self) -> Reply:
        self.challenges += 1
        header = digest.challenge_header(self.device_id, self.new_nonce(), "SHA-256")
        return Reply(
            401, b"401 Unauthorized", (("WWW-Authenticate", header),), content_type="text/plain"
        )

    def check_digest(self, method: str, value: str | None) -> Reply | None:
        """None when ``value`` carries valid credentials for a live nonce, else a 401."""
        if value is None:
            return self.unauthorized()
        try:
            credentials = digest.parse_credentials(value)
            count = credentials.count
        except ProtocolError:
            return self.unauthorized()
        known = self.nonces.get(credentials.nonce)
        if (
            known is None
            or self.clock() - known[0] > NONCE_LIFETIME
            or credentials.username != shelly.RPC_USER
            or credentials.realm != self.device_id
            or credentials.algorithm != "SHA-256"
            or credentials.qop != "auth"
            or count <= known[1]
        ):
            return self.unauthorized()
        expected = digest.expected_response(credentials, method, self.password or "")
        if not hmac.compare_digest(expected, credentials.response):
            return self.unauthorized()
        self.nonces[credentials.nonce] = (known[0], count)
        return None


def _query_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe(reply: Reply) -> str:
    """A reply as the emulator logs it: status and power."""
    if reply.status != 200:
        return str(reply.status)
    try:
        value = json.loads(reply.body)
    except ValueError:
        return "200"
    if isinstance(value, dict):
        for key in ("apower", "power"):
            if key in value:
                return f"{value[key]:g} W"
        if "result" in value and isinstance(value["result"], dict) and "apower" in value["result"]:
            return f"{value['result']['apower']:g} W"
    return "200"


async def start_shelly(
    host: str,
    port: int,
    source: PowerSource,
    *,
    gen: int = 2,
    password: str | None = None,
    username: str = "admin",
    alias: str = "Emulated plug",
    index: int = 0,
    component: str = "switch",
    firmware: str | None = None,
    others: tuple[PowerSource, ...] = (),
    verbose: bool = False,
) -> HttpServer:
    """Serve an emulated Shelly of generation ``gen`` (1 or 2) on ``host``:``port``."""
    device = ShellyDevice(
        source, gen=gen, password=password, username=username, alias=alias, index=index,
        component=component, firmware=firmware, others=others,
    )  # fmt: skip
    server = await start_http(
        host, port, device.handle, name=alias, verbose=verbose, describe=describe
    )
    server.device = device  # type: ignore[attr-defined]
    server.websocket = device.websocket
    return server


# -- whitegoodsd emulate -----------------------------------------------------------


def add_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """``--username`` and ``--password`` (shared with other families that take them)."""
    for flag, text in (
        ("--username", "user name the emulated plug asks for (Shelly Gen1, Tasmota; "
                       "default admin)"),
        ("--password", "password the emulated plug asks for (default: none)"),
    ):  # fmt: skip
        try:
            group.add_argument(flag, metavar=flag[2:].upper(), help=text)
        except argparse.ArgumentError:
            pass  # another family offers it already


def _starter(gen: int) -> Starter:
    async def start(
        host: str, port: int, source: PowerSource, alias: str, index: int, verbose: bool,
        args: argparse.Namespace | None,
    ) -> PlugServer:  # fmt: skip
        server: PlugServer = await start_shelly(
            host, port, source, gen=gen, alias=alias, index=index, verbose=verbose,
            password=getattr(args, "password", None),
            username=getattr(args, "username", None) or "admin",
        )  # fmt: skip
        return server

    return start


def ini_options(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    """The INI keys a daemon needs for these plugs."""
    options = []
    if getattr(args, "username", None) and getattr(args, "driver", "") == "shelly-gen1":
        options.append(("username", str(getattr(args, "username", ""))))
    if getattr(args, "password", None):
        options.append(("password", str(getattr(args, "password", ""))))
    return options


EMULATED = (
    Family("shelly-gen1", "shelly", shelly.PORT, "Shelly Plug S, Gen1 (/status, /meter/0)",
           _starter(1), ini_options),
    Family("shelly-gen2", "shelly", shelly.PORT,
           "Shelly Plus Plug S, Gen2 (RPC over HTTP, digest auth)", _starter(2), ini_options),
)  # fmt: skip

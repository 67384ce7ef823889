"""Prometheus output: a file for node_exporter's textfile collector.

After every pass the state of every appliance is rendered in the Prometheus
text exposition format (version 0.0.4, written here directly: a few lines per
metric need no library) and written atomically: a temporary file in the same
directory whose name does not end in ``.prom`` (node_exporter reads only
``*.prom``), flushed, synced, made 0644 (node_exporter runs as another user),
then renamed over the target.  A reader sees the old file or the new one,
never a mix.

A plug that did not answer has ``up 0`` and no measurement series: a frozen
last value would draw a flat line where the truth is "unknown".  Nothing is
ever written with a timestamp (node_exporter refuses the whole file) or as NaN.

A write that fails (directory missing or unwritable, disk full) logs one line
and leaves no temporary file behind; the next pass tries again.

Label values are escaped as the format says (backslash, double quote and
newline); values are Python's shortest repr of a float, which Prometheus'
parser reads back exactly.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from whitegoodsd import __version__, files
from whitegoodsd.status import ApplianceStatus

PREFIX = "whitegoodsd_appliance_"
MODE = 0o644
TEMP_SUFFIX = ".tmp"  # anything but ".prom"


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Spec:
    """One metric of the file: its name after ``whitegoodsd_appliance_``, type and help."""

    name: str
    counter: bool
    help: str


# In file order.  A counter's name gets "_total".
METRICS = (
    Spec("up", False, "1 if the last poll of the appliance's plug answered, else 0."),
    Spec("running", False, "1 while the appliance runs a cycle, else 0."),
    Spec("cycles", True, "Cycles finished since the daemon started (or since its state file)."),
    Spec("last_poll_timestamp_seconds", False,
         "When the plug was last polled, answered or not, in seconds since the epoch."),
    Spec("power_watts", False, "Power drawn, as the plug last read it."),
    Spec("voltage_volts", False, "Mains voltage, as the plug last read it."),
    Spec("current_amperes", False, "Current drawn, as the plug last read it."),
    Spec("energy_joules", True, "Energy used, from the plug's own counter."),
    Spec("last_cycle_duration_seconds", False, "How long the last finished cycle ran."),
    Spec("last_cycle_energy_joules", False, "Energy used by the last finished cycle."),
)  # fmt: skip


def values(status: ApplianceStatus) -> dict[str, float | None]:
    """The value of each metric for one appliance; None leaves the series out."""
    reading = status.reading if status.up else None
    cycle = status.last_cycle
    out: dict[str, float | None] = {
        "up": float(status.up),
        "running": float(status.running),
        "cycles": float(status.cycles),
        "last_poll_timestamp_seconds": status.last_poll,
    }
    if reading is not None:
        out["power_watts"] = reading.power_mw / 1000
        if reading.voltage_mv is not None:
            out["voltage_volts"] = reading.voltage_mv / 1000
        if reading.current_ma is not None:
            out["current_amperes"] = reading.current_ma / 1000
        if reading.total_wh is not None:
            out["energy_joules"] = reading.total_wh * 3600
    if cycle is not None:
        out["last_cycle_duration_seconds"] = cycle.duration
        if cycle.energy_wh is not None:
            out["last_cycle_energy_joules"] = cycle.energy_wh * 3600
    return out


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _headers(name: str, kind: str, text: str) -> str:
    return f"# HELP {name} {_help(text)}\n# TYPE {name} {kind}\n"


# The HELP and TYPE lines of each metric, made once.
_HEADERS = tuple(
    (
        spec.name,
        PREFIX + spec.name + ("_total" if spec.counter else ""),
        _headers(
            PREFIX + spec.name + ("_total" if spec.counter else ""),
            "counter" if spec.counter else "gauge",
            spec.help,
        ),
    )
    for spec in METRICS
)
_BUILD_INFO = (
    _headers("whitegoodsd_build_info", "gauge", "The whitegoodsd version that wrote this file.")
    + f'whitegoodsd_build_info{{version="{_label_value(__version__)}"}} 1.0\n'
)


def pieces(statuses: Iterable[ApplianceStatus]) -> list[str]:
    """The exposition text for one pass, in pieces: metrics in a stable order,
    appliances in the given order, metrics without a sample left out."""
    rows = [
        (f'{{appliance="{_label_value(s.name)}",driver="{_label_value(s.driver)}"}} ', values(s))
        for s in statuses
    ]
    out: list[str] = []
    for key, name, headers in _HEADERS:
        samples = [
            f"{name}{labels}{value!r}\n"
            for labels, row in rows
            if (value := _finite(row.get(key))) is not None
        ]
        if samples:
            out.append(headers)
            out.extend(samples)
    out.append(_BUILD_INFO)
    return out


def render(statuses: Sequence[ApplianceStatus]) -> bytes:
    """The exposition text for ``statuses``."""
    return "".join(pieces(statuses)).encode()


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers never see a partial file."""
    files.write_atomically(path, data, prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, mode=MODE)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class TextfileOutput:
    """Rewrites one ``.prom`` file after every pass."""

    def __init__(self, path: str, logger: logging.Logger | None = None) -> None:
        self.path = path
        self.log = logger or logging.getLogger("whitegoodsd")
        self.failing = False
        if not path.endswith(".prom"):
            self.log.warning(
                "textfile %s does not end in .prom: node_exporter will not read it.", path
            )
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Temporary files left by a daemon that was killed mid-write."""
        pattern = os.path.join(
            glob.escape(os.path.dirname(self.path)),
            glob.escape(_temp_prefix(self.path)) + "*" + TEMP_SUFFIX,
        )
        for stale in glob.glob(pattern):
            try:
                os.unlink(stale)
            except OSError:
                pass

    def write(self, statuses: Sequence[ApplianceStatus]) -> None:
        data = render(statuses)
        try:
            write_atomically(self.path, data)
        except OSError as exc:
            self.failing = True
            self.log.error("Cannot write textfile %s: %s", self.path, _reason(exc))
            return
        if self.failing:
            self.failing = False
            self.log.info("Textfile %s written again.", self.path)

    def close(self) -> None:
        """Nothing to release; the file stays for node_exporter to serve.

        node_exporter's ``node_textfile_mtime_seconds`` tells when it went stale.
        """

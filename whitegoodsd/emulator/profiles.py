"""Power profiles: what an emulated appliance draws over one cycle, and its replay.

A profile is a step function of time: rows of ``seconds,watts`` meaning
"from this second of the cycle on, the appliance draws this many watts",
until the next row.  The last row marks the end of the cycle; in a one-shot
replay its power holds for ever after (an appliance at rest), in a looping
replay the cycle starts over at that moment.  Before second 0 the appliance
rests too, at the last row's power.

Profiles come from a CSV file (``seconds,watts`` per line; a header line,
blank lines and ``#`` comments are allowed) or are built in:

* ``washer``: fill, heating near 2 kW, tumbling at 100-300 W broken by
  soak pauses of several minutes near 0 W, two rinses, spin at 400-600 W,
  then about 1 W of standby.
* ``dryer``: heater near 2.5 kW with the drum turning, the thermostat
  cycling towards the end, a cool-down, then anti-crease tumbling bursts of
  about 20 s every few minutes for an hour after the end.
* ``dishwasher``: pre-rinse, heating, circulation, long soak pauses near
  1 W, a hot final rinse and a long passive drying phase.

The built-in shapes are generated from a fixed seed, so every replay of a
name is the same.  :class:`Replay` plays a profile against a clock, faster
than real time with ``speed``, and integrates its energy for the plug's
``total`` counter.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from whitegoodsd.cycle import duration_text
from whitegoodsd.detector import Settings


class ProfileError(Exception):
    """A profile file that cannot be used; ``str()`` names FILE:LINE."""


@dataclass(frozen=True)
class Profile:
    """One appliance cycle as (seconds, watts) steps, seconds ascending from 0."""

    name: str
    seconds: tuple[float, ...]
    watts: tuple[float, ...]
    # The energy used up to each row, for total_wh without a scan.
    _energy: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.seconds or len(self.seconds) != len(self.watts):
            raise ValueError("a profile needs as many times as powers, at least one")
        if self.seconds[0] != 0:
            raise ValueError("a profile starts at second 0")
        if any(b < a for a, b in zip(self.seconds, self.seconds[1:], strict=False)):
            raise ValueError("profile times must not decrease")
        cumulative = [0.0]
        for i in range(1, len(self.seconds)):
            step = self.seconds[i] - self.seconds[i - 1]
            cumulative.append(cumulative[-1] + self.watts[i - 1] * step / 3600)
        object.__setattr__(self, "_energy", tuple(cumulative))

    @property
    def duration(self) -> float:
        """Seconds from the start of the cycle to its last row."""
        return self.seconds[-1]

    @property
    def cycle_wh(self) -> float:
        """Energy used by one cycle, in Wh."""
        return self._energy[-1]

    @property
    def peak_watts(self) -> float:
        return max(self.watts)

    def _index(self, at: float) -> int:
        return max(0, bisect.bisect_right(self.seconds, at) - 1)

    def watts_at(self, at: float) -> float:
        """Power ``at`` seconds into the cycle (at rest, the last row's, outside it)."""
        if at < 0:
            return self.watts[-1]
        return self.watts[self._index(at)]

    def energy_wh(self, at: float) -> float:
        """Energy used from the start of the cycle to ``at`` seconds in (negative before)."""
        if at <= 0:
            return self.watts[-1] * at / 3600
        i = self._index(at)
        return self._energy[i] + self.watts[i] * (at - self.seconds[i]) / 3600

    def programme_end(self, threshold_w: float, at_least: float = 60) -> float:
        """When the cycle proper ends: the end of its last stretch at or above
        ``threshold_w`` that lasts ``at_least`` seconds.  Later short bursts,
        such as a dryer's anti-crease tumbling, do not count."""
        end = 0.0
        start: float | None = None
        for i in range(len(self.watts) - 1):  # the last row is the appliance at rest
            high = self.watts[i] >= threshold_w
            if high and start is None:
                start = self.seconds[i]
            elif not high and start is not None:
                if self.seconds[i] - start >= at_least:
                    end = self.seconds[i]
                start = None
        if start is not None and self.duration - start >= at_least:
            end = self.duration
        return end

    def to_csv(self) -> str:
        """The profile as a CSV file that :func:`load_csv` reads back."""
        rows = [f"# {self.name}: {describe(self)}", "seconds,watts"]
        rows += [f"{s:.10g},{w:.10g}" for s, w in zip(self.seconds, self.watts, strict=True)]
        return "\n".join(rows) + "\n"


def describe(profile: Profile) -> str:
    """A one-line summary: length, energy and peak."""
    return (
        f"{_clock(profile.duration)} long, {profile.cycle_wh / 1000:,.3f} kWh, "
        f"peak {profile.peak_watts:,.0f} W"
    )


_clock = duration_text


# -- CSV files ------------------------------------------------------------------


def load_csv(path: str | Path) -> Profile:
    """Read a ``seconds,watts`` file; ProfileError naming FILE:LINE if it is bad."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    return parse_csv(text.splitlines(), str(path), name=path.stem)


def parse_csv(lines: Iterable[str], where: str = "<profile>", name: str = "csv") -> Profile:
    """Parse ``seconds,watts`` rows (see the module docstring)."""
    seconds: list[float] = []
    watts: list[float] = []
    rows = (line for line in lines)
    for number, row in enumerate(csv.reader(rows), start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue

        def fail(message: str, line: int = number) -> ProfileError:
            return ProfileError(f"{where}:{line}: {message}")

        if len(cells) != 2:
            raise fail(f"expected 'seconds,watts', got {','.join(cells)!r:.60}")
        try:
            at, power = float(cells[0]), float(cells[1])
        except ValueError:
            if not seconds:
                continue  # a header line
            raise fail(f"expected two numbers, got {','.join(cells)!r:.60}") from None
        if not (math.isfinite(at) and math.isfinite(power)):
            raise fail("numbers must be finite")
        if at < 0:
            raise fail(f"seconds must not be negative, got {cells[0]}")
        if power < 0:
            raise fail(f"watts must not be negative, got {cells[1]}")
        if seconds and at < seconds[-1]:
            raise fail(f"seconds go backwards ({cells[0]} after {seconds[-1]:g})")
        seconds.append(at)
        watts.append(power)
    if not seconds:
        raise ProfileError(f"{where}: no 'seconds,watts' rows")
    if seconds[0] > 0:
        # Before the first row the appliance draws what the first row says.
        seconds.insert(0, 0.0)
        watts.insert(0, watts[0])
    return Profile(name, tuple(seconds), tuple(watts))


# -- built-in profiles ------------------------------------------------------------


class _Shape:
    """Builds a profile phase by phase, with seeded variation."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(seed)
        self.now = 0.0
        self.seconds: list[float] = []
        self.watts: list[float] = []

    def _row(self, seconds: float, watts: float) -> None:
        if self.watts and self.seconds[-1] == self.now:
            self.watts[-1] = round(watts, 1)
        else:
            self.seconds.append(self.now)
            self.watts.append(round(watts, 1))
        self.now = round(self.now + seconds, 1)

    def level(self, seconds: float, low: float, high: float, step: float = 10) -> None:
        """A steady phase whose power wanders between ``low`` and ``high``."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            self._row(min(step, end - self.now), self.rng.uniform(low, high))

    def ramp(self, seconds: float, start: float, stop: float, step: float = 10) -> None:
        """Power rising (or falling) from ``start`` to ``stop``, with a little noise."""
        end, begin = self.now + seconds, self.now
        while self.now < end - 1e-9:
            share = (self.now - begin) / seconds
            base = start + (stop - start) * share
            self._row(min(step, end - self.now), base * self.rng.uniform(0.97, 1.03))

    def tumble(
        self,
        seconds: float,
        low: float,
        high: float,
        rest: tuple[float, float] = (2.0, 3.0),
        base: float = 0.0,
    ) -> None:
        """A drum turning one way, resting, turning back: ``base`` is added throughout."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            turn = min(round(self.rng.uniform(10, 20), 1), end - self.now)
            self._row(turn, base + self.rng.uniform(low, high))
            if self.now < end - 1e-9:
                pause = min(round(self.rng.uniform(2, 4), 1), end - self.now)
                self._row(pause, base + self.rng.uniform(*rest))

    def end(self, watts: float) -> Profile:
        """Close the cycle: ``watts`` is what the appliance draws at rest afterwards."""
        self._row(0, watts)
        return Profile(self.name, tuple(self.seconds), tuple(self.watts))


def _washer() -> Profile:
    s = _Shape("washer", seed=1)
    s.level(120, 8, 12)  # water valve and electronics
    s.tumble(18 * 60, 100, 250, rest=(0, 0), base=2000)  # heater with the drum turning
    s.tumble(60, 100, 250)  # thermostat off a moment
    s.tumble(4 * 60, 100, 250, rest=(0, 0), base=2000)
    s.tumble(8 * 60, 100, 300)  # main wash
    s.level(4 * 60, 1.5, 3, step=30)  # soak
    s.tumble(8 * 60, 100, 300)
    s.level(5 * 60, 1.5, 3, step=30)  # soak
    s.tumble(8 * 60, 100, 300)
    s.level(90, 30, 40)  # drain pump
    s.ramp(3 * 60, 300, 500)  # intermediate spin
    for soak in (3 * 60, 0):  # two rinses
        s.level(90, 8, 12)
        s.tumble(6 * 60, 100, 250)
        if soak:
            s.level(soak, 1.5, 3, step=30)
        s.level(60, 30, 40)
        s.ramp(2 * 60, 350, 450)
    s.tumble(60, 100, 200)  # loosening before the final spin
    s.ramp(3 * 60, 400, 600)
    s.level(7 * 60, 550, 600)
    s.ramp(60, 300, 60)  # the drum slowing down
    s.level(20 * 60, 0.9, 1.1, step=60)  # end of programme, display on
    return s.end(1.0)


def _dryer() -> Profile:
    s = _Shape("dryer", seed=2)
    s.level(60, 180, 250)  # drum and fan
    s.level(40 * 60, 2550, 2750)  # heater with the drum turning
    for _ in range(6):  # the thermostat cycling as the laundry dries
        s.level(3 * 60, 2550, 2750)
        s.level(90, 180, 250)
    s.level(10 * 60, 180, 250)  # cool-down, heater off
    # Anti-crease: short tumbling bursts for an hour after the end.
    anti_crease_end = s.now + 60 * 60
    while s.now < anti_crease_end:
        s.level(s.rng.randint(250, 320), 0.9, 1.3, step=60)
        s.level(s.rng.randint(15, 25), 180, 250, step=30)
    s.level(10 * 60, 0.4, 0.6, step=60)
    return s.end(0.5)


def _dishwasher() -> Profile:
    s = _Shape("dishwasher", seed=3)
    s.level(60, 5, 8)  # water valve
    s.level(4 * 60, 35, 45)  # pre-rinse: circulation pump
    s.level(60, 25, 35)  # drain
    s.level(60, 5, 8)
    s.level(20 * 60, 2000, 2150)  # main wash: heater and pump
    s.level(20 * 60, 35, 45)
    s.level(20 * 60, 1.0, 2.0, step=60)  # soak
    s.level(10 * 60, 35, 45)
    s.level(60, 25, 35)
    s.level(60, 5, 8)  # interim rinse
    s.level(6 * 60, 35, 45)
    s.level(60, 25, 35)
    s.level(10 * 60, 1.0, 2.0, step=60)  # pause
    s.level(60, 5, 8)  # final rinse, hot for the drying
    s.level(14 * 60, 2000, 2150)
    s.level(6 * 60, 35, 45)
    s.level(60, 25, 35)
    s.level(25 * 60, 1.2, 2.0, step=60)  # passive drying
    s.level(15 * 60, 0.4, 0.6, step=60)
    return s.end(0.5)


BUILTIN: dict[str, Callable[[], Profile]] = {
    "washer": _washer,
    "dryer": _dryer,
    "dishwasher": _dishwasher,
}

# Detection settings in readings that see each built-in profile as one cycle,
# polled every 60 s while active (900 s when idle).  The demo and the
# emulator tests use them because counts of readings speed up with the polls
# of a fast replay; the kind presets of whitegoodsd.ini.example are seconds.
# The washer's finish count outlasts its soak pauses, the dishwasher's its
# long pauses; the dryer's anti-crease bursts are too short for two samples.
SETTINGS: dict[str, Settings] = {
    "washer": Settings(4000, 3, 4000, 12, max_plausible_mw=4_000_000),
    "dryer": Settings(10000, 2, 10000, 2, max_plausible_mw=4_000_000),
    "dishwasher": Settings(4000, 3, 4000, 30, max_plausible_mw=4_000_000),
}

_cache: dict[str, Profile] = {}


def builtin(name: str) -> Profile:
    """A built-in profile by name (case-insensitive); KeyError if unknown."""
    key = name.lower()
    if key not in _cache:
        _cache[key] = BUILTIN[key]()
    return _cache[key]


def resolve(spec: str) -> Profile:
    """A built-in name or a CSV file path; ProfileError if neither."""
    if spec.lower() in BUILTIN:
        return builtin(spec)
    if not Path(spec).exists():
        names = ", ".join(BUILTIN)
        raise ProfileError(f"{spec}: no such file, and not a built-in profile ({names})")
    return load_csv(spec)


# -- replay ---------------------------------------------------------------------


class Replay:
    """A profile played against a clock: a :class:`~whitegoodsd.emulator.PowerSource`.

    ``speed`` compresses time (600 plays ten hours in a minute).  One-shot by
    default: after the last row its power holds.  With ``loop`` the cycle
    starts over.  ``offset`` starts the replay that many seconds into the
    profile; a negative one rests that long before the cycle starts.  Energy
    counts from the start of the replay plus ``total_wh``.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        speed: float = 1.0,
        loop: bool = False,
        offset: float = 0.0,
        total_wh: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self.profile = profile
        self.speed = speed
        self.loop = loop and profile.duration > 0
        self.offset = offset
        self.initial_wh = total_wh
        self._clock = clock
        self._started = clock()

    def restart(self) -> None:
        """Start the cycle over from ``offset``, now (the energy counter keeps counting)."""
        self.initial_wh = self.total_wh()
        self._started = self._clock()

    def elapsed(self) -> float:
        """Seconds of profile time since the replay started, from second 0."""
        return self.offset + (self._clock() - self._started) * self.speed

    def position(self) -> float:
        """Seconds into the current cycle (negative before it starts)."""
        at = self.elapsed()
        if self.loop and at > 0:
            return at % self.profile.duration
        return at

    @property
    def finished(self) -> bool:
        """Whether a one-shot replay has passed the end of its cycle."""
        return not self.loop and self.elapsed() >= self.profile.duration

    def power_mw(self) -> int:
        return round(self.profile.watts_at(self.position()) * 1000)

    def total_wh(self) -> float:
        return self.initial_wh + self._used_wh(self.elapsed()) - self._used_wh(self.offset)

    def _used_wh(self, at: float) -> float:
        profile = self.profile
        if not self.loop or at <= 0:
            return profile.energy_wh(at)
        cycles, into = divmod(at, profile.duration)
        return cycles * profile.cycle_wh + profile.energy_wh(into)

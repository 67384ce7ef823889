"""The appliance state machine: samples in, events out.

Theory of operation
-------------------
Everything that decides whether an appliance is RUNNING or FINISHED lives in
this file (the figures a cycle carries are added up in ``cycle.py``).  It
reads no clock, does no I/O and logs nothing: the monitor hands it samples (a
power reading, the time it was taken, the plug's energy counter) and polls
that gave none, and it answers with the events they cause.

The original daemon kept, per appliance, a ring of the last ``minsamples``
results of ``power_mw >= threshold_running_mw``, initially all false, and a
state (Stopped or Running).  After each successful poll it pushed the result,
then:

* Stopped and every entry true  -> Running, log ``NAME is RUNNING.``
* Running and every entry false -> Stopped, log ``NAME is FINISHED.``

A ring with mixed entries keeps the state: that is the hysteresis.  The ring
is never reset.  A failed poll records nothing, so failures neither break nor
extend a streak.

This port keeps two runs instead of a ring: how many samples in a row were
*high* (``>= threshold_running_mw``) and how many were *low*
(``< threshold_finished_mw``), and for how long each run has lasted.  "The
last N entries are all true" is "the high run is at least N long", so with
the defaults (finished values equal to the running ones, no delays) this is
the original ring exactly; a property test checks it against a model of the
original.

What each input does:

===================  ========  =======  ======================  ====================
input                high run  low run  time of the runs        cycle figures
===================  ========  =======  ======================  ====================
high sample          +1        0        high += since previous  add (begin if none)
low sample           0         +1       low += since previous   add; Stopped: forget
sample in between    0         0        both 0                  add; Stopped: forget
(the dead band)
missed poll          kept      kept     next step adds nothing  kept
implausible sample   kept      kept     next step adds nothing  kept
===================  ========  =======  ======================  ====================

"Since previous" is the time from the previous sample, and only when no poll
was missed between the two: a plug that went silent for an hour has not been
seen below the threshold for that hour, so an outage can neither finish a
cycle nor bring its end closer; when the plug answers again the runs go on
from where they were.  An implausible sample (above ``max_plausible_mw``, the
one-off spikes HS110s are known for) counts as a missed poll.

Transitions, checked after every sample (``_TRANSITIONS``):

=======  ==========================================  =======  ========
state    when                                        becomes  event
=======  ==========================================  =======  ========
Stopped  high run >= minsamples and has lasted       Running  RUNNING
         >= start_delay seconds
Running  low run >= minsamples_finished and has      Stopped  FINISHED
         lasted >= finish_delay seconds
=======  ==========================================  =======  ========

A run "lasts" from its first sample to its latest, so a delay of 0 asks
nothing beyond the count.  A new detector starts as the original's ring did,
as if after ``window`` low samples.  A detector resumed in the Running state
(reload, restart) starts as if after ``window`` high samples: it needs
``minsamples_finished`` fresh low samples, and ``finish_delay`` seconds of
them, before it finishes.

Two rules for real machines (both off by default, so the above is exact
without them; the ``kind`` presets turn them on):

* **Blips** (``max_dip`` and ``max_burst`` seconds, 0: off).  A *dip* is a
  stretch of samples below the running threshold inside a high run that is
  building up to RUNNING; a *burst* is a stretch at or above the finished
  threshold inside a low run counting down to FINISHED.  One that lasts
  less than ``max_dip`` (``max_burst``) seconds, from its first sample to
  its last, is a blip: it does not break the run, whose time goes on
  through it, and the run goes on when the blip ends.  One that lasts
  longer breaks the run as any other sample would have, from its first
  sample.  A run is only complete on a sample of its own side.  A single
  sample lasts 0 s, so at a long poll interval every dip or burst seen in
  one poll is a blip.  This is how a washer's tumbling pauses do not delay
  RUNNING, and a dryer's short anti-crease bursts or a dishwasher's pump
  blips do not delay FINISHED, at any poll interval.
* **The energy counter** (``energy_counter``).  A sample counts as at
  least the average power that the plug's energy counter proves since the
  previous sample, counting the counter's last digit (1 Wh) as uncertain:
  ``(total_wh - previous total_wh - 1) * 3600 / seconds`` watts, when that
  is more than the reading.  A poll that lands, time after time, on the
  pauses of a drum turning in a steady rhythm reads a few watts; the
  counter shows the turning in between, so the run is not taken for rest
  (nor the rest for a start).  Without a counter, after a missed poll, or
  when the counter went backwards or jumped beyond ``max_plausible_mw``, the
  rule says nothing.  At short intervals one watt-hour is a lot of power, so
  the rule only speaks at long ones.

Inputs with these rules (a sample is high or low by the larger of its
reading and what the counter proves; a *blip* sample is one on the other side
of a run, in a stretch that has not yet lasted ``max_dip`` or ``max_burst``):

==========================  ====================  ====================
input                       high run              low run
==========================  ====================  ====================
high sample                 +1, time +step        blip, or 0
low sample                  blip, or 0            +1, time +step
blip sample                 count kept, time +step (the run waits)
blip lasting the maximum    0, from the blip's first sample
==========================  ====================  ====================

The cycle's statistics begin with the first sample of the high run that
started it, and go on through every sample until FINISHED, which carries
them as a ``CycleRecord``.  ``Detector.cycle`` (the open cycle, or while
Stopped the high run that may start one) can be handed to a new detector,
``Detector(settings, state, cycle)``, which is how a cycle survives a reload
or a restart: the runs start afresh, as above, but the figures go on, so a
cycle's start stays its first high sample, and its end the first sample of
its last low run, across a restart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from whitegoodsd.cycle import OpenCycle
from whitegoodsd.status import CycleRecord


class State(enum.Enum):
    """Whether an appliance is between a RUNNING and a FINISHED event."""

    STOPPED = "Stopped"
    RUNNING = "Running"


class EventKind(enum.Enum):
    """What a sample caused."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"


@dataclass(frozen=True)
class Settings:
    """The detection parameters of one appliance, validated by the config.

    The defaults of the later fields are the original daemon's behaviour: no
    delays, no spike filter.
    """

    threshold_running_mw: int
    minsamples: int
    threshold_finished_mw: int
    minsamples_finished: int
    start_delay: float = 0.0  # seconds the high run must last
    finish_delay: float = 0.0  # seconds the low run must last
    max_plausible_mw: int | None = None  # readings above it are spikes; None: no filter
    max_dip: float = 0.0  # seconds: shorter dips keep a high run (before RUNNING); 0: off
    max_burst: float = 0.0  # seconds: shorter bursts keep a low run (before FINISHED); 0: off
    energy_counter: bool = False  # the counter's average power can make a low sample not low

    @classmethod
    def original(cls, threshold_running_mw: int, minsamples: int) -> Settings:
        """Settings with the original daemon's single threshold and count."""
        return cls(threshold_running_mw, minsamples, threshold_running_mw, minsamples)

    @property
    def window(self) -> int:
        """How long a run the detector ever needs to see."""
        return max(self.minsamples, self.minsamples_finished)


@dataclass(frozen=True)
class Sample:
    """One successful reading of an appliance's plug."""

    power_mw: int
    at: float  # seconds, from whatever clock the caller uses
    total_wh: float | None = None  # the plug's energy counter, if it has one


@dataclass(frozen=True)
class Event:
    """A state change, with the time of the sample that caused it."""

    kind: EventKind
    at: float
    cycle: CycleRecord | None = None  # FINISHED: what the cycle took


@dataclass(frozen=True)
class Run:
    """A run of samples on one side of a threshold."""

    count: int = 0  # samples on its side
    lasted: float = 0.0  # seconds from its first sample to its latest
    blip_since: float | None = None  # the first sample of a blip in progress

    def advance(self, member: bool, step: float, at: float, max_blip: float) -> Run:
        """The run after one more sample (``member``: on the run's side)."""
        if member:
            return Run(self.count + 1, self.lasted + step) if self.count else Run(1)
        if self.count and max_blip > 0:
            since = at if self.blip_since is None else self.blip_since
            if at - since < max_blip:
                return Run(self.count, self.lasted + step, since)
        return Run()


# Energy counters count in whole watt-hours: their last digit is uncertain.
COUNTER_RESOLUTION_WH: Final = 1.0

# state -> (the state it becomes, the event it logs); when is in _due().
_TRANSITIONS: Final = {
    State.STOPPED: (State.RUNNING, EventKind.RUNNING),
    State.RUNNING: (State.STOPPED, EventKind.FINISHED),
}


class Detector:
    """The state machine of one appliance."""

    def __init__(
        self,
        settings: Settings,
        state: State = State.STOPPED,
        cycle: OpenCycle | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        resumed = state is State.RUNNING
        # Runs as the original's ring would have them: all low at start, all
        # high for a detector resumed while running.
        self._high = Run(settings.window) if resumed else Run()
        self._low = Run() if resumed else Run(settings.window)
        self._last_at: float | None = None  # previous sample, None after a miss
        self._last_total: float | None = None  # its energy counter
        self._cycle = cycle if resumed else None  # the open cycle, while Running
        self._pending = None if resumed else cycle  # a high run that may start one

    @property
    def cycle(self) -> OpenCycle | None:
        """The statistics so far: of the open cycle while Running, and while
        Stopped of the high run that may start one (None if there is none)."""
        return self._cycle if self.state is State.RUNNING else self._pending

    @property
    def starting(self) -> bool:
        """Whether a run of high samples, which may start a cycle, is under way.

        Without blips or the counter this is "the latest sample was high".
        """
        return self.state is State.STOPPED and self._high.count > 0

    def reconfigured(self, settings: Settings) -> Detector:
        """The detector to use after a reload: this one if nothing changed.

        When the thresholds, counts or delays change, the runs seen so far no
        longer mean the same thing, so the successor starts afresh but keeps
        the state and the open cycle: a running appliance stays running until
        minsamples_finished low samples under the new settings.
        """
        if settings == self.settings:
            return self
        return Detector(settings, self.state, self.cycle)

    def is_high(self, power_mw: int) -> bool:
        """Whether a reading counts towards starting a cycle."""
        return power_mw >= self.settings.threshold_running_mw

    def is_plausible(self, power_mw: int) -> bool:
        """Whether a reading is believable (not above ``max_plausible_mw``)."""
        limit = self.settings.max_plausible_mw
        return limit is None or power_mw <= limit

    def missed(self) -> None:
        """Record a poll that gave no sample: nothing changes but the timing."""
        self._last_at = None
        self._last_total = None

    def sample(self, sample: Sample) -> Event | None:
        """Record a reading; return the event it causes, if any.

        An implausible reading is recorded as a missed poll.
        """
        if not self.is_plausible(sample.power_mw):
            self.missed()
            return None
        s = self.settings
        power = max(sample.power_mw, self._counter_mw(sample))
        high = power >= s.threshold_running_mw
        low = power < s.threshold_finished_mw
        step = 0.0 if self._last_at is None else max(0.0, sample.at - self._last_at)
        self._last_at, self._last_total = sample.at, sample.total_wh
        self._high = self._high.advance(high, step, sample.at, s.max_dip)
        self._low = self._low.advance(low, step, sample.at, s.max_burst)
        self._count(sample, high=high)
        if not self._due():
            return None
        self.state, kind = _TRANSITIONS[self.state]
        # The other run is over (a no-op without blips: the sample broke it).
        if kind is EventKind.RUNNING:
            self._low = Run()
        else:
            self._high = Run()
        if kind is EventKind.RUNNING:
            self._cycle, self._pending = self._pending, None
            return Event(kind, sample.at)
        record = self._cycle.close() if self._cycle is not None else None
        self._cycle = None
        return Event(kind, sample.at, record)

    def _due(self) -> bool:
        """Whether the latest sample completes the current state's transition."""
        s = self.settings
        if self.state is State.STOPPED:
            run, count, delay = self._high, s.minsamples, s.start_delay
        else:
            run, count, delay = self._low, s.minsamples_finished, s.finish_delay
        return run.blip_since is None and run.count >= count and run.lasted >= delay

    def _counter_mw(self, sample: Sample) -> int:
        """The least average power the energy counter proves since the last sample (0: none)."""
        if not self.settings.energy_counter or self._last_at is None:
            return 0
        if sample.total_wh is None or self._last_total is None:
            return 0
        seconds = sample.at - self._last_at
        used_wh = sample.total_wh - self._last_total - COUNTER_RESOLUTION_WH
        if seconds <= 0 or used_wh <= 0:
            return 0
        average = round(used_wh * 3600 * 1000 / seconds)
        return average if self.is_plausible(average) else 0

    def _count(self, sample: Sample, *, high: bool) -> None:
        """Add the sample to the open cycle, or to the high run that may start one."""
        power, at, total = sample.power_mw, sample.at, sample.total_wh
        low = self._low.count > 0  # in a low run, blips included: where the cycle may end
        if self.state is State.RUNNING:
            if self._cycle is None:  # resumed without statistics: count from here
                self._cycle = OpenCycle.begin(power, at, total)
            else:
                self._cycle = self._cycle.add(power, at, total, low=low)
        elif not self._high.count:
            self._pending = None
        elif self._pending is None:
            if high:
                self._pending = OpenCycle.begin(power, at, total)
        else:
            self._pending = self._pending.add(power, at, total, low=low)

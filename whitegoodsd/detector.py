"""The appliance state machine: samples in, events out.

Theory of operation
-------------------
Everything that decides whether an appliance is RUNNING or FINISHED lives in
this file.  It reads no clock, does no I/O and logs nothing: the monitor hands
it samples (a power reading and the time it was taken) and it answers with the
events they cause.

The original daemon kept, per appliance, a ring of the last ``minsamples``
results of ``power_mw >= threshold_running_mw``, initially all false, and a
state (Stopped or Running).  After each successful poll it pushed the result,
then:

* Stopped and every entry true  -> Running, log ``NAME is RUNNING.``
* Running and every entry false -> Stopped, log ``NAME is FINISHED.``

A ring with mixed entries keeps the state: that is the hysteresis.  The ring
is never reset.  A failed poll records nothing, so failures neither break nor
extend a streak.

This port generalises the ring to two windows over the same sample history:
start when the last ``minsamples`` samples were all ``>= threshold_running_mw``,
finish when the last ``minsamples_finished`` were all ``< threshold_finished_mw``.
With the defaults (finished values equal to running values) the two windows
are the original ring exactly.  History slots not yet filled count as the
original's initial "false" entries: not high, and low.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass


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
    """The detection parameters of one appliance, validated by the config."""

    threshold_running_mw: int
    minsamples: int
    threshold_finished_mw: int
    minsamples_finished: int

    @classmethod
    def original(cls, threshold_running_mw: int, minsamples: int) -> Settings:
        """Settings with the original daemon's single threshold and count."""
        return cls(threshold_running_mw, minsamples, threshold_running_mw, minsamples)

    @property
    def window(self) -> int:
        """How many samples the detector must remember."""
        return max(self.minsamples, self.minsamples_finished)


@dataclass(frozen=True)
class Sample:
    """One successful reading of an appliance's plug."""

    power_mw: int
    at: float  # seconds, from whatever clock the caller uses


@dataclass(frozen=True)
class Event:
    """A state change, with the sample that caused it."""

    kind: EventKind
    at: float


@dataclass(frozen=True)
class _Slot:
    high: bool  # at or above the running threshold
    low: bool  # below the finished threshold


_EMPTY = _Slot(high=False, low=True)  # the original's initial "false" entry
_BUSY = _Slot(high=True, low=False)  # what a detector resumed while running starts with


class Detector:
    """The state machine of one appliance."""

    def __init__(self, settings: Settings, state: State = State.STOPPED) -> None:
        self.settings = settings
        self.state = state
        # A detector resumed in the Running state (after a reload or restart)
        # must see minsamples_finished low samples before it finishes.
        pad = _BUSY if state is State.RUNNING else _EMPTY
        self._history: deque[_Slot] = deque([pad] * settings.window, maxlen=settings.window)

    def reconfigured(self, settings: Settings) -> Detector:
        """The detector to use after a reload: this one if nothing changed.

        When the thresholds or counts change, the remembered results no longer
        mean the same thing, so the successor starts afresh but keeps the
        state: a running appliance stays running until minsamples_finished
        low samples under the new settings.
        """
        if settings == self.settings:
            return self
        return Detector(settings, self.state)

    def is_high(self, power_mw: int) -> bool:
        """Whether a reading counts towards starting a cycle."""
        return power_mw >= self.settings.threshold_running_mw

    def sample(self, sample: Sample) -> Event | None:
        """Record a successful reading; return the event it causes, if any."""
        s = self.settings
        self._history.append(
            _Slot(
                high=sample.power_mw >= s.threshold_running_mw,
                low=sample.power_mw < s.threshold_finished_mw,
            )
        )
        if self.state is State.STOPPED and self._last_all(s.minsamples, high=True):
            self.state = State.RUNNING
            return Event(EventKind.RUNNING, sample.at)
        if self.state is State.RUNNING and self._last_all(s.minsamples_finished, high=False):
            self.state = State.STOPPED
            return Event(EventKind.FINISHED, sample.at)
        return None

    def _last_all(self, count: int, *, high: bool) -> bool:
        recent = list(self._history)[-count:]
        if high:
            return all(slot.high for slot in recent)
        return all(slot.low for slot in recent)

"""One appliance between passes: readings and failures in, notices out.

Rules
-----
* Pure: no clock, no I/O, no logging.  The monitor hands it each poll's
  outcome with the time it happened, on the wall clock (``at``, for what
  people read) and on the monotonic clock (``elapsed``, for every interval
  the detector measures, so that no clock step moves a delay, a duration or
  an integrated energy), and logs the notices it returns.
* A reading above ``max_plausible_mw`` is DISCARDED: the detector records it
  as a missed poll (detector.py), and the plug counts as answering.
* ``unreachable_after`` failed polls in a row give UNREACHABLE once; the
  first answer after that gives REACHABLE.  Each failed poll is a FAILED
  notice, ``quiet`` once the plug is known to be unreachable (the monitor
  logs those at debug level).
* A pushed plug's reading goes to the detector when it arrives
  (``sampled``); in a pass in which it sent nothing, ``held`` feeds the
  detector its last value again at the pass's time, as a poll would have
  read it.  A pushed plug is only ever failed by its hub (broker down, or
  silent past what its format promises).

=================  ==========  ===========  ===================================
outcome            failures    reachable    notices
=================  ==========  ===========  ===================================
reading            0           yes          REACHABLE if it was not; DISCARDED
                                            if implausible; else RUNNING or
                                            FINISHED if the detector says so
failure            +1          no at N      FAILED (quiet when unreachable);
                                            UNREACHABLE at unreachable_after
=================  ==========  ===========  ===================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from whitegoodsd import notices
from whitegoodsd.detector import Detector, EventKind, Sample, State
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.notices import Notice
from whitegoodsd.status import ApplianceStatus, CycleRecord


@dataclass
class Tracker:
    """The monitor's memory of one appliance."""

    name: str
    detector: Detector
    unreachable_after: int
    failures: int = 0  # failed polls in a row
    unreachable: bool = False
    reading: Reading | None = None  # the last reading, None after a failure
    error: str | None = None  # the last failure, None after a reading
    last_poll: float | None = None  # wall clock
    cycles: int = 0
    last_cycle: CycleRecord | None = None
    pushed_since_pass: bool = field(default=False)

    @property
    def running(self) -> bool:
        return self.detector.state is State.RUNNING

    def is_active(self) -> bool:
        """Whether this appliance asks for the short interval."""
        if self.failures or self.running:
            return True
        # A high run under way (with max_dip, through its dips): the last
        # reading was high, without the detector's rules for real machines.
        return self.reading is not None and self.detector.starting

    def failed(self, error: PlugError, at: float) -> list[Notice]:
        """A poll (or a hub) that gave no reading."""
        self.detector.missed()
        self.reading = None
        self.error = str(error)
        self.last_poll = at
        self.failures += 1
        # A failure said once elsewhere (a broker's loss, by its hub) is quiet per plug.
        quiet = self.unreachable or getattr(error, "quiet", False)
        said = [Notice(self.name, notices.FAILED, at, reason=str(error), quiet=quiet)]
        if not self.unreachable and self.failures >= self.unreachable_after:
            self.unreachable = True
            said.append(Notice(self.name, notices.UNREACHABLE, at, reason=str(error)))
        return said

    def sampled(self, reading: Reading, at: float, elapsed: float | None = None) -> list[Notice]:
        """A reading, taken (or received) at ``at``; ``elapsed``: the monotonic
        clock then (None: ``at``, for a caller with a single clock)."""
        mono = at if elapsed is None else elapsed
        said = []
        self.reading = reading
        self.error = None
        self.failures = 0
        self.last_poll = at
        if self.unreachable:
            self.unreachable = False
            said.append(Notice(self.name, notices.REACHABLE, at))
        if not self.detector.is_plausible(reading.power_mw):
            # A one-off spike (HS110s report tens of MW now and then): no sample.
            self.detector.missed()
            self.reading = None
            self.error = f"implausible reading of {reading.power_mw:,} mW discarded"
            said.append(Notice(self.name, notices.DISCARDED, at, reason=self.error))
            return said
        event = self.detector.sample(Sample(reading.power_mw, mono, reading.total_wh))
        if event is None:
            return said
        if event.kind is EventKind.RUNNING:
            said.append(Notice(self.name, notices.RUNNING, at))
        else:
            # The cycle's start as people read it: on the wall clock, now.
            cycle = event.cycle and dataclasses.replace(
                event.cycle, started=at - (mono - event.cycle.started)
            )
            self.cycles += 1
            self.last_cycle = cycle or self.last_cycle
            said.append(Notice(self.name, notices.FINISHED, at, cycle=cycle))
        return said

    def held(self, at: float, elapsed: float | None = None) -> list[Notice]:
        """A pass in which a pushed plug sent nothing: its last value, again."""
        if self.reading is None:
            return []
        return self.sampled(self.reading, at, elapsed)

    def status(self, driver: str, plug: str) -> ApplianceStatus:
        return ApplianceStatus(
            name=self.name,
            driver=driver,
            plug=plug,
            up=self.error is None and self.reading is not None,
            reading=self.reading,
            error=self.error,
            running=self.running,
            cycles=self.cycles,
            last_poll=self.last_poll,
            last_cycle=self.last_cycle,
        )

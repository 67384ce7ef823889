"""The state file as an output: restored at start, saved after every change.

The format and its atomic replacement are in ``state.py``; this is the part
that knows trackers: which of their fields are remembered, and what to say
when the file cannot be written (once, and once more when it can again).
Syslog lines of events not yet delivered are saved with the trackers and
handed back to the syslog handler at start.  A newer daemon's file is never
written over.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from whitegoodsd import state
from whitegoodsd.detector import Detector, State
from whitegoodsd.outputs import syslog
from whitegoodsd.tracker import Tracker


class StateFile:
    """``state_file =``: each appliance's state and open cycle across restarts."""

    def __init__(self, path: str, log: logging.Logger, origin: state.Clocks | None = None) -> None:
        self.path = path
        self.log = log
        self.origin = origin  # converts open cycles' monotonic times for the file
        self._saved: str | None = None  # the file's text as last written
        self._failing = False
        self._frozen = False  # a newer daemon's file: left as it is

    def restore(
        self, trackers: Mapping[str, tuple[Tracker, str]], now: state.Clocks | None = None
    ) -> None:
        """Give each tracker (by upper-cased name, with its plug's address) what was saved.

        ``now``: this run's clocks, to bring saved cycles onto its monotonic clock.
        """
        plugs = {name: plug for name, (_, plug) in trackers.items()}
        loaded = state.load(self.path, plugs, now)
        for warning in loaded.warnings:
            self.log.warning("%s", warning)
        self._frozen = not loaded.writable
        handler = syslog.handler(self.log)
        if handler is not None and loaded.pending:
            handler.restore(loaded.pending)
        for name, (tracker, _) in trackers.items():
            saved = loaded.appliances.get(name)
            if saved is None:
                continue
            tracker.cycles = saved.cycles
            tracker.last_cycle = saved.last_cycle
            was = State.RUNNING if saved.running else State.STOPPED
            tracker.detector = Detector(tracker.detector.settings, was, saved.cycle)
            if saved.running:
                self.log.info("Resuming %s: running, as the state file says.", tracker.name)

    def save(self, trackers: Mapping[str, tuple[Tracker, str]]) -> None:
        """Write the file if anything in it changed; never raises."""
        if self._frozen:
            return
        handler = syslog.handler(self.log)
        text = state.dumps(
            {
                tracker.name: state.ApplianceState(
                    plug=plug,
                    running=tracker.running,
                    cycle=tracker.detector.cycle,
                    cycles=tracker.cycles,
                    last_cycle=tracker.last_cycle,
                )
                for tracker, plug in trackers.values()
            },
            handler.pending() if handler is not None else (),
            self.origin,
        )
        if text == self._saved:
            return
        try:
            state.save(self.path, text)
        except OSError as exc:
            if not self._failing:
                self.log.error("Cannot write the state file %s: %s", self.path, exc.strerror or exc)
            self._failing = True
            return
        if self._failing:
            self.log.info("State file %s written again.", self.path)
        self._failing = False
        self._saved = text

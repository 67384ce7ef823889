"""The state file as an output: restored at start, saved after every change.

The format and its atomic replacement are in ``state.py``; this is the part
that knows trackers: which of their fields are remembered, and what to say
when the file cannot be written (once, and once more when it can again).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from whitegoodsd import state
from whitegoodsd.detector import Detector, State
from whitegoodsd.tracker import Tracker


class StateFile:
    """``state_file =``: each appliance's state and open cycle across restarts."""

    def __init__(self, path: str, log: logging.Logger) -> None:
        self.path = path
        self.log = log
        self._saved: str | None = None  # the file's text as last written
        self._failing = False

    def restore(self, trackers: Mapping[str, tuple[Tracker, str]]) -> None:
        """Give each tracker (by upper-cased name, with its plug's address) what was saved."""
        loaded = state.load(self.path, {name: plug for name, (_, plug) in trackers.items()})
        for warning in loaded.warnings:
            self.log.warning("%s", warning)
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
            }
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

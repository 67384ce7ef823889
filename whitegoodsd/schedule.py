"""When the next pass comes: the poll interval rule, shared by the monitor and replay.

The monitor polls on a fixed-rate schedule: the next pass starts
``monitor_interval`` seconds after this one started while anything is
active, else ``monitor_interval_nothing_running`` seconds after; the first
pass runs at once.  An appliance is active after a poll that failed, while it
runs, and after a plausible reading while a run of high samples that may
start a cycle is under way (a reading at or above its running threshold;
with ``max_dip``, also a short dip inside such a run).
"""

from __future__ import annotations

from whitegoodsd.detector import Detector, State


def active_after(detector: Detector, power_mw: int | None) -> bool:
    """Whether a poll (its reading in mW, None if it failed) asks for the short interval.

    Call it after the detector has taken the poll.
    """
    if power_mw is None or detector.state is State.RUNNING:
        return True
    return detector.is_plausible(power_mw) and detector.starting


def next_interval(active: bool, interval: float, idle_interval: float) -> float:
    """Seconds from the start of this pass to the start of the next."""
    return interval if active else idle_interval

"""When the next pass comes: the poll interval rule, shared by the monitor and replay.

The monitor polls on a fixed-rate schedule: the next pass starts
``monitor_interval`` seconds after this one started while anything is
active (``Tracker.is_active``: a failed poll, running, or a run of high
readings under way), else ``monitor_interval_nothing_running`` seconds after;
the first pass runs at once.
"""

from __future__ import annotations


def next_interval(active: bool, interval: float, idle_interval: float) -> float:
    """Seconds from the start of this pass to the start of the next."""
    return interval if active else idle_interval

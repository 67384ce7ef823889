"""The syslog line for each notice: the words users' rsyslog rules match.

``NAME is RUNNING.`` and ``NAME is FINISHED.`` (with the cycle's figures
after the period) never change; the rest are short and greppable too.
"""

from __future__ import annotations

import logging

from whitegoodsd import cycle, notices
from whitegoodsd.detector import Settings
from whitegoodsd.notices import Notice


def line(notice: Notice, settings: Settings) -> tuple[int, str]:
    """The level and text to log for ``notice``."""
    name, kind = notice.appliance, notice.kind
    if kind == notices.FAILED:
        level = logging.DEBUG if notice.quiet else logging.ERROR
        return level, f"Error getting current usage for {name}: {notice.reason}"
    if kind == notices.UNREACHABLE:
        return logging.WARNING, f"{name} is UNREACHABLE."
    if kind == notices.REACHABLE:
        return logging.INFO, f"{name} is REACHABLE."
    if kind == notices.DISCARDED:
        what = (notice.reason or "").removeprefix("implausible reading of ")
        return logging.WARNING, (
            f"Discarded a reading of {what.removesuffix(' discarded')} from {name}: "
            f"above max_plausible_mw ({settings.max_plausible_mw or 0:,} mW)."
        )
    if kind == notices.RUNNING:
        return logging.INFO, f"{name} is RUNNING."
    if kind == notices.FINISHED:
        figures = f" {cycle.summary(notice.cycle)}" if notice.cycle else ""
        return logging.INFO, f"{name} is FINISHED.{figures}"
    return logging.INFO, f"{name}: {kind.lower()} {notice.reason or ''}".rstrip()

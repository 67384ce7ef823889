"""Where the daemon's findings go: syslog always, other outputs when configured.

An output other than syslog is a class with ``write(statuses)``, called after
every pass with the status of every appliance, and ``close()``.  ``build``
returns the outputs a config asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from whitegoodsd.config import Config
from whitegoodsd.status import ApplianceStatus


class Output(Protocol):
    """Something that publishes the state of every appliance after a pass."""

    def write(self, statuses: Sequence[ApplianceStatus]) -> None: ...

    def close(self) -> None: ...


def build(config: Config) -> list[Output]:
    """The outputs ``config`` asks for, beside syslog."""
    built: list[Output] = []
    if config.textfile:
        # Imported here: a daemon without a textfile never loads it.
        from whitegoodsd.outputs.textfile import TextfileOutput

        built.append(TextfileOutput(config.textfile))
    if config.record_dir:
        from whitegoodsd.outputs.record import RecordOutput

        built.append(RecordOutput(config.record_dir))
    return built

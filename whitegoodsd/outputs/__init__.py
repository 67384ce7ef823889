"""Where the daemon's findings go: syslog always, other outputs when configured.

An output other than syslog is a class with ``write(statuses)``, called after
every pass with the status of every appliance, and ``close()``.  It may also
have:

- ``notice(notice)``: called for every event (RUNNING, FINISHED, UNREACHABLE,
  REACHABLE) at the moment its syslog line is logged.  It runs on the
  monitor's event loop and must return at once: work that takes time goes to
  tasks, subprocesses or threads of the output's own.
- ``reconfigure(config)``: take a reloaded config and keep what is under way
  (queued commands, held notifications, reminders); without it an output is
  closed and built anew on reload.
- ``async aclose()``: stop at shutdown, giving work under way a bounded grace
  (well under a second: the daemon stops within one); used instead of
  ``close()`` when present.

``build`` returns the outputs a config asks for; ``rebuild`` those of a
reloaded config; ``aclose`` stops them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from whitegoodsd import notices
from whitegoodsd.config import Config
from whitegoodsd.sources import Hubs
from whitegoodsd.status import ApplianceStatus

MQTT_HUB = "whitegoodsd.mqtt.hub"  # the connection the MQTT output shares with MQTT plugs


class Output(Protocol):
    """Something that publishes the state of every appliance after a pass."""

    def write(self, statuses: Sequence[ApplianceStatus]) -> None: ...

    def close(self) -> None: ...


def build(
    config: Config, logger: logging.Logger | None = None, hubs: Hubs | None = None
) -> list[Output]:
    """The outputs ``config`` asks for, beside syslog; ``hubs`` has the shared connections."""
    return rebuild((), config, logger, hubs)


def rebuild(
    previous: Sequence[Output],
    config: Config,
    logger: logging.Logger | None = None,
    hubs: Hubs | None = None,
) -> list[Output]:
    """The outputs of a reloaded ``config``: those of ``previous`` that can take
    it are reconfigured and kept, the others closed."""
    left = list(previous)

    def reuse(kind: type[Output]) -> Output | None:
        for output in left:
            reconfigure = getattr(output, "reconfigure", None)
            if type(output) is kind and reconfigure is not None:
                left.remove(output)
                reconfigure(config)
                return output
        return None

    built: list[Output] = []
    if config.textfile:
        # Imported here: a daemon without a textfile never loads it.
        from whitegoodsd.outputs.textfile import TextfileOutput

        built.append(TextfileOutput(config.textfile))
    if config.mqtt_publish and hubs is not None:
        from whitegoodsd.outputs.mqtt import MqttOutput

        hub: Any = hubs.hub(MQTT_HUB)
        built.append(reuse(MqttOutput) or MqttOutput(config, hub, logger))
    if config.record_dir:
        from whitegoodsd.outputs.record import RecordOutput

        built.append(RecordOutput(config.record_dir))
    wanted = [a.notifications for a in config.appliances]
    if any(n.command(kind) for n in wanted for kind in notices.EVENT_KINDS):
        from whitegoodsd.outputs.commands import CommandOutput

        built.append(reuse(CommandOutput) or CommandOutput(config, logger))
    if any(n.notify and n.notify_events for n in wanted):
        # Imported here: a daemon without notify never loads Apprise.
        from whitegoodsd.outputs.notify import NotifyOutput

        built.append(reuse(NotifyOutput) or NotifyOutput(config, logger))
    for output in left:
        output.close()
    return built


async def aclose(outputs: Sequence[Output]) -> None:
    """Stop every output, those with a grace all at once."""
    stopping = []
    for output in outputs:
        stop = getattr(output, "aclose", None)
        if stop is not None:
            stopping.append(stop())
        else:
            output.close()
    await asyncio.gather(*stopping)

"""Commands run on events: ``on_running``, ``on_finished``, ``on_unreachable``, ``on_reachable``.

Theory of operation
-------------------
Each event of an appliance that has a command for it is queued for that
appliance; one worker per appliance runs its queue in order, so at most one
command runs per appliance and a second event waits its turn.  Appliances do
not wait for each other, and nothing here ever blocks the poll loop: the
commands are asyncio subprocesses and ``notice()`` only appends to a queue.

A command is run as ``/bin/sh -c COMMAND`` in a session of its own, with
stdin from /dev/null and the event in the environment (``environment()``).
Its stdout and stderr are read as they come, so a command that floods them
never stalls; the first ``OUTPUT_LIMIT`` bytes are kept and the rest only
counted.  When it exits, one line goes to syslog: the exit status and the
output on one line, cut to ``LINE_LIMIT`` characters.  A command still
running after ``command_timeout`` seconds gets SIGTERM, and SIGKILL
``KILL_AFTER`` seconds later, each sent to its whole process group.

Event words in the output (``WASHER is FINISHED``) are written in lower case
in that line, so an rsyslog rule matching the event does not fire on it too.

At most ``QUEUE_LIMIT`` events wait per appliance; past that an event's
command is not run, and a line says so: memory stays bounded whatever a
flapping plug does.

Stopping (``aclose``): queued commands are not started (one line says how
many); running ones get ``SHUTDOWN_GRACE`` seconds to finish, then SIGTERM,
then SIGKILL ``SHUTDOWN_KILL_AFTER`` seconds later; so the daemon still
stops within a second.  A reload (``reconfigure``) keeps the queues: events
already queued run the command they were queued with.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import signal
from collections.abc import Mapping, Sequence

from whitegoodsd import messages, notices
from whitegoodsd.config import ApplianceConfig, Config
from whitegoodsd.notices import Notice
from whitegoodsd.outputs import lines
from whitegoodsd.status import ApplianceStatus

SHELL = "/bin/sh"
OUTPUT_LIMIT = 4096  # bytes of a command's output kept
LINE_LIMIT = 200  # characters of that output in its syslog line
QUEUE_LIMIT = 32  # events waiting per appliance
KILL_AFTER = 5.0  # seconds from SIGTERM to SIGKILL after a timeout
SHUTDOWN_GRACE = 0.5  # seconds a running command may go on when the daemon stops
SHUTDOWN_KILL_AFTER = 0.25  # and from SIGTERM to SIGKILL then
DRAIN_AFTER_EXIT = 1.0  # seconds to wait for output after the shell exits

# The names set for a command; any other variable of the daemon's is passed on.
ENVIRONMENT = (
    "WHITEGOODSD_APPLIANCE", "WHITEGOODSD_EVENT", "WHITEGOODSD_AT", "WHITEGOODSD_MESSAGE",
    "WHITEGOODSD_DURATION_S", "WHITEGOODSD_ENERGY_WH", "WHITEGOODSD_PEAK_W",
    "WHITEGOODSD_REASON",
)  # fmt: skip

_EVENT_WORDS = re.compile(r"\bis (" + "|".join(notices.EVENT_KINDS) + r")\b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def environment(
    notice: Notice, message: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a command run for ``notice`` (logged as ``message``):
    ``base`` (the daemon's environment) plus the event."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in ENVIRONMENT}
    env["WHITEGOODSD_APPLIANCE"] = notice.appliance
    env["WHITEGOODSD_EVENT"] = notice.kind
    env["WHITEGOODSD_AT"] = messages.iso_time(notice.at)
    env["WHITEGOODSD_MESSAGE"] = message
    if notice.cycle is not None:
        env["WHITEGOODSD_DURATION_S"] = str(round(max(0.0, notice.cycle.duration)))
        if notice.cycle.energy_wh is not None:
            env["WHITEGOODSD_ENERGY_WH"] = f"{notice.cycle.energy_wh:.1f}"
        env["WHITEGOODSD_PEAK_W"] = str(round(notice.cycle.peak_mw / 1000))
    if notice.reason:
        env["WHITEGOODSD_REASON"] = notice.reason
    return env


def output_text(output: bytes, size: int) -> str:
    """A command's output as part of one syslog line."""
    text = _CONTROL.sub(" ", output.decode(errors="replace")).strip()
    text = " ".join(text.split())
    text = _EVENT_WORDS.sub(lambda m: f"is {m[1].lower()}", text)
    if len(text) > LINE_LIMIT or size > len(output):
        text = text[:LINE_LIMIT].rstrip() + f"... ({size:,} bytes)"
    return text


def describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


class _Run(asyncio.SubprocessProtocol):
    """One command's process: its output, bounded, and when it ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.output = bytearray()
        self.size = 0
        self.exited = loop.create_future()
        self.drained = loop.create_future()  # stdout and stderr share one pipe

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        self.size += len(data)
        room = OUTPUT_LIMIT - len(self.output)
        if room > 0:
            self.output += data[:room]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


class CommandOutput:
    """Runs the configured command of each event, one at a time per appliance."""

    def __init__(self, config: Config, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("whitegoodsd")
        self._queues: dict[str, collections.deque[tuple[str, Notice, str]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, asyncio.SubprocessTransport] = {}
        self._closing = False
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Take the commands and timeout of a reloaded config; queued events stay."""
        self.timeout = config.command_timeout
        self._appliances: dict[str, ApplianceConfig] = {
            a.name.upper(): a for a in config.appliances
        }

    def write(self, statuses: Sequence[ApplianceStatus]) -> None:
        pass

    def notice(self, notice: Notice) -> None:
        """Queue the command for ``notice``, if its appliance has one."""
        appliance = self._appliances.get(notice.appliance.upper())
        command = appliance.notifications.command(notice.kind) if appliance else None
        if appliance is None or command is None or self._closing:
            return
        key = notice.appliance.upper()
        queue = self._queues.setdefault(key, collections.deque())
        if len(queue) >= QUEUE_LIMIT:
            self.log.warning(
                "on_%s for %s not run: %d commands already wait for this appliance.",
                notice.kind.lower(), notice.appliance, len(queue),
            )  # fmt: skip
            return
        queue.append((command, notice, lines.line(notice, appliance.settings)[1]))
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._work(key))

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue and not self._closing:
                command, notice, message = queue.popleft()
                try:
                    await self._run(key, command, notice, message)
                except Exception as exc:  # noqa: BLE001 - one command never stops the others
                    self.log.error(
                        "on_%s for %s failed: %s", notice.kind.lower(), notice.appliance, exc
                    )
        finally:
            del self._workers[key]

    async def _run(self, key: str, command: str, notice: Notice, message: str) -> None:
        what = f"on_{notice.kind.lower()} for {notice.appliance}"
        loop = asyncio.get_running_loop()
        try:
            transport, run = await loop.subprocess_exec(
                lambda: _Run(loop), SHELL, "-c", command,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=environment(notice, message),
                start_new_session=True,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.log.error("%s: cannot run %s: %s", what, SHELL, reason)
            return
        self._running[key] = transport
        try:
            timed_out = False
            try:
                await asyncio.wait_for(asyncio.shield(run.exited), self.timeout)
            except TimeoutError:
                timed_out = True
                self._signal(transport, signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(run.exited), KILL_AFTER)
                except TimeoutError:
                    self._signal(transport, signal.SIGKILL)
                    await run.exited
            # A child the command left behind may hold the pipe: do not wait on it for long.
            patience = SHUTDOWN_KILL_AFTER if self._closing else DRAIN_AFTER_EXIT
            await asyncio.wait({run.drained}, timeout=patience)
        finally:
            del self._running[key]
            transport.close()
        returncode = transport.get_returncode()
        status = describe_exit(returncode if returncode is not None else -signal.SIGKILL)
        if timed_out:
            status = f"timed out after {self.timeout:g} s, {status}"
        elif self._closing and returncode is not None and returncode < 0:
            status = f"stopped with whitegoodsd, {status}"
        text = output_text(bytes(run.output), run.size)
        level = logging.INFO if returncode == 0 else logging.WARNING
        if text:
            self.log.log(level, "%s: %s: %s", what, status, text)
        else:
            self.log.log(level, "%s: %s, no output.", what, status)

    @staticmethod
    def _signal(transport: asyncio.SubprocessTransport, signum: signal.Signals) -> None:
        """Signal the command's process group while its shell has not been reaped."""
        pid = transport.get_pid()
        if transport.get_returncode() is not None or pid is None:
            return
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    def _drop_queued(self) -> None:
        for queue in self._queues.values():
            if queue:
                name = queue[0][1].appliance
                self.log.warning(
                    "%d command(s) for %s not run: whitegoodsd is stopping.", len(queue), name
                )
                queue.clear()
        self._queues = {k: q for k, q in self._queues.items() if k in self._workers}

    def close(self) -> None:
        """Run nothing more; commands already running end under their timeout."""
        self._closing = True
        self._drop_queued()

    async def aclose(self) -> None:
        """Stop: queued commands are dropped, running ones get a bounded grace."""
        self.close()
        workers = set(self._workers.values())
        if not workers:
            return
        _, pending = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE)
        for signum, patience in ((signal.SIGTERM, SHUTDOWN_KILL_AFTER), (signal.SIGKILL, None)):
            if not pending:
                return
            for transport in self._running.values():
                self._signal(transport, signum)
            _, pending = await asyncio.wait(pending, timeout=patience)

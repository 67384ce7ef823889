"""The monitor: schedules passes, routes outcomes to trackers, notices to outputs.

A pass polls every polled appliance at once (``sources.poll_all``), reads
the held value of every pushed appliance that said nothing since the last
pass, and hands each outcome to the appliance's tracker (``tracker.py``) in
config order; readings pushed between passes reach their tracker as they
come (``deliver``).  What the trackers say is logged (syslog) and given to
the outputs.  Passes run on a fixed-rate schedule: the next one starts
``monitor_interval`` seconds after this one started if anything is active (a
failed poll, a sample at or above a running threshold, or an appliance
running), else ``monitor_interval_nothing_running`` seconds after.  The
first pass runs at once.

Clocks: every interval (the detector's delays, cycle durations, integrated
energy) is measured on the monotonic clock, which NTP steps and ``date -s``
do not move; the wall clock is only for what people read and for the state
file (``state.py`` says how a restart bridges the two).

Signals: SIGTERM and SIGINT stop the loop (an unfinished pass is cancelled);
SIGHUP reloads the INI file (``reload.py`` says what changes), keeping each
remaining appliance's state.  With ``state_file`` set, state is restored at
start and saved after every pass that changed it (``outputs/statefile.py``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from whitegoodsd import config as configuration
from whitegoodsd import drivers, notices, outputs, reload, schedule, sources, state
from whitegoodsd.config import ApplianceConfig, Config, ConfigError
from whitegoodsd.detector import Detector, Event, EventKind
from whitegoodsd.drivers.base import Driver
from whitegoodsd.engine import max_in_flight
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.notices import Notice
from whitegoodsd.outputs import lines
from whitegoodsd.outputs.statefile import StateFile
from whitegoodsd.status import ApplianceStatus
from whitegoodsd.tracker import Tracker

EventListener = Callable[[str, Event], None]
HELD_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


def make_driver(appliance: ApplianceConfig, timeout: float) -> Driver:
    plug = appliance.plug
    return drivers.get(plug.driver)(plug.host, plug.port, timeout, dict(plug.options))


@dataclass
class Appliance:
    """An appliance as the monitor tracks it between passes."""

    config: ApplianceConfig
    driver: Driver
    tracker: Tracker

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def detector(self) -> Detector:
        return self.tracker.detector

    def status(self) -> ApplianceStatus:
        return self.tracker.status(self.config.plug.driver, self.driver.address)


@dataclass
class PassResult:
    """What one pass found."""

    active: bool  # decides the next interval
    failed: list[str] = field(default_factory=list)  # names whose poll failed
    events: list[tuple[str, Event]] = field(default_factory=list)


class Monitor:
    """Polls every appliance of a Config until stopped."""

    def __init__(
        self,
        config: Config,
        *,
        logger: logging.Logger | None = None,
        on_reload: Callable[[Config], None] | None = None,
        wallclock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        in_flight: int | None = None,
    ) -> None:
        self.log = logger or logging.getLogger("whitegoodsd")
        self.config = config
        self.on_reload = on_reload
        self.wallclock = wallclock
        # Intervals are measured on the monotonic clock; a test's single clock drives both.
        self.monotonic = monotonic or (time.monotonic if wallclock is time.time else wallclock)
        self._origin = state.Clocks(wallclock(), self.monotonic(), state.boot_id())
        self.listeners: list[EventListener] = []
        self.hubs = sources.Hubs(config, self.deliver, self.log)
        self.appliances = [self._appliance(a, config) for a in config.appliances]
        self.state = self._state_file(config)
        if self.state is not None:
            now = state.Clocks(self.wallclock(), self.monotonic(), self._origin.boot)
            self.state.restore(self._trackers(), now)
        self.outputs: list[outputs.Output] = outputs.build(config, self.log, self.hubs)
        self._in_flight = in_flight or max_in_flight()
        self._stopping = False
        self._reload_requested = False
        self._wake: asyncio.Event | None = None
        self._pass: asyncio.Task[PassResult] | None = None
        self._retired: list[Driver] = []  # replaced by a reload, to be closed
        self._pass_events: list[tuple[str, Event]] | None = None
        self.passes = 0

    def _appliance(self, spec: ApplianceConfig, config: Config) -> Appliance:
        tracker = Tracker(spec.name, Detector(spec.settings), config.unreachable_after)
        appliance = Appliance(spec, make_driver(spec, config.timeout), tracker)
        if appliance.driver.PUSHED:
            self.hubs.attach(spec.name, appliance.driver)
        return appliance

    def _state_file(self, config: Config) -> StateFile | None:
        if not config.state_file:
            return None
        return StateFile(config.state_file, self.log, self._origin)

    def _trackers(self) -> dict[str, tuple[Tracker, str]]:
        return {a.name.upper(): (a.tracker, a.driver.address) for a in self.appliances}

    # -- control, safe to call from signal handlers on the loop ---------------

    def stop(self) -> None:
        self._stopping = True
        if self._pass is not None:
            self._pass.cancel()
        if self._wake is not None:
            self._wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        if self._wake is not None:
            self._wake.set()

    # -- the loop -------------------------------------------------------------

    async def run(self, *, install_signals: bool = True) -> None:
        """Poll until stop() or a stop signal."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if install_signals:
            loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal)
            loop.add_signal_handler(signal.SIGINT, self._on_stop_signal)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            # Held since the process began (whitegoodsd.__main__): any that
            # came meanwhile are handled now, a SIGHUP as a reload.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)
        self.log.info("Starting.")
        try:
            await self.hubs.start()
            while not self._stopping:
                started = loop.time()
                self._pass = asyncio.create_task(self.poll_pass())
                try:
                    result = await self._pass
                except asyncio.CancelledError:
                    if self._stopping:
                        break
                    raise
                finally:
                    self._pass = None
                await self._sleep_until_next(started, result.active)
        finally:
            if install_signals:
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(signum)
            await self.close()

    def _on_stop_signal(self) -> None:
        self.log.info("Exiting on signal.")
        self.stop()

    def interval(self, active: bool) -> float:
        config = self.config
        return schedule.next_interval(
            active, config.monitor_interval, config.monitor_interval_nothing_running
        )

    async def _sleep_until_next(self, started: float, active: bool) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        interval = self.interval(active)
        self.log.debug("Sleeping %s seconds before next iteration.", f"{interval:,g}")
        while not self._stopping:
            if self._reload_requested:
                self._reload_requested = False
                before = {a.name.upper() for a in self.appliances}
                self.reload()
                await self.hubs.start()
                await self._close_retired()
                if any(a.name.upper() not in before for a in self.appliances):
                    return  # a new appliance is polled at once, not a whole interval later
                active = active or any(a.tracker.running for a in self.appliances)
                interval = self.interval(active)
            remaining = started + interval - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    async def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for driver in retired:
            await driver.close()

    async def close(self) -> None:
        self._flush_logs()
        if self.state is not None:
            self.state.save(self._trackers())
        await self._close_retired()
        await self.hubs.close()
        for appliance in self.appliances:
            await appliance.driver.close()
        await outputs.aclose(self.outputs)

    # -- one pass -------------------------------------------------------------

    async def poll_pass(self) -> PassResult:
        """Poll every appliance once and act on the results."""
        for appliance in self.appliances:
            self.log.debug(
                "%s polling. Current state: %s.", appliance.name, appliance.detector.state.value
            )
        polled = [a for a in self.appliances if not a.driver.PUSHED]
        results = await sources.poll_all(
            [a.driver for a in polled], self.config.timeout, self._in_flight
        )
        outcomes: dict[str, Reading | PlugError] = {
            a.name: r for a, r in zip(polled, results, strict=True)
        }
        now, elapsed = self.wallclock(), self.monotonic()
        result = PassResult(active=False)
        self._pass_events = result.events
        try:
            for appliance in self.appliances:
                outcome = outcomes.get(appliance.name)
                tracker = appliance.tracker
                for note in appliance.driver.notes():
                    self.log.debug("%s: %s.", appliance.name, note)
                if outcome is None:  # pushed
                    if tracker.pushed_since_pass:
                        tracker.pushed_since_pass = False
                        result.active |= tracker.is_active()
                        continue
                    outcome = self.hubs.silent(appliance.name)
                if isinstance(outcome, PlugError):
                    result.failed.append(appliance.name)
                    self._say(appliance, tracker.failed(outcome, now))
                elif outcome is None:
                    self._say(appliance, tracker.held(now, elapsed))
                else:
                    self._debug_reading(appliance, outcome)
                    self._say(appliance, tracker.sampled(outcome, now, elapsed))
                result.active |= tracker.is_active()
        finally:
            self._pass_events = None
        self.passes += 1
        self._flush_logs()
        if self.state is not None:
            self.state.save(self._trackers())
        self._publish()
        return result

    def deliver(self, name: str, outcome: Reading | PlugError, at: float) -> None:
        """A pushed plug's reading (or its hub's failure), as it arrives."""
        appliance = next((a for a in self.appliances if a.name == name), None)
        if appliance is None:
            return  # retired by a reload while the message was on its way
        now = self.wallclock()
        if isinstance(outcome, PlugError):
            self._say(appliance, appliance.tracker.failed(outcome, now))
            return
        appliance.tracker.pushed_since_pass = True
        self._debug_reading(appliance, outcome)
        said = appliance.tracker.sampled(outcome, now, self.monotonic())
        self._say(appliance, said)
        if self.state is not None and any(n.is_event for n in said):
            # Not at the next pass, which may be 15 idle minutes away.
            self.state.save(self._trackers())

    def _debug_reading(self, appliance: Appliance, reading: Reading) -> None:
        self.log.debug(
            "%s current usage is %s mW; threshold is %s mW",
            appliance.name,
            f"{reading.power_mw:,}",
            f"{appliance.config.settings.threshold_running_mw:,}",
        )

    # -- what the trackers say ------------------------------------------------

    def _say(self, appliance: Appliance, said: list[Notice]) -> None:
        for notice in said:
            self._log_notice(appliance, notice)
            if not notice.is_event:
                continue
            for output in self.outputs:
                deliver = getattr(output, "notice", None)
                if deliver is not None:
                    try:
                        deliver(notice)
                    except Exception as exc:  # noqa: BLE001 - an output never stops the loop
                        self.log.error("Output %s failed: %s", type(output).__name__, exc)
            if notice.kind in (notices.RUNNING, notices.FINISHED):
                event = Event(EventKind(notice.kind), notice.at, notice.cycle)
                if self._pass_events is not None:
                    self._pass_events.append((appliance.name, event))
                for listener in self.listeners:
                    listener(appliance.name, event)

    def _log_notice(self, appliance: Appliance, notice: Notice) -> None:
        level, text = lines.line(notice, appliance.config.settings)
        self.log.log(level, "%s", text, extra={"notice": notice})

    def _flush_logs(self) -> None:
        """Give lines that wait for syslog another chance (once a pass, and at the end)."""
        for handler in self.log.handlers:
            handler.flush()

    def statuses(self) -> list[ApplianceStatus]:
        return [a.status() for a in self.appliances]

    def _publish(self) -> None:
        statuses = self.statuses() if self.outputs else []
        for output in self.outputs:
            try:
                output.write(statuses)
            except Exception as exc:  # noqa: BLE001 - an output never stops the loop
                self.log.error("Output %s failed: %s", type(output).__name__, exc)

    # -- reload ---------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the INI file; on any problem keep the running config."""
        try:
            new = configuration.load(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                self.log.error("%s", problem)
            self.log.error(
                "Reload of %s failed; keeping the previous configuration.", self.config.path
            )
            return False
        for warning in new.warnings:
            self.log.warning("%s", warning)
        plan = reload.plan(self.config, new)
        old = {a.name.upper(): a for a in self.appliances}
        for name in (*plan.retired, *plan.replugged):
            if old[name].driver.PUSHED:
                self.hubs.detach(old[name].name)
            self._retired.append(old[name].driver)
        appliances = []
        for spec in new.appliances:
            key = spec.name.upper()
            if key not in old:
                appliances.append(self._appliance(spec, new))
                continue
            kept = old[key]
            kept.tracker.detector = kept.tracker.detector.reconfigured(spec.settings)
            kept.tracker.name = spec.name
            kept.tracker.unreachable_after = new.unreachable_after
            if key in plan.replugged:
                kept.driver = make_driver(spec, new.timeout)
                if kept.driver.PUSHED:
                    self.hubs.attach(spec.name, kept.driver)
            kept.config = spec
            appliances.append(kept)
        self.appliances = appliances
        if new.state_file != self.config.state_file:
            self.state = self._state_file(new)
        self.config = new
        self.hubs.config = new
        if self.on_reload is not None:
            self.on_reload(new)
        self.outputs = outputs.rebuild(self.outputs, new, self.log, self.hubs)
        self.log.info("Reloaded %s: %d appliance(s).", new.path, len(new.appliances))
        return True
